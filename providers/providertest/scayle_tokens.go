package providertest

import (
	"github.com/golang-jwt/jwt/v5"
	"net/http"
	"slices"
	"strings"
	"time"
)

// bearer checks the Bearer access token of a token management request and
// answers 401 itself when it is missing, unknown, revoked or expired.
func (s *SCAYLE) bearer(w http.ResponseWriter, r *http.Request) (issued, bool) {
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if strings.EqualFold(scheme, "Bearer") && token != "" {
		if t, ok, _ := s.lookup(token); ok {
			return t, true
		}
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="scayle"`)
	scayleError(w, http.StatusUnauthorized, "UNAUTHENTICATED", "The access token is invalid, revoked or expired.")
	return issued{}, false
}

func (s *SCAYLE) serveValidate(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.bearer(w, r); ok {
		writeJSON(w, http.StatusOK, map[string]bool{"valid": true})
	}
}

// session is one entry of GET /v1/oauth/tokens.
type session struct {
	ID        string `json:"id"`
	IP        string `json:"ip"`
	UserAgent string `json:"user_agent"`
	CreatedAt string `json:"created_at"`
	UpdatedAt string `json:"updated_at"`
	ExpiresAt string `json:"expires_at"`
}

func (s *SCAYLE) serveList(w http.ResponseWriter, r *http.Request) {
	me, ok := s.bearer(w, r)
	if !ok {
		return
	}
	now := time.Now()
	list := []session{}
	s.mu.Lock()
	for _, t := range s.tokens {
		if t.clientID == me.clientID && now.Before(t.expiry) {
			list = append(list, session{ID: t.id, IP: "127.0.0.1", UserAgent: "sim",
				CreatedAt: t.created.UTC().Format(time.RFC3339), UpdatedAt: t.created.UTC().Format(time.RFC3339),
				ExpiresAt: t.expiry.UTC().Format(time.RFC3339)})
		}
	}
	s.mu.Unlock()
	slices.SortFunc(list, func(a, b session) int { return strings.Compare(a.CreatedAt+a.ID, b.CreatedAt+b.ID) })
	writeJSON(w, http.StatusOK, list)
}

// serveRevoke revokes the access token with jti {id}, and nothing else:
// its refresh token stays valid.
func (s *SCAYLE) serveRevoke(w http.ResponseWriter, r *http.Request) {
	me, ok := s.bearer(w, r)
	if !ok {
		return
	}
	id := r.PathValue("id")
	s.mu.Lock()
	found := false
	for tok, t := range s.tokens {
		if t.id == id && t.clientID == me.clientID {
			delete(s.tokens, tok)
			found = true
		}
	}
	s.mu.Unlock()
	if !found {
		scayleError(w, http.StatusNotFound, "NOT_FOUND", "No such token.")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// serveLogout revokes the presented access token and the refresh token
// issued with it — for a customer's token, every token of that customer.
func (s *SCAYLE) serveLogout(w http.ResponseWriter, r *http.Request) {
	if !s.checkShop(w, r) {
		return
	}
	me, ok := s.bearer(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	for tok, t := range s.tokens {
		if t.id == me.id || (me.subject != "" && t.subject == me.subject) {
			delete(s.tokens, tok)
		}
	}
	if me.refresh != "" {
		delete(s.refreshTokens, me.refresh)
	}
	for rt, g := range s.refreshTokens {
		if me.subject != "" && g.subject == me.subject {
			delete(s.refreshTokens, rt)
		}
	}
	s.mu.Unlock()
	s.logouts.Add(1)
	w.WriteHeader(http.StatusNoContent)
}

// LiveRefreshTokens counts the refresh tokens a refresh grant would accept
// now.
func (s *SCAYLE) LiveRefreshTokens() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	now := time.Now()
	for _, g := range s.refreshTokens {
		if !g.dead && (g.expiry.IsZero() || now.Before(g.expiry)) {
			n++
		}
	}
	return n
}

// LiveRefreshTokensOf counts the refresh tokens of customer subject a
// refresh grant would accept now.
func (s *SCAYLE) LiveRefreshTokensOf(subject string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	now := time.Now()
	for _, g := range s.refreshTokens {
		if g.subject == subject && !g.dead && (g.expiry.IsZero() || now.Before(g.expiry)) {
			n++
		}
	}
	return n
}

// serveLogoutRedirect is the browser logout: it checks the shop id and the
// logout JWT and sends the browser on to its callbackUrl.
func (s *SCAYLE) serveLogoutRedirect(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("shopId") != s.shopID {
		scayleError(w, http.StatusBadRequest, "INVALID_SHOP_ID", "Unknown shopId.")
		return
	}
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(q.Get("jwt"), claims, func(*jwt.Token) (any, error) {
		return []byte(s.shopSecret), nil
	}, jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired(), jwt.WithIssuedAt())
	iat, _ := claims.GetIssuedAt()
	exp, _ := claims.GetExpirationTime()
	callback, _ := claims["callbackUrl"].(string)
	tokenID, _ := claims["tokenId"].(string)
	if err != nil || iat == nil || exp.Sub(iat.Time) > scayleConsentMax || tokenID == "" || !absoluteURL(callback) {
		scayleError(w, http.StatusBadRequest, "INVALID_JWT", "The logout JWT is invalid.")
		return
	}
	s.logoutRedirects.Add(1)
	redirect(w, callback, nil)
}

// LogoutRedirects counts browser logouts sent on to their callbackUrl.
func (s *SCAYLE) LogoutRedirects() int64 { return s.logoutRedirects.Load() }

// Logouts counts successful POST /v1/auth/logout requests.
func (s *SCAYLE) Logouts() int64 { return s.logouts.Load() }

// checkShop demands X-Shop-Id with the shop id on Checkout API requests.
func (s *SCAYLE) checkShop(w http.ResponseWriter, r *http.Request) bool {
	if r.Header.Get("X-Shop-Id") != s.shopID {
		scayleError(w, http.StatusBadRequest, "INVALID_SHOP_ID", "X-Shop-Id is missing or unknown.")
		return false
	}
	return true
}

// routes serves the customer account.
func (s *SCAYLE) routes(w http.ResponseWriter, r *http.Request, path string, _ []byte, tok issued) bool {
	if path != "/v1/customers/me" || r.Method != http.MethodGet {
		return false
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": 4711, "email": "customer@example.com", "shopId": s.shopID, "clientId": tok.clientID, "subject": tok.subject})
	return true
}

package providertest

import (
	"cmp"
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// SCAYLEOptions configure the SCAYLE simulator. Zero fields take the
// defaults given.
type SCAYLEOptions struct {
	SimOptions
	// ShopID is the only accepted shop id (shopId, X-Shop-Id). Default
	// "1001".
	ShopID string
	// ShopSecret verifies the consent JWT. Default "sim-shop-secret".
	ShopSecret string
	// IdpKey is the only configured identity provider. Default "sim-idp".
	IdpKey string
	// RefreshLifetime is a refresh token's life from the consent; every
	// rotated successor keeps that original expiry. Default 30 days.
	RefreshLifetime time.Duration
}

// scayleConsentMax is the longest a consent JWT may live (exp - iat).
const scayleConsentMax = 15 * time.Minute

// SCAYLE simulates one tenant space: the Authentication API
// ({tenant_space}.auth.scayle.cloud/v1) and the Checkout API
// ({tenant_space}.checkout.api.scayle.cloud/api) on one server.
//
// Each consent is a new customer's login (subject "customer-1", "-2"…):
// its tokens carry the subject (JWT sub), the Checkout API echoes it, and
// logout revokes exactly that customer's tokens.
//
// Consent (GET /v1/auth/external/redirect?shopId&jwt): shopId must be the
// shop's; the JWT must be HS256-signed with the shop secret, carry iat and
// an exp no more than 15 minutes after it and not yet passed, the client's
// clientId, the configured idpKey and an absolute callbackUrl. The identity
// provider approves at once: 302 to callbackUrl?code&state, where state is
// the JWT's payload JSON in standard base64.
//
// Token (POST /v1/oauth/token, JSON body, HTTP Basic base64(id:secret)):
// {"grant_type":"authorization_code","code"} and
// {"grant_type":"refresh_token","refresh_token"} → {access_token,
// refresh_token, expires_in, token_type}. Access tokens are HS256 JWTs
// with jti (the token id) and exp (the real platform signs RS256; clients
// never verify them). Refresh tokens rotate: each refresh returns a new
// pair, the one used is dead, and the new one keeps the original expiry;
// presenting a dead one is 400 INVALID_GRANT and counts in RefreshReuse.
// Errors: {"error":"INVALID_CLIENT","message":…,"context":null}.
//
// Token management (Bearer access token): GET|POST
// /v1/oauth/token/validate → 200 or 401; GET /v1/oauth/tokens → the
// client's live sessions [{id, ip, user_agent, created_at, updated_at,
// expires_at}]; DELETE /v1/oauth/tokens/{id} → 204, revoking that one
// access token only (its refresh token lives on, as documented); POST
// /v1/auth/logout (X-Shop-Id with the shop id, else 400) → 204, revoking
// the presented access token and the refresh token issued with it.
//
// Browser logout (GET /v1/auth/logout/redirect?shopId&jwt, the JWT
// HS256-signed with the shop secret over {callbackUrl, tokenId, iat, exp ≤
// 15 min}): 302 to callbackUrl; counted in LogoutRedirects.
//
// Checkout API below /api (X-Shop-Id with the shop id, else 400; then
// Authorization: Bearer):
//   - GET /v1/customers/me → {id, email, shopId}.
//   - any method /v1/echo/… and GET /v1/stream, as for SimpleStore.
type SCAYLE struct {
	*core
	shopID, shopSecret, idpKey string
	refreshLifetime            time.Duration
	logouts                    atomic.Int64
	customers                  atomic.Int64 // logins so far: each is a new customer
	logoutRedirects            atomic.Int64
}

// NewSCAYLE starts a SCAYLE simulator on 127.0.0.1. Call Close when done.
func NewSCAYLE(opts SCAYLEOptions) *SCAYLE {
	s := &SCAYLE{
		core:            newCore(opts.SimOptions.withDefaults("expires_in")),
		shopID:          cmp.Or(opts.ShopID, "1001"),
		shopSecret:      cmp.Or(opts.ShopSecret, "sim-shop-secret"),
		idpKey:          cmp.Or(opts.IdpKey, "sim-idp"),
		refreshLifetime: opts.RefreshLifetime,
	}
	if s.refreshLifetime <= 0 {
		s.refreshLifetime = 30 * 24 * time.Hour
	}
	s.jwtKey = make([]byte, 32)
	rand.Read(s.jwtKey)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/auth/external/redirect", s.serveRedirect)
	mux.HandleFunc("/v1/oauth/token", s.tokenEndpoint(s.serveToken))
	mux.HandleFunc("GET /v1/oauth/token/validate", s.serveValidate)
	mux.HandleFunc("POST /v1/oauth/token/validate", s.serveValidate)
	mux.HandleFunc("GET /v1/oauth/tokens", s.serveList)
	mux.HandleFunc("DELETE /v1/oauth/tokens/{id}", s.serveRevoke)
	mux.HandleFunc("POST /v1/auth/logout", s.serveLogout)
	mux.HandleFunc("GET /v1/auth/logout/redirect", s.serveLogoutRedirect)
	f := flavor{base: "/api", routes: s.routes, fail: scayleAPIError, precheck: s.checkShop}
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) { s.serveAPI(w, r, f) })
	s.start(mux)
	return s
}

// AuthURL is the consent redirect, URL()+"/v1/auth/external/redirect".
func (s *SCAYLE) AuthURL() string { return s.URL() + "/v1/auth/external/redirect" }

// TokenURL is the token endpoint, URL()+"/v1/oauth/token".
func (s *SCAYLE) TokenURL() string { return s.URL() + "/v1/oauth/token" }

// AuthAPIURL is the Authentication API base, URL()+"/v1": token
// management lives at /oauth/token/validate and /oauth/tokens below it.
func (s *SCAYLE) AuthAPIURL() string { return s.URL() + "/v1" }

// APIURL is the Checkout API base, URL()+"/api".
func (s *SCAYLE) APIURL() string { return s.URL() + "/api" }

// ShopID is the shop id the simulator accepts.
func (s *SCAYLE) ShopID() string { return s.shopID }

func (s *SCAYLE) serveRedirect(w http.ResponseWriter, r *http.Request) {
	s.consentCount.Add(1)
	q := r.URL.Query()
	if q.Get("shopId") != s.shopID {
		scayleError(w, http.StatusBadRequest, "INVALID_SHOP_ID", "Unknown shopId.")
		return
	}
	claims := jwt.MapClaims{}
	token, err := jwt.ParseWithClaims(q.Get("jwt"), claims, func(*jwt.Token) (any, error) {
		return []byte(s.shopSecret), nil
	}, jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired(), jwt.WithIssuedAt())
	if err != nil {
		scayleError(w, http.StatusBadRequest, "INVALID_JWT", "The JWT could not be verified with the shop secret, or has expired.")
		return
	}
	iat, _ := claims.GetIssuedAt()
	exp, _ := claims.GetExpirationTime()
	clientID, _ := claims["clientId"].(string)
	idpKey, _ := claims["idpKey"].(string)
	callback, _ := claims["callbackUrl"].(string)
	var problem string
	switch {
	case iat == nil:
		problem = "iat is required."
	case exp.Sub(iat.Time) > scayleConsentMax:
		problem = "exp may be at most 15 minutes after iat."
	case !equal(clientID, s.opts.ClientID):
		problem = "Unknown clientId."
	case idpKey != s.idpKey:
		problem = "Unknown idpKey."
	case !absoluteURL(callback):
		problem = "callbackUrl must be an absolute http(s) URL."
	}
	if problem != "" {
		scayleError(w, http.StatusBadRequest, "INVALID_JWT", problem)
		return
	}
	// state is the original payload, re-encoded as standard base64.
	payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(token.Raw, ".")[1])
	subject := "customer-" + strconv.FormatInt(s.customers.Add(1), 10)
	code := s.newCode(codeGrant{clientID: clientID, redirectURI: callback, subject: subject})
	redirect(w, callback, map[string][]string{"code": {code}, "state": {base64.StdEncoding.EncodeToString(payload)}})
}

func (s *SCAYLE) serveToken(w http.ResponseWriter, r *http.Request) {
	if !s.readTokenBody(w, r, bodyJSON, scayleTokenError) {
		return
	}
	id, secret, basic := r.BasicAuth()
	if !basic || !equal(id, s.opts.ClientID) || !equal(secret, s.opts.ClientSecret) {
		w.Header().Set("WWW-Authenticate", `Basic realm="scayle"`)
		scayleError(w, http.StatusUnauthorized, "INVALID_CLIENT", "Client authentication failed.")
		return
	}
	form := r.PostForm
	var refresh, subject string
	switch form.Get("grant_type") {
	case "authorization_code":
		g, ok := s.redeemCode(form.Get("code"))
		if !ok || g.clientID != id {
			scayleError(w, http.StatusBadRequest, "INVALID_GRANT", "The authorization code is invalid, used or expired.")
			return
		}
		subject = g.subject
		refresh = s.addRefresh(refreshGrant{clientID: id, expiry: time.Now().Add(s.refreshLifetime), subject: subject})
	case "refresh_token":
		g, next, ok := s.useRefresh(form.Get("refresh_token"), true)
		if !ok {
			scayleError(w, http.StatusBadRequest, "INVALID_GRANT", "The refresh token is invalid.")
			return
		}
		refresh, subject = next, g.subject
	case "":
		scayleError(w, http.StatusBadRequest, "INVALID_REQUEST", "grant_type is required.")
		return
	default:
		scayleError(w, http.StatusBadRequest, "UNSUPPORTED_GRANT_TYPE", "The authorization grant type is not supported.")
		return
	}
	tok, lifetime := s.issueToken(issued{clientID: id, refresh: refresh, subject: subject})
	writeTokenResponse(w, s.tokenBody(tok, lifetime, map[string]any{"refresh_token": refresh}))
}

// scayleError writes SCAYLE's error shape.
func scayleError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, status, map[string]any{"error": code, "message": message, "context": nil})
}

// scayleTokenError writes SCAYLE's error shape for the shared token
// request checks, upper-casing the RFC 6749 code.
func scayleTokenError(w http.ResponseWriter, status int, code, description string) {
	scayleError(w, status, strings.ToUpper(code), description)
}

// scayleAPIError writes SCAYLE's error shape for the Checkout API.
func scayleAPIError(w http.ResponseWriter, _ *http.Request, status int, code, detail string) {
	scayleError(w, status, strings.ToUpper(code), detail)
}

package providertest

import (
	"cmp"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// storeHippoScopes are the scopes StoreHippo documents.
func storeHippoScopes() []string {
	var scopes []string
	for _, area := range []string{"orders", "customers", "products", "content", "script_tags", "controllers", "checkouts"} {
		scopes = append(scopes, "read_"+area, "write_"+area)
	}
	return scopes
}

// StoreHippo simulates {store}.storehippo.com for any store name: the
// admin's OAuth endpoints and the REST API on one server. The store does
// not appear in the simulator's URLs; everything is served for whichever
// store the tenant names.
//
// Consent (GET /admin/oauth/authorization): client_id, scope (documented
// scopes, comma-separated), redirect_uri (absolute) and state are required.
// Approved at once: 302 to redirect_uri?code&state. The code remembers the
// redirect_uri.
//
// Token (POST /admin/oauth/token, form-encoded, client_id and
// client_secret in the body): grant_type=authorization_code with code and
// the same redirect_uri → {access_token, refresh_token}, nothing else: the
// access token is permanent. grant_type=refresh_token (not documented by
// StoreHippo; the RFC 6749 form) → a new access token and the same refresh
// token; the old access token stays valid. Errors: {error, messages:
// [{key, message}]}.
//
// Access tokens never expire unless SimOptions.TokenLifetime or SetLifetime
// give them a lifetime (which the response still does not state), so
// tests can drive the 401 → refresh path; RevokeAll and ExpireAll work as
// for every simulator.
//
// API below /api/1.1 (Authorization: Bearer; errors {data: null, messages,
// error}):
//   - GET /entity/ms.products?start=0&limit=25 → {data: [...], paging:
//     {total, start, limit}}; GET /entity/ms.products/{id} → {data}.
//   - any method /v1/echo/… and GET /v1/stream, as for SimpleStore.
//
// SimOptions.RateLimit: 2 enforces the documented 2 requests per second.
type StoreHippo struct {
	*core
}

// NewStoreHippo starts a StoreHippo simulator on 127.0.0.1. Call Close
// when done.
func NewStoreHippo(opts SimOptions) *StoreHippo {
	lifetime := opts.TokenLifetime
	s := &StoreHippo{core: newCore(opts.withDefaults("none"))}
	s.lifetime.Store(int64(lifetime)) // 0: permanent
	mux := http.NewServeMux()
	mux.HandleFunc("/admin/oauth/authorization", s.serveAuthorize)
	mux.HandleFunc("/admin/oauth/token", s.tokenEndpoint(s.serveToken))
	f := flavor{base: "/api/1.1", routes: s.routes, fail: storeHippoError}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { s.serveAPI(w, r, f) })
	s.start(mux)
	return s
}

// AuthURL is the consent page, URL()+"/admin/oauth/authorization".
func (s *StoreHippo) AuthURL() string { return s.URL() + "/admin/oauth/authorization" }

// TokenURL is the token endpoint, URL()+"/admin/oauth/token".
func (s *StoreHippo) TokenURL() string { return s.URL() + "/admin/oauth/token" }

// APIURL is the API base, URL()+"/api/1.1".
func (s *StoreHippo) APIURL() string { return s.URL() + "/api/1.1" }

func (s *StoreHippo) serveAuthorize(w http.ResponseWriter, r *http.Request) {
	s.consentCount.Add(1)
	q := r.URL.Query()
	redirectURI := q.Get("redirect_uri")
	scopes := strings.Split(q.Get("scope"), ",")
	known := storeHippoScopes()
	var problem string
	switch {
	case r.Method != http.MethodGet:
		problem = "use GET"
	case !equal(q.Get("client_id"), s.opts.ClientID):
		problem = "unknown client_id"
	case !absoluteURL(redirectURI):
		problem = "redirect_uri must be an absolute http(s) URL"
	case q.Get("state") == "":
		problem = "state (a nonce) is required"
	case q.Get("scope") == "":
		problem = "scope is required"
	}
	if problem == "" {
		problem = unknownScope(known, scopes)
	}
	if problem != "" {
		storeHippoTokenError(w, http.StatusBadRequest, "invalid_request", problem)
		return
	}
	code := s.newCode(codeGrant{clientID: s.opts.ClientID, redirectURI: redirectURI, scope: q.Get("scope")})
	redirect(w, redirectURI, map[string][]string{"code": {code}, "state": {q.Get("state")}})
}

func (s *StoreHippo) serveToken(w http.ResponseWriter, r *http.Request) {
	if !s.readTokenBody(w, r, bodyForm, storeHippoTokenError) {
		return
	}
	form := r.PostForm
	id := form.Get("client_id")
	if !equal(id, s.opts.ClientID) || !equal(form.Get("client_secret"), s.opts.ClientSecret) {
		storeHippoTokenError(w, http.StatusUnauthorized, "invalid_client", "Invalid client credentials")
		return
	}
	var refresh, scope string
	switch form.Get("grant_type") {
	case "authorization_code":
		g, ok := s.redeemCode(form.Get("code"))
		switch {
		case !ok || g.clientID != id:
			storeHippoTokenError(w, http.StatusBadRequest, "invalid_grant", "Invalid or expired authorization code")
			return
		case form.Get("redirect_uri") != g.redirectURI:
			storeHippoTokenError(w, http.StatusBadRequest, "invalid_grant", "redirect_uri does not match the authorization request")
			return
		}
		scope = g.scope
		refresh = s.addRefresh(refreshGrant{clientID: id, scope: g.scope})
	case "refresh_token":
		refresh = form.Get("refresh_token")
		g, _, ok := s.useRefresh(refresh, false)
		if !ok {
			storeHippoTokenError(w, http.StatusBadRequest, "invalid_grant", "Invalid refresh token")
			return
		}
		scope = g.scope
	case "":
		storeHippoTokenError(w, http.StatusBadRequest, "invalid_request", "grant_type is required")
		return
	default:
		storeHippoTokenError(w, http.StatusBadRequest, "unsupported_grant_type", "Unsupported grant type")
		return
	}
	tok, _ := s.issueToken(issued{clientID: id, scope: scope, refresh: refresh})
	writeJSON(w, http.StatusOK, map[string]string{"access_token": tok, "refresh_token": refresh})
}

// storeHippoCatalogue is the number of products the simulated store has.
const storeHippoCatalogue = 30

// routes serves ms.products.
func (s *StoreHippo) routes(w http.ResponseWriter, r *http.Request, path string, _ []byte, _ issued) bool {
	rest, ok := strings.CutPrefix(path, "/entity/ms.products")
	if !ok || r.Method != http.MethodGet {
		return false
	}
	product := func(id int) map[string]any {
		return map[string]any{"_id": fmt.Sprintf("p%04d", id), "name": fmt.Sprintf("Product %d", id), "price": 100 + id}
	}
	switch {
	case rest == "":
		q := r.URL.Query()
		start, err1 := strconv.Atoi(cmp.Or(q.Get("start"), "0"))
		limit, err2 := strconv.Atoi(cmp.Or(q.Get("limit"), "25"))
		if err1 != nil || err2 != nil || start < 0 || limit < 1 || limit > 100 {
			storeHippoError(w, r, http.StatusBadRequest, "invalid_paging", "start must be 0 or more and limit 1-100")
			return true
		}
		data := []map[string]any{}
		for i := start; i < storeHippoCatalogue && i < start+limit; i++ {
			data = append(data, product(i+1))
		}
		writeJSON(w, http.StatusOK, map[string]any{
			"data":   data,
			"paging": map[string]int{"total": storeHippoCatalogue, "start": start, "limit": limit},
		})
	case strings.HasPrefix(rest, "/p") && len(rest) == len("/p0000"):
		id, err := strconv.Atoi(rest[2:])
		if err != nil || id < 1 || id > storeHippoCatalogue {
			storeHippoError(w, r, http.StatusNotFound, "not_found", "Record not found")
			return true
		}
		writeJSON(w, http.StatusOK, map[string]any{"data": product(id)})
	default:
		return false
	}
	return true
}

// storeHippoTokenError writes the token endpoint's error body.
func storeHippoTokenError(w http.ResponseWriter, status int, code, description string) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, status, map[string]any{"error": code, "messages": []map[string]string{{"key": code, "message": description}}})
}

// storeHippoError writes the API's error body.
func storeHippoError(w http.ResponseWriter, _ *http.Request, status int, code, detail string) {
	writeJSON(w, status, map[string]any{"data": nil, "messages": []map[string]string{{"key": code, "message": detail}}, "error": code})
}

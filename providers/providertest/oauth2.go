package providertest

import (
	"crypto/subtle"
	"net/http"
	"slices"
	"strings"
)

// OAuth2 simulates a generic RFC 6749 authorization server at
// POST /oauth2/token and a small JSON API on one server.
//
// Token endpoint: grants client_credentials and refresh_token; client
// authentication by HTTP Basic or form fields (SimOptions.ClientAuth may
// insist on one); scope is checked against SimOptions.Scopes; audience or
// resource is recorded on the token. Failures follow RFC 6749 section 5.2:
// 401 {"error":"invalid_client"} (with WWW-Authenticate when Basic was
// used), 400 invalid_grant, invalid_scope, unsupported_grant_type,
// invalid_request.
//
// API (Bearer token required, RFC 6750 errors {"error","error_description"}
// with WWW-Authenticate):
//   - GET /v1/whoami → {"client_id","scope","audience"} of the token used.
//   - GET /v1/items → {"items":[…]}; GET /v1/items/{id} → {"id","name"}.
//   - any method /v1/echo/… and GET /v1/stream, as for SimpleStore.
type OAuth2 struct {
	*core
}

// NewOAuth2 starts a generic OAuth 2.0 simulator on 127.0.0.1. Call Close
// when done.
func NewOAuth2(opts SimOptions) *OAuth2 {
	o := &OAuth2{core: newCore(opts.withDefaults("expires_in"))}
	mux := http.NewServeMux()
	mux.HandleFunc("/oauth2/token", o.serveToken)
	f := flavor{routes: o.routes, fail: oauth2Error}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { o.serveAPI(w, r, f) })
	o.start(mux)
	return o
}

// TokenURL is the token endpoint, URL()+"/oauth2/token".
func (o *OAuth2) TokenURL() string { return o.URL() + "/oauth2/token" }

// APIURL is the API base, URL(); paths start with /v1/.
func (o *OAuth2) APIURL() string { return o.URL() }

// AddRefreshToken makes rt a valid refresh token.
func (o *OAuth2) AddRefreshToken(rt string) {
	o.mu.Lock()
	o.refreshTokens[rt] = true
	o.mu.Unlock()
}

// RevokeRefreshTokens invalidates every refresh token: refresh_token
// grants answer 400 invalid_grant.
func (o *OAuth2) RevokeRefreshTokens() {
	o.mu.Lock()
	clear(o.refreshTokens)
	o.mu.Unlock()
}

// ValidRefreshToken reports whether rt would be accepted now.
func (o *OAuth2) ValidRefreshToken(rt string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.refreshTokens[rt]
}

func (o *OAuth2) serveToken(w http.ResponseWriter, r *http.Request) {
	if !o.readTokenForm(w, r) {
		return
	}
	id, secret, method, err := clientCredentials(r)
	if err != nil {
		tokenError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	if !o.validClient(id, secret, method) {
		if method == "header" {
			w.Header().Set("WWW-Authenticate", `Basic realm="sim"`)
		}
		tokenError(w, http.StatusUnauthorized, "invalid_client", "client authentication failed")
		return
	}
	scope := r.PostForm.Get("scope")
	if !o.allowedScope(scope) {
		tokenError(w, http.StatusBadRequest, "invalid_scope", "scope not allowed")
		return
	}
	audience := r.PostForm.Get("audience")
	if audience == "" {
		audience = r.PostForm.Get("resource")
	}
	extra := map[string]any{}
	switch r.PostForm.Get("grant_type") {
	case "client_credentials":
	case "refresh_token":
		next, ok := o.useRefreshToken(r.PostForm.Get("refresh_token"))
		if !ok {
			tokenError(w, http.StatusBadRequest, "invalid_grant", "refresh token is invalid, expired or revoked")
			return
		}
		if next != "" {
			extra["refresh_token"] = next
		}
	case "":
		tokenError(w, http.StatusBadRequest, "invalid_request", "grant_type is missing")
		return
	default:
		tokenError(w, http.StatusBadRequest, "unsupported_grant_type", "grant type not supported")
		return
	}
	if scope != "" {
		extra["scope"] = scope
	}
	tok, lifetime := o.issue(id, scope, audience)
	writeTokenResponse(w, o.tokenBody(tok, lifetime, extra))
}

// validClient checks the credentials and the authentication method.
func (o *OAuth2) validClient(id, secret, method string) bool {
	if method == "" || (o.opts.ClientAuth != "" && o.opts.ClientAuth != method) {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(id), []byte(o.opts.ClientID)) == 1 &&
		subtle.ConstantTimeCompare([]byte(secret), []byte(o.opts.ClientSecret)) == 1
}

// allowedScope reports whether every requested scope may be granted.
func (o *OAuth2) allowedScope(scope string) bool {
	if len(o.opts.Scopes) == 0 {
		return true
	}
	for _, s := range strings.Fields(scope) {
		if !slices.Contains(o.opts.Scopes, s) {
			return false
		}
	}
	return true
}

// useRefreshToken accepts rt and, when rotating, replaces it with a new
// refresh token returned as next.
func (o *OAuth2) useRefreshToken(rt string) (next string, ok bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if rt == "" || !o.refreshTokens[rt] {
		return "", false
	}
	if o.opts.RotateRefreshTokens {
		delete(o.refreshTokens, rt)
		next = randomToken()
		o.refreshTokens[next] = true
	}
	return next, true
}

// routes serves /v1/whoami and /v1/items.
func (o *OAuth2) routes(w http.ResponseWriter, r *http.Request, _ []byte, tok issued) bool {
	path := r.URL.Path
	if r.Method != http.MethodGet {
		return false
	}
	switch {
	case path == "/v1/whoami":
		writeJSON(w, http.StatusOK, map[string]string{"client_id": tok.clientID, "scope": tok.scope, "audience": tok.audience})
	case path == "/v1/items":
		writeJSON(w, http.StatusOK, map[string]any{"items": []map[string]string{
			{"id": "1", "name": "first"}, {"id": "2", "name": "second"}, {"id": "3", "name": "third"},
		}})
	case strings.HasPrefix(path, "/v1/items/") && len(path) > len("/v1/items/"):
		id := strings.TrimPrefix(path, "/v1/items/")
		writeJSON(w, http.StatusOK, map[string]string{"id": id, "name": "item " + id})
	default:
		return false
	}
	return true
}

// tokenError writes an RFC 6749 section 5.2 error response.
func tokenError(w http.ResponseWriter, status int, code, description string) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, status, map[string]string{"error": code, "error_description": description})
}

// oauth2Error writes the API's RFC 6750-style error body.
func oauth2Error(w http.ResponseWriter, _ *http.Request, status int, code, detail string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": detail})
}

package providertest

import (
	"net/http"
	"slices"
	"strings"
	"time"
)

// OAuth2 simulates a generic RFC 6749 authorization server at
// GET /oauth2/authorize and POST /oauth2/token, and a small JSON API, on
// one server.
//
// Consent (GET /oauth2/authorize): response_type=code, client_id,
// redirect_uri (absolute), scope (checked against SimOptions.Scopes),
// state, and PKCE with code_challenge_method=S256 — required, as OAuth 2.1
// does. Approved at once: 302 to redirect_uri?code&state. A bad request is
// answered 400 {"error","error_description"} without a redirect.
//
// Token endpoint: grants client_credentials, refresh_token and
// authorization_code (the code's redirect_uri repeated, the PKCE verifier
// proven; it issues a refresh token too); client authentication by HTTP
// Basic or form fields (SimOptions.ClientAuth may insist on one); scope is
// checked against SimOptions.Scopes; audience or resource is recorded on
// the token. With RotateRefreshTokens, every refresh returns a new refresh
// token and the one used is dead; presenting it again is invalid_grant and
// counts in RefreshReuse. Failures follow RFC 6749 section 5.2: 401
// {"error":"invalid_client"} (with WWW-Authenticate when Basic was used),
// 400 invalid_grant, invalid_scope, unsupported_grant_type,
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
	mux.HandleFunc("/oauth2/authorize", o.serveAuthorize)
	mux.HandleFunc("/oauth2/token", o.tokenEndpoint(o.serveToken))
	f := flavor{routes: o.routes, fail: oauth2Error}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { o.serveAPI(w, r, f) })
	o.start(mux)
	return o
}

// AuthURL is the consent page, URL()+"/oauth2/authorize".
func (o *OAuth2) AuthURL() string { return o.URL() + "/oauth2/authorize" }

// TokenURL is the token endpoint, URL()+"/oauth2/token".
func (o *OAuth2) TokenURL() string { return o.URL() + "/oauth2/token" }

// APIURL is the API base, URL(); paths start with /v1/.
func (o *OAuth2) APIURL() string { return o.URL() }

// AddRefreshToken makes rt a valid refresh token.
func (o *OAuth2) AddRefreshToken(rt string) {
	o.mu.Lock()
	o.refreshTokens[rt] = refreshGrant{clientID: o.opts.ClientID}
	o.mu.Unlock()
}

// serveAuthorize approves a consent request at once.
func (o *OAuth2) serveAuthorize(w http.ResponseWriter, r *http.Request) {
	o.consentCount.Add(1)
	q := r.URL.Query()
	redirectURI := q.Get("redirect_uri")
	var problem string
	switch {
	case r.Method != http.MethodGet:
		problem = "use GET"
	case q.Get("response_type") != "code":
		problem = "response_type must be code"
	case !equal(q.Get("client_id"), o.opts.ClientID):
		problem = "unknown client_id"
	case !absoluteURL(redirectURI):
		problem = "redirect_uri must be an absolute http(s) URL"
	case !o.allowedScope(q.Get("scope")):
		problem = "scope not allowed"
	case q.Get("code_challenge_method") != "S256":
		problem = "PKCE with code_challenge_method=S256 is required"
	case len(q.Get("code_challenge")) != 43:
		problem = "code_challenge must be a base64url SHA-256 (43 characters)"
	}
	if problem != "" {
		tokenError(w, http.StatusBadRequest, "invalid_request", problem)
		return
	}
	code := o.newCode(codeGrant{clientID: o.opts.ClientID, redirectURI: redirectURI,
		scope: q.Get("scope"), challenge: q.Get("code_challenge")})
	params := map[string][]string{"code": {code}}
	if s := q.Get("state"); s != "" {
		params["state"] = []string{s}
	}
	redirect(w, redirectURI, params)
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
	form := r.PostForm
	scope := form.Get("scope")
	if !o.allowedScope(scope) {
		tokenError(w, http.StatusBadRequest, "invalid_scope", "scope not allowed")
		return
	}
	audience := form.Get("audience")
	if audience == "" {
		audience = form.Get("resource")
	}
	extra := map[string]any{}
	var refreshExpiry time.Time // of the refresh token answered; zero: none
	switch form.Get("grant_type") {
	case "client_credentials":
	case "refresh_token":
		g, next, ok := o.useRefreshToken(form.Get("refresh_token"))
		if !ok {
			tokenError(w, http.StatusBadRequest, "invalid_grant", "refresh token is invalid, expired or revoked")
			return
		}
		if next != "" {
			extra["refresh_token"] = next
		}
		refreshExpiry = g.expiry
		if scope == "" {
			scope = g.scope
		}
	case "authorization_code":
		g, ok := o.redeemCode(form.Get("code"))
		switch {
		case !ok || g.clientID != id:
			tokenError(w, http.StatusBadRequest, "invalid_grant", "authorization code is invalid, used or expired")
			return
		case form.Get("redirect_uri") != g.redirectURI:
			tokenError(w, http.StatusBadRequest, "invalid_grant", "redirect_uri does not match the consent's")
			return
		case form.Get("code_verifier") == "" || s256(form.Get("code_verifier")) != g.challenge:
			tokenError(w, http.StatusBadRequest, "invalid_grant", "PKCE verification failed")
			return
		}
		scope = g.scope
		rg := refreshGrant{clientID: id, scope: g.scope}
		if o.opts.RefreshLifetime > 0 {
			rg.expiry = time.Now().Add(o.opts.RefreshLifetime)
		}
		extra["refresh_token"] = o.addRefresh(rg)
		refreshExpiry = rg.expiry
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
	if o.opts.RefreshLifetime > 0 && !refreshExpiry.IsZero() {
		extra["refresh_expires_in"] = int64(time.Until(refreshExpiry).Seconds())
	}
	tok, lifetime := o.issue(id, scope, audience)
	writeTokenResponse(w, o.tokenBody(tok, lifetime, extra))
}

// validClient checks the credentials and the authentication method.
func (o *OAuth2) validClient(id, secret, method string) bool {
	if method == "" || (o.opts.ClientAuth != "" && o.opts.ClientAuth != method) {
		return false
	}
	return equal(id, o.opts.ClientID) && equal(secret, o.opts.ClientSecret)
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
func (o *OAuth2) useRefreshToken(rt string) (g refreshGrant, next string, ok bool) {
	return o.useRefresh(rt, o.opts.RotateRefreshTokens)
}

// routes serves /v1/whoami and /v1/items.
func (o *OAuth2) routes(w http.ResponseWriter, r *http.Request, path string, _ []byte, tok issued) bool {
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

package providertest

import (
	"crypto/rand"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// istoresLifetime is the documented expires_in: 36000000 seconds.
const istoresLifetime = 36000000 * time.Second

// istoresScopes are the scopes Istores documents.
func istoresScopes() []string {
	var scopes []string
	for resource, actions := range map[string]string{
		"products": "read create update delete", "pages": "read create update delete",
		"customers": "read create update delete", "charge": "wallet card", "pbl": "read create update delete",
	} {
		for _, a := range strings.Fields(actions) {
			scopes = append(scopes, resource+":"+a)
		}
	}
	return scopes
}

// Istores simulates nova.istores.co.il's OAuth endpoints and
// api.istores.co.il on one server.
//
// Consent (GET /oauth/authorize): client_id, redirect_uri (absolute),
// response_type=code and scopes (one or more documented scopes, separated
// by spaces or commas: the documentation shows only one) are required;
// state is optional and echoed. Approved at once: 302 to
// redirect_uri?code[&state]. A bad request is answered 400 JSON without a
// redirect.
//
// Token (POST /oauth/token): client_id, client_secret and code in the body,
// form-encoded or JSON (the documentation names no encoding); grant_type,
// if sent, must be authorization_code, and redirect_uri, if sent, must
// match the consent's. There is no refresh grant. The answer is
// {access_token: HS256 JWT with exp, token_type: Bearer, expires_in}, with
// expires_in 36000000 unless SimOptions.TokenLifetime or SetLifetime say
// otherwise; SetJWTLifetime makes the JWT expire sooner than expires_in
// says. Errors look like Laravel Passport's: {error, error_description,
// message}.
//
// API (Authorization: Bearer, or the bare token in x-token; errors
// {success: false, message}):
//   - GET /products/{limit}/{page} → {success, Products, results, pages,
//     page, per_page, request_id}; limit 1–200.
//   - GET /products/{id} → {success, product, request_id}.
//   - any method /v1/echo/… and GET /v1/stream, as for SimpleStore.
//
// SimOptions.RateLimit: 2 enforces the documented 2 requests per second.
type Istores struct {
	*core
}

// NewIstores starts an Istores simulator on 127.0.0.1. Call Close when
// done.
func NewIstores(opts SimOptions) *Istores {
	if opts.TokenLifetime <= 0 {
		opts.TokenLifetime = istoresLifetime
	}
	s := &Istores{core: newCore(opts.withDefaults("expires_in"))}
	s.jwtKey = make([]byte, 32)
	rand.Read(s.jwtKey)
	mux := http.NewServeMux()
	mux.HandleFunc("/oauth/authorize", s.serveAuthorize)
	mux.HandleFunc("/oauth/token", s.tokenEndpoint(s.serveToken))
	f := flavor{routes: s.routes, fail: istoresError, tokenHeader: "X-Token"}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { s.serveAPI(w, r, f) })
	s.start(mux)
	return s
}

// AuthURL is the consent page, URL()+"/oauth/authorize".
func (s *Istores) AuthURL() string { return s.URL() + "/oauth/authorize" }

// TokenURL is the token endpoint, URL()+"/oauth/token".
func (s *Istores) TokenURL() string { return s.URL() + "/oauth/token" }

// APIURL is the API base, URL().
func (s *Istores) APIURL() string { return s.URL() }

func (s *Istores) serveAuthorize(w http.ResponseWriter, r *http.Request) {
	s.consentCount.Add(1)
	q := r.URL.Query()
	redirectURI := q.Get("redirect_uri")
	scopes := splitScopes(q.Get("scopes"))
	known := istoresScopes()
	var problem string
	switch {
	case r.Method != http.MethodGet:
		problem = "use GET"
	case !equal(q.Get("client_id"), s.opts.ClientID):
		problem = "unknown client_id"
	case q.Get("response_type") != "code":
		problem = "response_type must be code"
	case !absoluteURL(redirectURI):
		problem = "redirect_uri must be an absolute http(s) URL"
	case len(scopes) == 0:
		problem = "scopes is required"
	}
	if problem == "" {
		problem = unknownScope(known, scopes)
	}
	if problem != "" {
		istoresTokenError(w, http.StatusBadRequest, "invalid_request", problem)
		return
	}
	code := s.newCode(codeGrant{clientID: s.opts.ClientID, redirectURI: redirectURI, scope: strings.Join(scopes, " ")})
	params := map[string][]string{"code": {code}}
	if st := q.Get("state"); st != "" {
		params["state"] = []string{st}
	}
	redirect(w, redirectURI, params)
}

func (s *Istores) serveToken(w http.ResponseWriter, r *http.Request) {
	if !s.readTokenBody(w, r, bodyForm|bodyJSON, istoresTokenError) {
		return
	}
	form := r.PostForm
	id := form.Get("client_id")
	if !equal(id, s.opts.ClientID) || !equal(form.Get("client_secret"), s.opts.ClientSecret) {
		istoresTokenError(w, http.StatusUnauthorized, "invalid_client", "Client authentication failed")
		return
	}
	if g := form.Get("grant_type"); g != "" && g != "authorization_code" {
		istoresTokenError(w, http.StatusBadRequest, "unsupported_grant_type",
			"The authorization grant type is not supported by the authorization server.")
		return
	}
	g, ok := s.redeemCode(form.Get("code"))
	if !ok || g.clientID != id || (form.Has("redirect_uri") && form.Get("redirect_uri") != g.redirectURI) {
		istoresTokenError(w, http.StatusBadRequest, "invalid_grant",
			"The provided authorization grant (e.g., authorization code, resource owner credentials) or refresh token is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client.")
		return
	}
	tok, lifetime := s.issue(id, g.scope, "")
	writeTokenResponse(w, s.tokenBody(tok, lifetime, nil))
}

// routes serves the product resources.
func (s *Istores) routes(w http.ResponseWriter, r *http.Request, path string, _ []byte, _ issued) bool {
	rest, ok := strings.CutPrefix(path, "/products/")
	if !ok || r.Method != http.MethodGet {
		return false
	}
	parts := strings.Split(rest, "/")
	switch len(parts) {
	case 1:
		id, err := strconv.Atoi(parts[0])
		if err != nil || id < 1 || id > istoresCatalogue {
			istoresError(w, r, http.StatusNotFound, "not_found", "Product not found")
			return true
		}
		writeJSON(w, http.StatusOK, map[string]any{"success": true, "product": istoresProduct(id), "request_id": requestID()})
	case 2:
		limit, err1 := strconv.Atoi(parts[0])
		page, err2 := strconv.Atoi(parts[1])
		if err1 != nil || err2 != nil || limit < 1 || limit > 200 || page < 1 {
			istoresError(w, r, http.StatusBadRequest, "bad_request", "limit must be 1-200 and page 1 or more")
			return true
		}
		products := []map[string]any{}
		for id := (page-1)*limit + 1; id <= istoresCatalogue && id <= page*limit; id++ {
			products = append(products, istoresProduct(id))
		}
		writeJSON(w, http.StatusOK, map[string]any{
			"success":    true,
			"Products":   products,
			"results":    istoresCatalogue,
			"pages":      (istoresCatalogue + limit - 1) / limit,
			"page":       page,
			"per_page":   limit,
			"request_id": requestID(),
		})
	default:
		return false
	}
	return true
}

// istoresCatalogue is the number of products the simulated store has.
const istoresCatalogue = 45

func istoresProduct(id int) map[string]any {
	return map[string]any{"id": id, "name": fmt.Sprintf("Product %d", id), "price": 10 + id, "status": "active"}
}

// requestID is a fresh request id, as every Istores answer carries.
func requestID() string { return randomToken()[:12] }

// istoresTokenError writes an OAuth error the way Laravel Passport does.
func istoresTokenError(w http.ResponseWriter, status int, code, description string) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, status, map[string]string{"error": code, "error_description": description, "message": description})
}

// istoresError writes the API's error body.
// A 401 says "Unauthenticated." (Laravel's words) and names the reason in
// error.
func istoresError(w http.ResponseWriter, _ *http.Request, status int, _, detail string) {
	message := detail
	if status == http.StatusUnauthorized {
		message = "Unauthenticated."
	}
	writeJSON(w, status, map[string]any{"success": false, "message": message, "error": detail, "request_id": requestID()})
}

package providertest

import (
	"crypto/subtle"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// SimpleStore simulates auth.simplestore.io (POST /connect/token, client
// credentials in the form body or HTTP Basic, as its IdentityServer-style
// endpoint takes them) and api.simplestore.io on one server:
//
//   - GET /v1/cart/{id} → {"id","items":[],"total","currency"};
//     POST /v1/cart/{id} checks the cart out.
//   - GET /v1/products?pageSize=10&pageIndex=0 → a page of 25 products in
//     SimpleStore's list shape {result, pageSize, pageIndex,
//     totalRecordsFound, resultCount, totalPages}.
//   - any method /v1/echo/… → {"method","path","query","body"} as received.
//   - GET /v1/stream?n=5[&interval=10ms][&step=1][&format=sse] → chunks,
//     each flushed.
//
// Every API route needs "Authorization: Bearer <token>" with a live token;
// errors are RFC 7807 problem documents {type, title, status, detail,
// instance}. Wrong client credentials get SimpleStore's 400
// {"error":"invalid_client","title":...}. The token response spells the
// lifetime expiries_in, as the documentation does, unless
// SimOptions.ExpiresField says otherwise.
type SimpleStore struct {
	*core
}

// NewSimpleStore starts a SimpleStore simulator on 127.0.0.1. Call Close
// when done.
func NewSimpleStore(opts SimOptions) *SimpleStore {
	s := &SimpleStore{core: newCore(opts.withDefaults("expiries_in"))}
	mux := http.NewServeMux()
	mux.HandleFunc("/connect/token", s.tokenEndpoint(s.serveToken))
	f := flavor{routes: s.routes, fail: simpleStoreProblem}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { s.serveAPI(w, r, f) })
	s.start(mux)
	return s
}

// TokenURL is the token endpoint, URL()+"/connect/token".
func (s *SimpleStore) TokenURL() string { return s.URL() + "/connect/token" }

// APIURL is the API base, URL(); paths start with /v1/.
func (s *SimpleStore) APIURL() string { return s.URL() }

func (s *SimpleStore) serveToken(w http.ResponseWriter, r *http.Request) {
	if !s.readTokenForm(w, r) {
		return
	}
	id, secret, _, err := clientCredentials(r)
	switch grant := r.PostForm.Get("grant_type"); {
	case err != nil:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "title": err.Error()})
	case !s.validClient(id, secret):
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_client", "title": "Invalid client credentials"})
	case grant == "":
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "title": "grant_type is missing"})
	case grant != "client_credentials":
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "unsupported_grant_type", "title": "Unsupported grant type"})
	default:
		scope := r.PostForm.Get("scope")
		tok, lifetime := s.issue(id, scope, "")
		extra := map[string]any{}
		if scope != "" {
			extra["scope"] = scope
		}
		writeTokenResponse(w, s.tokenBody(tok, lifetime, extra))
	}
}

func (s *SimpleStore) validClient(id, secret string) bool {
	return subtle.ConstantTimeCompare([]byte(id), []byte(s.opts.ClientID)) == 1 &&
		subtle.ConstantTimeCompare([]byte(secret), []byte(s.opts.ClientSecret)) == 1
}

// routes serves the cart and product resources.
func (s *SimpleStore) routes(w http.ResponseWriter, r *http.Request, path string, _ []byte, _ issued) bool {
	switch {
	case strings.HasPrefix(path, "/v1/cart/") && len(path) > len("/v1/cart/"):
		id := strings.TrimPrefix(path, "/v1/cart/")
		switch r.Method {
		case http.MethodGet:
			writeJSON(w, http.StatusOK, map[string]any{"id": id, "items": []any{}, "total": 0, "currency": "USD"})
		case http.MethodPost:
			writeJSON(w, http.StatusOK, map[string]any{"id": id, "status": "checked_out"})
		default:
			w.Header().Set("Allow", "GET, POST")
			simpleStoreProblem(w, r, http.StatusMethodNotAllowed, "method_not_allowed", "use GET or POST")
		}
		return true
	case path == "/v1/products" && r.Method == http.MethodGet:
		s.products(w, r)
		return true
	}
	return false
}

// products serves a page of a fixed catalogue of 25 products.
func (s *SimpleStore) products(w http.ResponseWriter, r *http.Request) {
	const total = 25
	q := r.URL.Query()
	size, index := 10, 0
	var err error
	if v := q.Get("pageSize"); v != "" {
		if size, err = strconv.Atoi(v); err != nil || size < 1 || size > 100 {
			simpleStoreProblem(w, r, http.StatusBadRequest, "bad_request", "pageSize must be 1..100")
			return
		}
	}
	if v := q.Get("pageIndex"); v != "" {
		if index, err = strconv.Atoi(v); err != nil || index < 0 {
			simpleStoreProblem(w, r, http.StatusBadRequest, "bad_request", "pageIndex must be 0 or more")
			return
		}
	}
	result := []map[string]any{}
	for i := index * size; i < total && i < (index+1)*size; i++ {
		result = append(result, map[string]any{"id": i + 1, "name": fmt.Sprintf("Product %d", i+1), "price": 10 + i})
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"result":            result,
		"pageSize":          size,
		"pageIndex":         index,
		"totalRecordsFound": total,
		"resultCount":       len(result),
		"totalPages":        (total + size - 1) / size,
	})
}

// simpleStoreProblem writes an RFC 7807 problem document.
func simpleStoreProblem(w http.ResponseWriter, r *http.Request, status int, _, detail string) {
	writeJSONType(w, status, "application/problem+json", map[string]any{
		"type":     "https://tools.ietf.org/html/rfc9110#section-15." + statusSection(status),
		"title":    http.StatusText(status),
		"status":   status,
		"detail":   detail,
		"instance": r.URL.EscapedPath(),
	})
}

// statusSection gives the RFC 9110 section of a status class, for "type".
func statusSection(status int) string {
	if status >= 500 {
		return "6"
	}
	return "5"
}

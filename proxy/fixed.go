package proxy

import (
	"net/http"
	"strings"
)

// ForTenant returns a handler that serves every request for one tenant,
// with the whole request path as the API path: a request for /v1/cart/42
// goes to {api_url}/v1/cart/42, exactly as /{tenant}/v1/cart/42 does on
// the path route. It is what a tenant's own listener and the forward
// proxy's intercepted hosts serve. The request target must be a path
// (origin-form); anything else is 400 bad_request. Everything else — the
// checks on the path, injection, replay, errors, metrics and the access
// log — is the path route's.
func (p *Proxy) ForTenant(tenant string) http.Handler {
	prefix := "/" + tenant
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.RequestURI, "/") {
			WriteError(w, http.StatusBadRequest, CodeBadRequest, tenant, errNotOriginForm.Error(), 0)
			return
		}
		routed := *r
		routed.RequestURI = prefix + r.RequestURI
		u := *r.URL
		u.Path = prefix + u.Path
		if u.RawPath != "" {
			u.RawPath = prefix + u.RawPath
		}
		routed.URL = &u
		p.ServeHTTP(w, &routed)
	})
}

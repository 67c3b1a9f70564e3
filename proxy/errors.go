package proxy

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"time"
)

// Error codes the proxy itself answers with, in the JSON body's "error"
// field and the X-Sidekey-Error header (DESIGN.md, "Errors the proxy itself
// makes"). Callers script against these strings.
const (
	CodeUnknownTenant       = "unknown_tenant"       // 404: no such tenant
	CodeBadRequest          = "bad_request"          // 400: a target sidekey refuses to route
	CodeMethodNotAllowed    = "method_not_allowed"   // 405: CONNECT
	CodeConsentRequired     = "consent_required"     // 503: the tenant needs a person to connect it
	CodeTokenUnavailable    = "token_unavailable"    // 503: no valid token could be obtained
	CodeUpstreamUnreachable = "upstream_unreachable" // 502: the API could not be reached
	CodeUpstreamTimeout     = "upstream_timeout"     // 504: the API did not answer in time
	CodeCallerUnauthorized  = "caller_unauthorized"  // 401: missing or wrong caller key
	CodeCallerForbidden     = "caller_forbidden"     // 403: caller may not use this tenant
	CodeRateLimited         = "rate_limited"         // 429: sidekey's own rate limit
	CodeHostNotAllowed      = "host_not_allowed"     // 421: a loopback listener asked for a foreign Host (DNS rebinding)
	CodeCrossSiteRefused    = "cross_site_refused"   // 403: a browser marked the request cross-site
)

// ErrorHeader is the response header naming the error code on every
// response sidekey makes itself, so callers can tell them from upstream
// errors.
const ErrorHeader = "X-Sidekey-Error"

// errorBody is the JSON shape of a proxy-made error.
type errorBody struct {
	Error   string `json:"error"`
	Message string `json:"message"`
	Tenant  string `json:"tenant,omitempty"`
}

// WriteError answers with sidekey's JSON error shape. retryAfter, when
// positive, becomes a Retry-After header rounded up to whole seconds. message
// must not contain a secret: callers pass fixed text or errors that are
// documented as secret-free.
func WriteError(w http.ResponseWriter, status int, code, tenant, message string, retryAfter time.Duration) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set(ErrorHeader, code)
	if retryAfter > 0 {
		secs := int64((retryAfter + time.Second - 1) / time.Second)
		h.Set("Retry-After", strconv.FormatInt(secs, 10))
	}
	w.WriteHeader(status)
	body, _ := json.Marshal(errorBody{Error: code, Message: message, Tenant: tenant})
	_, _ = w.Write(append(body, '\n'))
}

// stripErrorHeader is ReverseProxy's ModifyResponse: it removes the
// upstream's own X-Sidekey-Error, from headers and trailers, so that the
// header tells callers truthfully that sidekey itself answered. A 101
// Switching Protocols body is a tunnel and is left unwrapped.
func stripErrorHeader(resp *http.Response) error {
	resp.Header.Del(ErrorHeader)
	delete(resp.Trailer, ErrorHeader)
	if resp.ContentLength < 0 && resp.StatusCode != http.StatusSwitchingProtocols {
		// Trailers, announced or not, are known once the body is done;
		// ReverseProxy copies them after closing it.
		resp.Body = &trailerScrub{ReadCloser: resp.Body, resp: resp}
	}
	return nil
}

// trailerScrub removes X-Sidekey-Error from a response's trailers when the
// body is closed.
type trailerScrub struct {
	io.ReadCloser
	resp *http.Response
}

// Close closes the body, which completes resp.Trailer, and scrubs it.
func (t *trailerScrub) Close() error {
	err := t.ReadCloser.Close()
	delete(t.resp.Trailer, ErrorHeader)
	return err
}

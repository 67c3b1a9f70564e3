package proxy

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"time"
)

// Error codes sidekey answers with itself, in the JSON body's "error" field
// and the X-Sidekey-Error header (README.md, "Errors sidekey makes
// itself"). Callers script against these strings. Every code sidekey makes
// is defined here, once; TestREADMEListsEveryCode keeps the README's table
// and this list equal.
const (
	// CodeUnknownTenant (404): no tenant (or app) of that name.
	CodeUnknownTenant = "unknown_tenant"
	// CodeBadRequest (400): a target sidekey refuses to route, or a
	// malformed admin API request.
	CodeBadRequest = "bad_request"
	// CodeNotFound (404): no such /_sidekey/ endpoint (or method).
	CodeNotFound = "not_found"
	// CodeMethodNotAllowed (405): CONNECT to a tenant listener.
	CodeMethodNotAllowed = "method_not_allowed"
	// CodeConsentRequired (503 on the proxy, 400 on the admin API): the
	// tenant needs a person to connect it.
	CodeConsentRequired = "consent_required"
	// CodeTokenUnavailable (503): no valid token could be obtained.
	CodeTokenUnavailable = "token_unavailable"
	// CodeUpstreamUnreachable (502): the API could not be reached.
	CodeUpstreamUnreachable = "upstream_unreachable"
	// CodeUpstreamTimeout (504): the API did not answer in time.
	CodeUpstreamTimeout = "upstream_timeout"
	// CodeCallerUnauthorized (401): missing or wrong caller key, or a
	// missing admin token.
	CodeCallerUnauthorized = "caller_unauthorized"
	// CodeCallerForbidden (403): the caller may not use this tenant.
	CodeCallerForbidden = "caller_forbidden"
	// CodeRateLimited (429): sidekey's own rate limit.
	CodeRateLimited = "rate_limited"
	// CodeHostNotAllowed (421): a loopback listener asked for a foreign
	// Host (DNS rebinding).
	CodeHostNotAllowed = "host_not_allowed"
	// CodeCrossSiteRefused (403): a browser marked the request cross-site.
	CodeCrossSiteRefused = "cross_site_refused"

	// CodeSessionRequired (401): a sessions tenant was called without
	// Sidekey-Session.
	CodeSessionRequired = "session_required"
	// CodeSessionUnknown (401): no such session for this tenant (or it
	// was deleted).
	CodeSessionUnknown = "session_unknown"
	// CodeSessionExpired (401): the session's grant died or it sat idle
	// too long.
	CodeSessionExpired = "session_expired"
	// CodeSessionsNotEnabled (404): a login for a tenant without
	// per-customer sessions.
	CodeSessionsNotEnabled = "sessions_not_enabled"
	// CodeReturnToNotAllowed (400): a login's or logout's return_to is not
	// under sessions.return_to.
	CodeReturnToNotAllowed = "return_to_not_allowed"
	// CodeTicketInvalid (400): a login ticket that is malformed, unknown,
	// already redeemed or expired.
	CodeTicketInvalid = "ticket_invalid"
	// CodeRevokeFailed (502): the platform did not confirm a session's
	// logout; the session is kept.
	CodeRevokeFailed = "revoke_failed"

	// CodeNoConsentFlow (400): oauth/connect for a tenant or app whose
	// token needs no consent.
	CodeNoConsentFlow = "no_consent_flow"
	// CodeBadConnection (400): unknown app, invalid connection name, or
	// parameters the app's provider refuses.
	CodeBadConnection = "bad_connection"
	// CodeExists (409): a connection of that name exists.
	CodeExists = "exists"
	// CodeFixedKey (400): disconnecting a tenant with a fixed key.
	CodeFixedKey = "fixed_key"
	// CodeStoreUnavailable (503): the token store could not be read or
	// written.
	CodeStoreUnavailable = "store_unavailable"
	// CodeConsentURLFailed (500): the consent URL could not be built.
	CodeConsentURLFailed = "consent_url_failed"
	// CodeConsentFailed (4xx/5xx, HTML page): the consent callback was
	// refused.
	CodeConsentFailed = "consent_failed"

	// CodeHostNotIntercepted (403): a CONNECT or forward-proxy request to a
	// host, address or port no tenant intercepts.
	CodeHostNotIntercepted = "host_not_intercepted"
	// CodeMisdirectedRequest (421): a request inside a forward-proxy tunnel
	// names another host than the tunnel's.
	CodeMisdirectedRequest = "misdirected_request"
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

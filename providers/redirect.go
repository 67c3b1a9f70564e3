package providers

import (
	"net/http"
	"strconv"
)

// RefuseRedirects returns a copy of client (nil: the default token client)
// that never follows a redirect: a 301, 302, 303, 307 or 308 answer with a
// Location fails the request with a *RedirectError, so neither a form body
// (client_secret, code, refresh_token) nor an Authorization header ever
// reaches another URL, and no token that other host would issue is used.
// Every client that sends a credential is built through it (Build wraps
// Options.HTTPClient; the server wraps its own). The answer's body is
// discarded unread. client is not modified.
func RefuseRedirects(client *http.Client) *http.Client {
	if client == nil {
		client = defaultHTTPClient()
	}
	c := *client
	if _, done := c.Transport.(redirectRefuser); done {
		return &c
	}
	base := c.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	c.Transport = redirectRefuser{base: base}
	// Never reached while the transport refuses first; kept so that a
	// redirect can never be followed even if the transport is replaced.
	c.CheckRedirect = refuseRedirect
	return &c
}

// refuseRedirect is an http.Client CheckRedirect that follows nothing.
func refuseRedirect(req *http.Request, _ []*http.Request) error {
	status := 0
	if req.Response != nil {
		status = req.Response.StatusCode
	}
	return &RedirectError{Status: status, Host: req.URL.Host}
}

// RedirectError is the failure of a credential-carrying request whose
// answer was a redirect. It names the status and the host redirected to,
// never the full Location (whose query may carry anything).
type RedirectError struct {
	Status int    // the 3xx status
	Host   string // host[:port] of the Location; "" when it had none or was unreadable
}

// Error describes the refused redirect.
func (e *RedirectError) Error() string {
	host := e.Host
	if host == "" {
		host = "an unreadable location"
	}
	return "providers: the endpoint answered " + strconv.Itoa(e.Status) + " " + http.StatusText(e.Status) +
		", redirecting to " + host + "; a request carrying a credential never follows a redirect"
}

// redirectRefuser turns a redirect answer into a *RedirectError before
// http.Client can follow it.
type redirectRefuser struct {
	base http.RoundTripper
}

// RoundTrip sends req and refuses a redirecting answer.
func (t redirectRefuser) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	switch resp.StatusCode {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
	default:
		return resp, nil
	}
	loc := resp.Header.Get("Location")
	if loc == "" {
		return resp, nil // http.Client does not follow it either
	}
	resp.Body.Close()
	host := ""
	if u, err := req.URL.Parse(loc); err == nil {
		host = u.Host
	}
	return nil, &RedirectError{Status: resp.StatusCode, Host: host}
}

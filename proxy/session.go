package proxy

import (
	"errors"
	"net/http"
)

// SessionHeader carries a per-customer session handle (DESIGN.md,
// "Per-customer sessions"). The proxy removes it before every upstream
// request, whether or not the tenant has sessions.
const SessionHeader = "Sidekey-Session"

// SessionLookup finds the token engine of the session a request names in
// its Sidekey-Session header. It returns a *SessionError when there is no
// usable session. It must be safe for concurrent use.
type SessionLookup func(r *http.Request) (TokenSource, error)

// SessionError is a request refused for its session: Code is one of the
// CodeSession* codes, Message is secret-free text for the caller.
type SessionError struct {
	Code    string
	Message string
}

// Error returns the message.
func (e *SessionError) Error() string { return "proxy: " + e.Code + ": " + e.Message }

// SetSessions makes rt a sessions route: every request's token comes from
// the session lookup finds, never from the route's own token source. It
// must be called before rt serves its first request.
func (rt *Route) SetSessions(lookup SessionLookup) { rt.sessions = lookup }

// HasSessions reports whether SetSessions was called on rt.
func (rt *Route) HasSessions() bool { return rt.sessions != nil }

// tokensFor returns the token source for r: its session's for a sessions
// route, the route's own otherwise.
func (rt *Route) tokensFor(r *http.Request) (TokenSource, error) {
	if rt.sessions == nil {
		return rt.tokens, nil
	}
	return rt.sessions(r)
}

// writeSessionError answers 401 with err's code when err is a
// *SessionError, and reports whether it did.
func writeSessionError(w http.ResponseWriter, tenant string, err error) bool {
	var se *SessionError
	if !errors.As(err, &se) {
		return false
	}
	WriteError(w, http.StatusUnauthorized, se.Code, tenant, se.Message, 0)
	return true
}

package tokensource

import (
	"errors"
	"fmt"
	"time"
)

// ErrClosed is returned by TokenContext, and by waiters of a fetch in
// progress, once the Source has been closed.
var ErrClosed = errors.New("tokensource: closed")

// FetchError is returned when no valid token exists and the last fetch
// failed. Until RetryAfter has passed the Source returns it without asking
// the identity provider again; then the next attempt runs.
//
// Err is the raw source's error (so errors.As still finds, for example, an
// *oauth2.RetrieveError and the provider's error code), a wrapped
// context.DeadlineExceeded when the fetch outlived Options.FetchTimeout, or a
// description of an unusable token.
type FetchError struct {
	Name       string        // tenant name (Options.Name)
	Err        error         // why the last fetch failed
	RetryAfter time.Duration // time until the next attempt; > 0
}

// Error returns "tokensource: <name>: fetching token: <err> (next attempt in <d>)".
func (e *FetchError) Error() string {
	return fmt.Sprintf("tokensource: %s: fetching token: %v (next attempt in %s)",
		e.Name, e.Err, e.RetryAfter.Round(time.Millisecond))
}

// Unwrap returns Err.
func (e *FetchError) Unwrap() error { return e.Err }

// NotAttempted marks err, returned by a raw source, as a failure that made
// no token request: there was nothing to fetch with (a tenant never
// connected, a token that cannot be refreshed has run out). A Source counts
// neither a fetch nor a failure for it, tells its Observer nothing, and
// logs it once until the cause changes. errors.Is and errors.As still find
// err.
func NotAttempted(err error) error {
	if err == nil {
		return nil
	}
	return &notAttemptedError{err}
}

// IsNotAttempted reports whether err was marked by NotAttempted.
func IsNotAttempted(err error) bool {
	var na *notAttemptedError
	return errors.As(err, &na)
}

type notAttemptedError struct{ err error }

func (e *notAttemptedError) Error() string { return e.err.Error() }
func (e *notAttemptedError) Unwrap() error { return e.err }

package tokensource

import (
	"time"

	"golang.org/x/oauth2"
)

// maxSkew is the largest clock-skew margin taken off a token's expiry. A
// token's margin is the smaller of maxSkew and a tenth of its lifetime, so
// short-lived tokens stay usable.
const maxSkew = 5 * time.Second

// state is one published token with the times derived from it. A state is
// immutable once stored in Source.cur; the hot path reads it without locks.
type state struct {
	tok       *oauth2.Token
	fetchedAt time.Time // when the fetch that produced tok completed
	expiry    time.Time // effective expiry (tok.Expiry less the skew margin); zero: never
	refreshAt time.Time // when a background refresh is due; zero: never
	replaces  bool      // fetched to replace a token Invalidate dropped
	rejected  bool      // dropped once already; served again for want of a replacement
}

// newState derives the effective expiry and the refresh time of tok,
// requested at requestedAt and fetched at fetchedAt (zero requestedAt: at
// fetchedAt). The token's life counts from the request, since a platform
// computes expiry from when it issued the token; a token read back from a
// store counts from when it was first obtained (ObtainedExtra).
// refreshBefore is Options.RefreshBefore (0: at half life).
//
// The refresh time is effective expiry − refreshBefore, but never earlier than
// a tenth of the lifetime after the fetch: a refreshBefore as long as the
// token's life would otherwise refresh in a loop.
//
// The times are wall-clock only (Round(0) drops the monotonic reading), as
// in oauth2.Token.Valid: the monotonic clock stops while a laptop sleeps,
// and a token must not outlive its expiry by the length of a nap.
func newState(tok *oauth2.Token, fetchedAt, requestedAt time.Time, refreshBefore time.Duration) *state {
	fetchedAt = fetchedAt.Round(0)
	st := &state{tok: tok, fetchedAt: fetchedAt}
	if tok.Expiry.IsZero() {
		return st // permanent: only Invalidate drops it
	}
	exp := tok.Expiry.Round(0)
	issued := fetchedAt
	if r := requestedAt.Round(0); !r.IsZero() && r.Before(issued) {
		issued = r
	}
	if t, ok := tok.Extra(ObtainedExtra).(time.Time); ok && t.Before(issued) {
		issued = t.Round(0) // a stored token: its life began when it was first obtained
	}
	life := exp.Sub(issued)
	st.expiry = exp.Add(-min(maxSkew, life/10))
	if refreshBefore <= 0 {
		st.refreshAt = issued.Add(life / 2)
		return st
	}
	st.refreshAt = st.expiry.Add(-refreshBefore)
	if earliest := issued.Add(life / 10); st.refreshAt.Before(earliest) {
		st.refreshAt = earliest
	}
	return st
}

// ObtainedExtra names the oauth2.Token extra (a time.Time) that says when a
// token was first obtained, for tokens read back from a store. Lifetimes
// and refresh times count from it, so that replicas sharing a token refresh
// it together rather than each at half of what remains.
const ObtainedExtra = "sidekey_obtained"

// RefreshExpiryExtra names the oauth2.Token extra (a time.Time) that says
// when the token's refresh token expires, when the platform said so (a
// provider sets it from refresh_expires_in or refresh_token_expires_in). A
// StoredSource stores it, and carries it over to a rotated refresh token
// whose answer states none: SCAYLE's rotated refresh token keeps its
// original expiry, and elsewhere the earlier date is the safe guess.
const RefreshExpiryExtra = "sidekey_refresh_expiry"

// RefreshExpiry returns tok's RefreshExpiryExtra; zero when unknown.
func RefreshExpiry(tok *oauth2.Token) time.Time {
	if tok == nil {
		return time.Time{}
	}
	t, _ := tok.Extra(RefreshExpiryExtra).(time.Time)
	return t
}

// valid reports whether st holds a token that may be served at now.
func (st *state) valid(now time.Time) bool {
	return st != nil && (st.expiry.IsZero() || now.Before(st.expiry))
}

// refreshDue reports whether a background refresh of st should start at now.
func (st *state) refreshDue(now time.Time) bool {
	return !st.refreshAt.IsZero() && !now.Before(st.refreshAt)
}

// droppable reports whether Invalidate may drop st at now: a token is
// dropped at most once, and a replacement not within replacedHold of its
// fetch.
func (st *state) droppable(now time.Time) bool {
	return !st.rejected && (!st.replaces || now.Sub(st.fetchedAt) >= replacedHold)
}

// withRefreshAt returns a copy of st whose next refresh is at t; it is
// published after a failed background refresh so that the hot path does not
// try again before the backoff has passed.
func (st *state) withRefreshAt(t time.Time) *state {
	c := *st
	c.refreshAt = t
	return &c
}

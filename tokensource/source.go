package tokensource

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/oauth2"
)

// Options configures a Source. Zero values mean defaults.
type Options struct {
	// Name is the tenant name, used in log lines and errors.
	Name string
	// RefreshBefore starts a background refresh this long before the
	// token's effective expiry. Zero (or negative): once half the lifetime
	// has passed. A refresh never starts earlier than a tenth of the
	// lifetime after the fetch, however large RefreshBefore is.
	RefreshBefore time.Duration
	// FetchTimeout bounds one fetch. Default 30s. The fetch runs in its own
	// goroutine; waiters may give up earlier through their ctx. A raw source
	// that outlives it is abandoned: the fetch fails with a FetchError, and
	// the next attempt waits for that same call instead of starting another.
	FetchTimeout time.Duration
	// MinBackoff is the first retry delay after a failed fetch. Default 1s.
	MinBackoff time.Duration
	// MaxBackoff caps the retry delay. Default 2m; never below MinBackoff.
	MaxBackoff time.Duration
	// Logger receives one info line per fetched token and one warning per
	// failed fetch, never a token value. Nil: zap.NewNop().
	Logger *zap.Logger
	// Observer, if not nil, is told about every fetch attempt.
	Observer Observer
	// Now is the clock. Nil: time.Now. Timers still run on real time.
	Now func() time.Time
	// Final reports whether a fetch error means the grant itself is gone
	// (the platform refused the refresh token; a person must act). A token
	// Invalidate dropped is then not served again for want of a
	// replacement: the API refused it and nothing can renew it. Nil: no
	// error is final.
	Final func(error) bool
}

// Observer receives engine events; the metrics layer implements it. Its
// methods are called outside the Source's locks and must be safe for
// concurrent use.
type Observer interface {
	// FetchDone is called after every fetch attempt with its duration and
	// its error (nil on success).
	FetchDone(name string, d time.Duration, err error)
}

// Status is a snapshot of a Source for /_sidekey/status. It never holds a
// token value.
type Status struct {
	// State is "valid" (a token is being served), "refreshing" (a fetch is
	// running), "expired" (the last token ran out), "error" (no valid token
	// and the last fetch failed) or "empty" (no token yet, or it was
	// invalidated or the Source closed).
	State string
	// Valid reports whether a token is being served (also while a refresh
	// of it runs).
	Valid bool
	// Expiry is the current token's effective expiry (its own expiry less
	// the clock-skew margin); zero for a permanent token or none.
	Expiry time.Time
	// RefreshExpiry is when the current token's refresh token expires, if
	// the platform said (see RefreshExpiryExtra); zero otherwise.
	RefreshExpiry time.Time
	// LastRefresh is when the last successful fetch completed; zero if none.
	LastRefresh time.Time
	// NextRefresh is when the next fetch is due; zero if none is planned
	// (a permanent token, or no token until a caller asks).
	NextRefresh time.Time
	// LastError is the last fetch's error text; empty after a success. With
	// State "valid" it means a background refresh failed and is retried
	// while the current token lasts.
	LastError string
	// LastErr is the last fetch's error itself, for errors.Is; nil after a
	// success. Not for display: use LastError.
	LastErr error `json:"-"`
	// Renewable reports whether the current token carries a refresh token.
	Renewable bool
	// Fetches counts token requests; Failures counts the failed ones.
	// Neither counts a failure that made no request (NotAttempted).
	Fetches, Failures uint64
}

// replacedHold is how long a token fetched to replace a rejected one cannot
// itself be dropped by Invalidate (see there).
const replacedHold = 2 * time.Minute

// Source is a refresh-ahead, single-flight token cache over a raw grant. It
// implements oauth2.TokenSource and is safe for concurrent use.
//
// A call finding a valid token returns it without locks or allocations,
// starting a background refresh when one is due. Only when no valid token
// exists do callers wait, and then all of them share one fetch. The tokens
// it returns are shared between callers and must not be modified.
type Source struct {
	src        oauth2.TokenSource
	opts       Options
	log        *zap.Logger
	canRefresh bool // src can renew a token (see Refresher)

	cur        atomic.Pointer[state] // the published token; nil: none. Stored only under mu.
	refreshing atomic.Bool           // mirrors flight != nil for the hot path

	mu            sync.Mutex // guards the fields below
	closed        bool
	flight        *flight       // the fetch in progress; nil: none
	calling       bool          // a src.Token call is running, perhaps outliving its flight
	callsRunning  int           // call goroutines not yet ended (report included); see Wait
	callsIdle     chan struct{} // closed when callsRunning drops to 0; nil while none ran
	callStart     time.Time     // when that call started (for durations)
	callRequested time.Time     // when that call started, by Options.Now (a token's life begins there)
	timer         *time.Timer   // the next refresh or retry; nil until first armed
	nextAttempt   time.Time     // no fetch starts before this (backoff)
	failStreak    int           // consecutive failed fetches
	replacing     bool          // the next fetched token replaces one Invalidate dropped
	dropped       *state        // the token Invalidate dropped, until its replacement arrives
	lastErr       error
	lastRefresh   time.Time
	fetches       uint64
	failures      uint64
}

// RefreshAhead returns a Source caching the tokens of src, a raw grant whose
// every Token call performs one token request. src is called from one
// goroutine at a time. The first fetch happens on the first TokenContext
// call; after it the Source refreshes in the background until Close.
//
// A src implementing Refresher whose CanRefresh is false is never asked
// before its token has expired: no refresh ahead, no retries while the
// token serves.
func RefreshAhead(src oauth2.TokenSource, opts Options) *Source {
	opts = opts.withDefaults()
	r, ok := src.(Refresher)
	return &Source{
		src:        src,
		opts:       opts,
		log:        opts.Logger.With(zap.String("tenant", opts.Name)),
		canRefresh: !ok || r.CanRefresh(),
	}
}

// Refresher is implemented by a raw source that says whether it can renew
// a token (a *StoredSource does). A raw source that does not implement it
// can.
type Refresher interface {
	CanRefresh() bool
}

func (o Options) withDefaults() Options {
	if o.RefreshBefore < 0 {
		o.RefreshBefore = 0
	}
	if o.FetchTimeout <= 0 {
		o.FetchTimeout = 30 * time.Second
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 2 * time.Minute
	}
	o.MaxBackoff = max(o.MaxBackoff, o.MinBackoff)
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Token returns TokenContext(context.Background()); it waits at most
// FetchTimeout.
func (s *Source) Token() (*oauth2.Token, error) {
	return s.TokenContext(context.Background())
}

// TokenContext returns a valid token. With one cached it returns at once,
// whatever ctx. Otherwise it joins, or starts, the one fetch in progress and
// waits until it ends or ctx is done (then ctx.Err(), wrapped, while the
// fetch goes on for others). During a backoff after a failed fetch it
// returns a *FetchError at once. After Close it returns ErrClosed.
func (s *Source) TokenContext(ctx context.Context) (*oauth2.Token, error) {
	now := s.opts.Now()
	if st := s.cur.Load(); st.valid(now) {
		if st.refreshDue(now) && !s.refreshing.Load() {
			s.refreshAhead(st)
		}
		return st.tok, nil
	}
	return s.wait(ctx)
}

// wait is the slow path of TokenContext: no valid token is published.
func (s *Source) wait(ctx context.Context) (*oauth2.Token, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	now := s.opts.Now()
	if st := s.cur.Load(); st.valid(now) { // published while we took the lock
		s.mu.Unlock()
		return st.tok, nil
	}
	f := s.flight
	if f == nil {
		if now.Before(s.nextAttempt) {
			err := &FetchError{Name: s.opts.Name, Err: s.lastErr, RetryAfter: s.nextAttempt.Sub(now)}
			s.mu.Unlock()
			return nil, err
		}
		f = s.startLocked(now)
	}
	s.mu.Unlock()
	select {
	case <-f.done:
		return f.tok, f.err
	case <-ctx.Done():
		return nil, fmt.Errorf("tokensource: %s: waiting for token: %w", s.opts.Name, ctx.Err())
	}
}

// refreshAhead starts a background refresh if seen is still the published
// state, its refresh is due and nothing holds it back.
func (s *Source) refreshAhead(seen *state) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Now()
	if s.closed || s.flight != nil || s.cur.Load() != seen || !seen.refreshDue(now) || now.Before(s.nextAttempt) {
		return
	}
	s.startLocked(now)
}

// Invalidate drops tok if it is still the current token (same AccessToken),
// typically after the API answered 401 to it, and starts fetching a new one
// at once. It returns whether tok was dropped; nil, an older token or a
// closed Source change nothing.
//
// A 401 says something about a request as much as about a token: one
// caller hitting a path the API refuses must not take the tenant offline
// for the others (DESIGN invariant 7). So Invalidate never backs off and
// never counts a failure, and each token is dropped at most once:
//   - a token fetched to replace a dropped one is not dropped again within
//     replacedHold of its fetch: a second 401 passes through to its caller
//     alone. A path that always answers 401 therefore costs at most one
//     extra token request per replacedHold;
//   - when the replacement cannot be fetched, the dropped token, if still
//     valid, is served again until the retry succeeds (and is never
//     dropped again).
func (s *Source) Invalidate(tok *oauth2.Token) bool {
	if tok == nil {
		return false
	}
	s.mu.Lock()
	st := s.cur.Load()
	now := s.opts.Now()
	if s.closed || st == nil || st.tok.AccessToken != tok.AccessToken || !st.droppable(now) {
		s.mu.Unlock()
		return false
	}
	s.cur.Store(nil)
	s.dropped, s.replacing = st, true
	if s.flight == nil { // else waiters join the fetch in progress
		s.startLocked(now)
	}
	s.mu.Unlock()
	s.log.Info("token invalidated: the API rejected it")
	return true
}

// Close stops the Source's timers and ends waiting callers with ErrClosed;
// later TokenContext calls return ErrClosed. A raw source call in progress
// is left to finish on its own; its result is discarded. Close is safe to
// call more than once.
func (s *Source) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	s.cur.Store(nil)
	if s.timer != nil {
		s.timer.Stop()
	}
	if f := s.flight; f != nil {
		f.timeout.Stop()
		s.flight = nil
		s.refreshing.Store(false)
		f.err = ErrClosed
		close(f.done)
	}
}

// Wait waits, after Close, until the raw source call that was in progress
// when Close ran has returned (a StoredSource has then stored what it
// fetched), or until ctx is done. A shutting-down server calls it before
// closing the store, so that a refresh the platform has already answered —
// perhaps with a rotated refresh token — is never dropped halfway.
func (s *Source) Wait(ctx context.Context) error {
	s.mu.Lock()
	running, idle := s.callsRunning, s.callsIdle
	s.mu.Unlock()
	if running == 0 {
		return nil
	}
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("tokensource: %s: waiting for a token request in progress: %w", s.opts.Name, ctx.Err())
	}
}

// Reset forgets the current token and any backoff, so that the next
// TokenContext fetches at once. The server calls it when a tenant's stored
// credentials changed under the engine (a consent completed, a tenant was
// disconnected). A fetch in progress is left to finish.
func (s *Source) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.cur.Store(nil)
	s.nextAttempt, s.failStreak, s.lastErr = time.Time{}, 0, nil
	s.dropped, s.replacing = nil, false
	s.stopTimerLocked()
}

// Status returns a snapshot of the Source. It is cheap and safe for
// concurrent use.
func (s *Source) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Now()
	st := s.cur.Load()
	out := Status{LastRefresh: s.lastRefresh, Fetches: s.fetches, Failures: s.failures}
	if s.lastErr != nil {
		out.LastError = s.lastErr.Error()
		out.LastErr = s.lastErr
	}
	if st != nil {
		out.Expiry = st.expiry
		out.RefreshExpiry = RefreshExpiry(st.tok)
		out.Renewable = st.tok.RefreshToken != ""
	}
	out.Valid = st.valid(now)
	switch {
	case s.flight != nil:
		out.State = "refreshing"
	case st.valid(now):
		out.State = "valid"
	case s.lastErr != nil:
		out.State = "error"
	case st != nil:
		out.State = "expired"
	default:
		out.State = "empty"
	}
	switch {
	case s.closed:
	case st.valid(now):
		out.NextRefresh = st.refreshAt
	case !s.nextAttempt.IsZero():
		out.NextRefresh = s.nextAttempt
	}
	return out
}

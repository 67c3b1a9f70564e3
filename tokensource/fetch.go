package tokensource

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"go.uber.org/zap"
	"golang.org/x/oauth2"
)

// minRetryBeforeExpiry is the shortest retry delay after a failed refresh
// while the current token still serves (see finishLocked).
const minRetryBeforeExpiry = 100 * time.Millisecond

// contextSource is a raw source whose token request takes a context
// (every providers.Tenant.Source and every *StoredSource is one).
type contextSource interface {
	TokenContext(ctx context.Context) (*oauth2.Token, error)
}

// flight is one fetch attempt, shared by every caller waiting for it.
type flight struct {
	done    chan struct{} // closed once tok or err is set
	tok     *oauth2.Token
	err     error
	start   time.Time   // for the reported duration
	timeout *time.Timer // ends the flight after Options.FetchTimeout
}

// outcome is what a finished fetch reports once the lock is released.
type outcome struct {
	attempt bool          // it ended a flight; false: a late result of an abandoned call
	took    time.Duration // duration of the attempt
	err     error         // nil: a token was fetched
	expiry  time.Time     // the new token's expiry
	retry   time.Duration // after a failure: delay before the next attempt
	streak  int           // after a failure: consecutive failures
	quiet   bool          // a NotAttempted failure: no token request was made
	repeat  bool          // a quiet failure with the same text as the last one logged
}

// startLocked starts a flight. The raw source is called unless a call from
// an abandoned flight is still running: then that call's result, when it
// comes, ends this flight, so src never runs twice at once.
func (s *Source) startLocked(now time.Time) *flight {
	f := &flight{done: make(chan struct{}), start: time.Now()}
	s.flight = f
	s.refreshing.Store(true)
	s.fetches++ // taken back if it turns out to make no request (NotAttempted)
	f.timeout = time.AfterFunc(s.opts.FetchTimeout, func() { s.expire(f) })
	if !s.calling {
		s.calling = true
		s.callStart = f.start
		s.callRequested = now
		if s.callsRunning == 0 {
			s.callsIdle = make(chan struct{})
		}
		s.callsRunning++
		go s.call()
	}
	return f
}

// call runs the raw source once and hands its result to the current flight.
func (s *Source) call() {
	defer s.callEnded()
	var tok *oauth2.Token
	var err error
	if cs, ok := s.src.(contextSource); ok {
		// A context-aware source is cancelled at FetchTimeout instead of
		// being abandoned. Close does not cancel it: a token request the
		// platform may already have answered (rotating the refresh token)
		// must run to its end, so that its answer is stored.
		ctx, cancel := context.WithTimeout(context.Background(), s.opts.FetchTimeout)
		tok, err = cs.TokenContext(ctx)
		cancel()
	} else {
		tok, err = s.src.Token()
	}
	s.mu.Lock()
	s.calling = false
	o := s.finishLocked(s.flight, tok, err)
	s.mu.Unlock()
	s.report(o)
}

// callEnded counts a call goroutine out, for Wait.
func (s *Source) callEnded() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.callsRunning--; s.callsRunning == 0 {
		close(s.callsIdle)
	}
}

// expire ends flight f as failed once it has run for FetchTimeout. The raw
// source call goes on; see startLocked.
func (s *Source) expire(f *flight) {
	s.mu.Lock()
	if s.flight != f {
		s.mu.Unlock()
		return
	}
	err := fmt.Errorf("no token within %s: %w", s.opts.FetchTimeout, context.DeadlineExceeded)
	o := s.finishLocked(f, nil, err)
	s.mu.Unlock()
	s.report(o)
}

// finishLocked records the result of a fetch, publishes a new token or
// schedules the retry, and ends f (nil: a late result with no flight to
// end). A late failure is dropped (its flight already failed); a late token
// is used, as it is the newest the source has issued.
func (s *Source) finishLocked(f *flight, tok *oauth2.Token, err error) *outcome {
	if s.closed {
		return nil // Close has ended the flight
	}
	now := s.opts.Now()
	if err == nil {
		err = checkToken(tok, now)
	}
	o := &outcome{attempt: f != nil, err: err, took: time.Since(s.callStart), quiet: IsNotAttempted(err)}
	if f != nil && o.quiet {
		s.fetches--
	}
	if f != nil {
		f.timeout.Stop()
		s.flight = nil
		s.refreshing.Store(false)
		o.took = time.Since(f.start)
	}
	if err != nil {
		if f == nil {
			return nil
		}
		if !o.quiet {
			s.failures++
		}
		s.failStreak++
		o.retry = backoff(s.failStreak, s.opts.MinBackoff, s.opts.MaxBackoff)
		st, restored := s.cur.Load(), false
		if st == nil && s.dropped.valid(now) && (s.opts.Final == nil || !s.opts.Final(err)) {
			// The API rejected it, but it is all there is: serve it again
			// (a 401 passes through) rather than refuse every caller.
			c := *s.dropped
			c.rejected = true
			st, restored, s.dropped = &c, true, nil
		}
		if st.valid(now) && !st.expiry.IsZero() {
			// A refresh ahead failed while the current token still serves:
			// try again while it does (at half its remaining life), or a
			// short outage — a store restarting, an IdP blip — outlives a
			// short-lived token and turns into failed requests.
			o.retry = min(o.retry, max(st.expiry.Sub(now)/2, minRetryBeforeExpiry))
		}
		o.streak = s.failStreak
		s.nextAttempt = now.Add(o.retry)
		o.repeat = o.quiet && s.lastErr != nil && s.lastErr.Error() == err.Error()
		s.lastErr = err
		if st.valid(now) { // keep serving it; no refresh before the retry
			if s.canRefresh {
				st = st.withRefreshAt(s.nextAttempt)
			}
			s.cur.Store(st)
		}
		if !o.quiet {
			// A quiet failure is not retried on a timer: nothing changes
			// until a caller asks again or the tenant is Reset.
			s.armLocked(now, s.nextAttempt)
		}
		if restored {
			f.tok = st.tok
		} else {
			f.err = &FetchError{Name: s.opts.Name, Err: err, RetryAfter: o.retry}
		}
		close(f.done)
		return o
	}
	// The token's life began when it was requested, not when the answer
	// arrived: a slow token endpoint must not push the next refresh later.
	st := newState(tok, now, s.callRequested, s.opts.RefreshBefore)
	if !s.canRefresh {
		st.refreshAt = time.Time{} // used until it expires; nothing can renew it
	}
	st.replaces = s.replacing
	s.cur.Store(st)
	s.lastRefresh, s.lastErr, s.failStreak, s.nextAttempt = now, nil, 0, time.Time{}
	s.dropped, s.replacing = nil, false
	if st.refreshAt.IsZero() {
		s.stopTimerLocked()
	} else {
		s.armLocked(now, st.refreshAt)
	}
	if f != nil {
		f.tok = tok
		close(f.done)
	}
	o.expiry = tok.Expiry
	return o
}

// checkToken rejects tokens that cannot be served.
func checkToken(tok *oauth2.Token, now time.Time) error {
	switch {
	case tok == nil:
		return errors.New("source returned no token")
	case tok.AccessToken == "":
		return errors.New("source returned an empty access token")
	case !tok.Expiry.IsZero() && !now.Before(tok.Expiry.Round(0)):
		return fmt.Errorf("source returned a token that expired at %s", tok.Expiry.UTC().Format(time.RFC3339))
	}
	return nil
}

// report logs o and tells the observer; it runs without the lock held.
func (s *Source) report(o *outcome) {
	if o == nil {
		return
	}
	switch {
	case o.quiet && o.repeat:
	case o.quiet:
		s.log.Warn("no token can be fetched", zap.Error(o.err))
	case o.err != nil:
		s.log.Warn("token fetch failed", zap.Error(o.err), zap.Duration("took", o.took),
			zap.Duration("retry_in", o.retry), zap.Int("consecutive_failures", o.streak))
	default:
		expiry := zap.Time("expiry", o.expiry)
		if o.expiry.IsZero() {
			expiry = zap.String("expiry", "never")
		}
		s.log.Info("token fetched", expiry, zap.Duration("took", o.took), zap.Bool("late", !o.attempt))
	}
	if o.attempt && !o.quiet && s.opts.Observer != nil {
		s.opts.Observer.FetchDone(s.opts.Name, o.took, o.err)
	}
}

// armLocked sets the timer to fire at at (at once if that has passed).
func (s *Source) armLocked(now, at time.Time) {
	d := max(at.Sub(now), 0)
	if s.timer == nil {
		s.timer = time.AfterFunc(d, s.onTimer)
		return
	}
	s.timer.Reset(d)
}

func (s *Source) stopTimerLocked() {
	if s.timer != nil {
		s.timer.Stop()
	}
}

// onTimer starts a due refresh or retry. The timer may fire late or
// stale, so it re-checks everything and re-arms when it is early.
func (s *Source) onTimer() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.flight != nil {
		return
	}
	now := s.opts.Now()
	if now.Before(s.nextAttempt) {
		s.armLocked(now, s.nextAttempt)
		return
	}
	if st := s.cur.Load(); st.valid(now) && !st.refreshDue(now) {
		if !st.refreshAt.IsZero() {
			s.armLocked(now, st.refreshAt)
		}
		return
	}
	s.startLocked(now)
}

// backoff returns the delay after the n-th consecutive failure (n ≥ 1): a
// random point in the upper half of a step that doubles from 2·lo up to hi,
// and never below lo ("equal jitter"). Each delay is at least the previous
// step, so retries space out steadily while replicas that failed together
// still spread apart.
func backoff(n int, lo, hi time.Duration) time.Duration {
	step := lo
	for range n {
		if step > hi/2 {
			step = hi
			break
		}
		step *= 2
	}
	step = min(step, hi)
	return max(step/2+rand.N(step/2+1), lo)
}

package tokensource

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/oauth2"
)

// Inside synctest bubbles time is fake: it advances only when every
// goroutine of the bubble is blocked, so a call that returns with
// time.Since(start) == 0 provably did not wait for anything.

func TestColdStartSharesOneFetch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		idp := &fakeIdP{life: time.Hour, delay: 500 * time.Millisecond}
		s := RefreshAhead(idp, Options{Name: "acme"})
		defer s.Close()

		const callers = 200
		start := time.Now()
		toks := make([]*oauth2.Token, callers)
		errs := make([]error, callers)
		var wg sync.WaitGroup
		for i := range callers {
			wg.Go(func() { toks[i], errs[i] = s.TokenContext(context.Background()) })
		}
		synctest.Wait() // every caller is blocked on the one fetch
		if got := idp.calls(); got != 1 {
			t.Fatalf("token requests while %d callers wait = %d; want 1", callers, got)
		}
		if got := s.Status().State; got != "refreshing" {
			t.Errorf("State during the fetch = %q; want refreshing", got)
		}
		wg.Wait()

		if got := time.Since(start); got != 500*time.Millisecond {
			t.Errorf("callers waited %v; want the fetch's 500ms", got)
		}
		for i := range callers {
			if errs[i] != nil {
				t.Fatalf("caller %d: %v", i, errs[i])
			}
			if toks[i] != toks[0] {
				t.Fatalf("caller %d got %q; want the shared %q", i, toks[i].AccessToken, toks[0].AccessToken)
			}
		}
		if got := idp.calls(); got != 1 {
			t.Errorf("token requests = %d; want 1", got)
		}
		if st := s.Status(); st.State != "valid" || st.Fetches != 1 {
			t.Errorf("Status = %+v; want valid after 1 fetch", st)
		}
	})
}

func TestRefreshAheadServesCurrentToken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// 4 s tokens from an IdP that takes 1.5 s: the refresh is due 2 s
		// after each fetch and lands 0.1 s before the old token's
		// effective expiry (4 s − 0.4 s margin).
		idp := &fakeIdP{life: 4 * time.Second, delay: 1500 * time.Millisecond}
		s := RefreshAhead(idp, Options{Name: "acme"})
		defer time.Sleep(idp.delay) // let a refresh in progress end inside the bubble
		defer s.Close()

		old := mustToken(t, s)
		time.Sleep(2*time.Second + 100*time.Millisecond) // the timer starts the refresh at 2 s
		synctest.Wait()
		if idp.calls() != 2 || idp.running() != 1 {
			t.Fatalf("calls, running = %d, %d; want a refresh in progress", idp.calls(), idp.running())
		}

		// Callers during the refresh get the old token at once, even with a
		// context that would end any wait immediately.
		cancelled, cancel := context.WithCancel(context.Background())
		cancel()
		var wg sync.WaitGroup
		for range 50 {
			wg.Go(func() {
				tok, err := s.TokenContext(cancelled)
				if err != nil || tok != old {
					t.Errorf("during refresh: got %v, %v; want the current token", tok, err)
				}
			})
		}
		wg.Wait()
		if idp.running() != 1 {
			t.Fatalf("the refresh ended before the callers returned; the test proves nothing")
		}
		if got := s.Status().State; got != "refreshing" {
			t.Errorf("State = %q; want refreshing", got)
		}

		time.Sleep(1500 * time.Millisecond) // the refresh completes
		if tok := mustToken(t, s); tok == old {
			t.Fatalf("still the old token after the refresh")
		}

		// Steady load for 20 s: 10 calls every 100 ms. No call waits, and
		// fetches follow the token lifetime, not the request count.
		fetchesBefore := idp.calls()
		start := time.Now()
		calls, duringRefresh := 0, 0
		for time.Since(start) < 20*time.Second {
			for range 10 {
				refreshing := idp.running() > 0
				t0 := time.Now()
				if _, err := s.TokenContext(context.Background()); err != nil {
					t.Fatalf("at %v: %v", time.Since(start), err)
				}
				if waited := time.Since(t0); waited != 0 {
					t.Fatalf("at %v a call waited %v", time.Since(start), waited)
				}
				calls++
				if refreshing {
					duringRefresh++
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
		// The fake IdP dates its 4 s tokens from its answer, 1.5 s after the
		// request; the engine counts a life from the request (5.5 s) and
		// refreshes at half of it: one refresh every 2.75 s.
		fetches := idp.calls() - fetchesBefore
		if fetches < 6 || fetches > 9 {
			t.Errorf("%d fetches in 20 s of 4 s tokens (%d calls); want about 20/2.75", fetches, calls)
		}
		if duringRefresh == 0 {
			t.Errorf("no call happened during a refresh")
		}
		if idp.mostAtOnce() != 1 {
			t.Errorf("up to %d token requests at once; want 1", idp.mostAtOnce())
		}
	})
}

func TestWaiterContextEndsWhileFetchContinues(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		idp := &fakeIdP{life: time.Hour, gate: make(chan struct{})}
		s := RefreshAhead(idp, Options{Name: "acme"})
		defer s.Close()

		patient := make(chan error, 1)
		go func() {
			_, err := s.TokenContext(context.Background())
			patient <- err
		}()
		ctx, cancel := context.WithCancel(context.Background())
		impatient := make(chan error, 1)
		go func() {
			_, err := s.TokenContext(ctx)
			impatient <- err
		}()
		synctest.Wait()

		start := time.Now()
		cancel()
		err := <-impatient
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled waiter got %v; want context.Canceled", err)
		}
		if waited := time.Since(start); waited != 0 {
			t.Errorf("cancelled waiter returned after %v; want at once", waited)
		}
		var fe *FetchError
		if errors.As(err, &fe) {
			t.Errorf("cancelled waiter got a FetchError: %v", err)
		}

		// A deadline behaves the same.
		dctx, dcancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer dcancel()
		if _, err := s.TokenContext(dctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("waiter with deadline got %v; want context.DeadlineExceeded", err)
		}

		synctest.Wait()
		select {
		case err := <-patient:
			t.Fatalf("the other waiter returned %v before the fetch ended", err)
		default:
		}
		idp.gate <- struct{}{}
		if err := <-patient; err != nil {
			t.Fatalf("patient waiter: %v", err)
		}
		if got := idp.calls(); got != 1 {
			t.Errorf("token requests = %d; want 1", got)
		}
	})
}

func TestFetchTimeoutAbandonsStuckSource(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		idp := &fakeIdP{life: time.Hour, gate: make(chan struct{})}
		s := RefreshAhead(idp, Options{Name: "acme", FetchTimeout: 5 * time.Second})
		defer s.Close()

		start := time.Now()
		_, err := s.Token()
		var fe *FetchError
		if !errors.As(err, &fe) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Token with a stuck IdP = %v; want a FetchError wrapping DeadlineExceeded", err)
		}
		if waited := time.Since(start); waited != 5*time.Second {
			t.Errorf("waited %v; want FetchTimeout (5s)", waited)
		}
		if fe.RetryAfter <= 0 {
			t.Errorf("RetryAfter = %v; want > 0", fe.RetryAfter)
		}

		// The retry after the backoff waits for the stuck request instead of
		// sending a second one, and that request's token ends the retry.
		time.Sleep(fe.RetryAfter)
		synctest.Wait()
		if st := s.Status(); st.State != "refreshing" || st.Fetches != 2 {
			t.Fatalf("Status after the backoff = %+v; want a second attempt running", st)
		}
		waiter := make(chan *oauth2.Token, 1)
		go func() { waiter <- mustToken(t, s) }()
		synctest.Wait()
		idp.gate <- struct{}{}
		if tok := <-waiter; tok.AccessToken != "secret-token-1" {
			t.Errorf("got %q; want the stuck request's token", tok.AccessToken)
		}
		if idp.calls() != 1 || idp.mostAtOnce() != 1 {
			t.Errorf("requests = %d, most at once = %d; want 1, 1", idp.calls(), idp.mostAtOnce())
		}
	})
}

func TestLateTokenIsAdopted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		idp := &fakeIdP{life: time.Hour, gate: make(chan struct{})}
		s := RefreshAhead(idp, Options{Name: "acme", FetchTimeout: time.Second, MinBackoff: time.Minute})
		defer s.Close()

		if _, err := s.Token(); err == nil {
			t.Fatal("Token with a stuck IdP succeeded")
		}
		idp.gate <- struct{}{} // the abandoned request answers during the backoff
		synctest.Wait()
		tok := mustToken(t, s)
		if tok.AccessToken != "secret-token-1" || idp.calls() != 1 {
			t.Errorf("got %q after %d requests; want the late token without a new request", tok.AccessToken, idp.calls())
		}
	})
}

func TestCloseStopsEverything(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		idp := &fakeIdP{life: 10 * time.Second}
		s := RefreshAhead(idp, Options{Name: "acme"})
		tok := mustToken(t, s)

		s.Close()
		s.Close() // idempotent
		if _, err := s.Token(); !errors.Is(err, ErrClosed) {
			t.Errorf("Token after Close = %v; want ErrClosed", err)
		}
		if s.Invalidate(tok) {
			t.Errorf("Invalidate after Close = true")
		}
		if s.timer.Stop() {
			t.Errorf("the refresh timer was still armed after Close")
		}
		time.Sleep(time.Hour) // many refresh periods of fake time
		if got := idp.calls(); got != 1 {
			t.Errorf("token requests after Close = %d; want still 1", got)
		}
	})
}

func TestCloseReleasesWaiters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		idp := &fakeIdP{life: time.Hour, gate: make(chan struct{})}
		s := RefreshAhead(idp, Options{Name: "acme"})

		errs := make(chan error, 3)
		for range 3 {
			go func() {
				_, err := s.Token()
				errs <- err
			}()
		}
		synctest.Wait()
		s.Close()
		for range 3 {
			if err := <-errs; !errors.Is(err, ErrClosed) {
				t.Errorf("waiter got %v; want ErrClosed", err)
			}
		}
		idp.gate <- struct{}{} // the request finishes; its result is dropped
		synctest.Wait()
		if st := s.Status(); st.State != "empty" || st.LastRefresh != (time.Time{}) {
			t.Errorf("Status after Close = %+v; want empty, no refresh", st)
		}
		// synctest.Test fails if any goroutine of the Source is still blocked.
	})
}

func TestPermanentTokenIsNeverRefetched(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		idp := &fakeIdP{} // no Expiry, like StoreHippo
		s := RefreshAhead(idp, Options{Name: "hippo", RefreshBefore: time.Minute})
		defer s.Close()

		tok := mustToken(t, s)
		time.Sleep(10 * 365 * 24 * time.Hour)
		if got := mustToken(t, s); got != tok || idp.calls() != 1 {
			t.Fatalf("after 10 years: %q after %d requests; want the first token, 1 request", got.AccessToken, idp.calls())
		}
		st := s.Status()
		if st.State != "valid" || !st.Expiry.IsZero() || !st.NextRefresh.IsZero() {
			t.Errorf("Status = %+v; want valid with no expiry and no refresh", st)
		}
		if !s.Invalidate(tok) {
			t.Fatal("Invalidate(current) = false")
		}
		if got := mustToken(t, s); got.AccessToken == tok.AccessToken || idp.calls() != 2 {
			t.Errorf("after Invalidate got %q after %d requests; want a new token", got.AccessToken, idp.calls())
		}
	})
}

func TestUnusableTokensAreFailures(t *testing.T) {
	tests := []struct {
		name string
		mint func(n int, now time.Time) *oauth2.Token // what the IdP returns
	}{
		{"empty access token", func(int, time.Time) *oauth2.Token {
			return &oauth2.Token{Expiry: time.Now().Add(time.Hour)}
		}},
		{"already expired", func(_ int, now time.Time) *oauth2.Token {
			return &oauth2.Token{AccessToken: "secret-token", Expiry: now.Add(-time.Second)}
		}},
		{"nil token", func(int, time.Time) *oauth2.Token { return nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := RefreshAhead(&fakeIdP{mint: tt.mint}, Options{Name: "acme"})
				defer s.Close()
				_, err := s.Token()
				var fe *FetchError
				if !errors.As(err, &fe) || fe.RetryAfter <= 0 {
					t.Fatalf("Token = %v; want a FetchError with RetryAfter", err)
				}
				if st := s.Status(); st.State != "error" || st.Failures != 1 || st.LastError == "" {
					t.Errorf("Status = %+v; want error, 1 failure", st)
				}
			})
		})
	}
}

// ctxIdP is a context-aware raw source whose request waits for release and
// records whether its context ended first.
type ctxIdP struct {
	release   chan struct{}
	cancelled atomic.Bool
}

func (c *ctxIdP) Token() (*oauth2.Token, error) { return c.TokenContext(context.Background()) }

func (c *ctxIdP) TokenContext(ctx context.Context) (*oauth2.Token, error) {
	select {
	case <-c.release:
		return &oauth2.Token{AccessToken: "late", Expiry: time.Now().Add(time.Hour)}, nil
	case <-ctx.Done():
		c.cancelled.Store(true)
		return nil, ctx.Err()
	}
}

// TestCloseLetsATokenRequestFinish: Close does not cancel a request in
// progress (the platform may have rotated a refresh token already), and
// Wait returns once it has ended.
func TestCloseLetsATokenRequestFinish(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		idp := &ctxIdP{release: make(chan struct{})}
		s := RefreshAhead(idp, Options{Name: "acme"})
		go s.Token()
		synctest.Wait()
		s.Close()

		waited := make(chan error, 1)
		go func() { waited <- s.Wait(context.Background()) }()
		synctest.Wait()
		select {
		case <-waited:
			t.Fatal("Wait returned while the request was still running")
		default:
		}
		close(idp.release)
		if err := <-waited; err != nil {
			t.Errorf("Wait = %v", err)
		}
		if idp.cancelled.Load() {
			t.Error("Close cancelled the token request in progress")
		}

		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := s.Wait(ctx); err != nil {
			t.Errorf("Wait with nothing in progress = %v", err)
		}
	})
}

// TestWaitGivesUpWithItsContext: Wait ends with ctx when a request hangs.
func TestWaitGivesUpWithItsContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		idp := &ctxIdP{release: make(chan struct{})}
		s := RefreshAhead(idp, Options{Name: "acme", FetchTimeout: time.Minute})
		go s.Token()
		synctest.Wait()
		s.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := s.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Wait = %v; want DeadlineExceeded", err)
		}
		time.Sleep(time.Minute) // FetchTimeout ends the hung request
		synctest.Wait()
		if !idp.cancelled.Load() {
			t.Error("the hung request outlived FetchTimeout")
		}
	})
}

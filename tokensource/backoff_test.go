package tokensource

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/oauth2"
)

var errIdP = &oauth2.RetrieveError{ErrorCode: "temporarily_unavailable"}

func TestFailuresBackOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		idp := &fakeIdP{life: time.Hour, fail: errIdP}
		s := RefreshAhead(idp, Options{Name: "acme", MinBackoff: time.Second, MaxBackoff: time.Minute})
		defer s.Close()

		_, err := s.Token()
		var fe *FetchError
		if !errors.As(err, &fe) {
			t.Fatalf("Token with a failing IdP = %v; want a FetchError", err)
		}
		var re *oauth2.RetrieveError
		if !errors.As(err, &re) || re.ErrorCode != "temporarily_unavailable" {
			t.Errorf("FetchError does not wrap the IdP's RetrieveError: %v", err)
		}
		if !strings.HasPrefix(err.Error(), "tokensource: acme: ") {
			t.Errorf("error %q; want it to start with %q", err, "tokensource: acme: ")
		}

		// During the backoff, callers are answered at once without a request.
		var wg sync.WaitGroup
		for range 100 {
			wg.Go(func() {
				t0 := time.Now()
				_, err := s.TokenContext(context.Background())
				var fe *FetchError
				if !errors.As(err, &fe) || fe.RetryAfter <= 0 || fe.RetryAfter > 2*time.Second {
					t.Errorf("during backoff: %v; want a FetchError with 0 < RetryAfter <= 2s", err)
				}
				if time.Since(t0) != 0 {
					t.Errorf("a caller waited during the backoff")
				}
			})
		}
		wg.Wait()
		if got := idp.calls(); got != 1 {
			t.Fatalf("requests after 100 callers in backoff = %d; want 1", got)
		}

		// Retries run on their own, spaced by growing delays.
		time.Sleep(3 * time.Minute)
		times := idp.times()
		if len(times) < 6 {
			t.Fatalf("%d attempts in 3 min; want retries", len(times))
		}
		for i := 1; i < len(times); i++ {
			gap := times[i].Sub(times[i-1])
			step := min(time.Second<<i, time.Minute)
			if gap < max(step/2, time.Second) || gap > step {
				t.Errorf("gap before attempt %d = %v; want in [%v, %v]", i+1, gap, step/2, step)
			}
		}
		st := s.Status()
		if st.State != "error" || st.Failures != uint64(len(times)) || st.LastError == "" {
			t.Errorf("Status = %+v; want error after %d failures", st, len(times))
		}

		// Recovery: the next retry succeeds and resets the backoff.
		idp.set(func(f *fakeIdP) { f.fail = nil })
		time.Sleep(time.Minute)
		tok := mustToken(t, s)
		if st := s.Status(); st.State != "valid" || st.LastError != "" {
			t.Errorf("Status after recovery = %+v; want valid, no error", st)
		}

		// A failed background refresh keeps the token served and retries
		// after the first, shortest delay again.
		idp.set(func(f *fakeIdP) { f.fail = errIdP })
		failsFrom := idp.calls()
		time.Sleep(30*time.Minute + time.Second) // past the refresh at half life
		if got := mustToken(t, s); got != tok {
			t.Fatalf("the current token was not served after a failed refresh")
		}
		times = idp.times()[failsFrom:]
		if len(times) < 2 {
			t.Fatalf("%d attempts after the failed refresh; want a retry", len(times))
		}
		if gap := times[1].Sub(times[0]); gap < time.Second || gap > 2*time.Second {
			t.Errorf("first retry after recovery came after %v; want the reset delay, 1s to 2s", gap)
		}
		if st := s.Status(); st.State != "valid" || st.LastError == "" {
			t.Errorf("Status = %+v; want valid with the refresh error", st)
		}
	})
}

// TestBackoffWithClock drives a Source through Options.Now, with real
// goroutines racing during the backoff.
func TestBackoffWithClock(t *testing.T) {
	clock := &fakeClock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	idp := &fakeIdP{life: time.Hour, fail: errIdP, now: clock.Now}
	// Backoff delays of an hour or more keep the real retry timer quiet.
	s := RefreshAhead(idp, Options{Name: "acme", MinBackoff: time.Hour, MaxBackoff: 8 * time.Hour, Now: clock.Now})
	defer s.Close()

	_, err := s.Token()
	var fe *FetchError
	if !errors.As(err, &fe) || fe.RetryAfter < time.Hour || fe.RetryAfter > 2*time.Hour {
		t.Fatalf("first failure: %v; want a FetchError with RetryAfter in [1h, 2h]", err)
	}
	var wg sync.WaitGroup
	for range 200 {
		wg.Go(func() {
			var fe *FetchError
			if _, err := s.Token(); !errors.As(err, &fe) || fe.RetryAfter <= 0 {
				t.Errorf("during backoff: %v; want a FetchError", err)
			}
		})
	}
	wg.Wait()
	if got := idp.calls(); got != 1 {
		t.Fatalf("requests after 200 callers in backoff = %d; want 1", got)
	}

	clock.Advance(fe.RetryAfter)
	_, err = s.Token()
	if !errors.As(err, &fe) || fe.RetryAfter < 2*time.Hour || fe.RetryAfter > 4*time.Hour {
		t.Fatalf("second failure: %v; want RetryAfter in [2h, 4h]", err)
	}
	if got := idp.calls(); got != 2 {
		t.Fatalf("requests = %d; want 2", got)
	}

	idp.set(func(f *fakeIdP) { f.fail = nil })
	clock.Advance(fe.RetryAfter)
	tok := mustToken(t, s)
	if st := s.Status(); st.State != "valid" || st.Fetches != 3 || st.Failures != 2 ||
		!st.LastRefresh.Equal(clock.Now()) || !st.Expiry.Equal(tok.Expiry.Add(-5*time.Second)) {
		t.Errorf("Status = %+v; want valid after 3 fetches, 2 failures", st)
	}
	clock.Advance(59 * time.Minute) // past the refresh time: a call refreshes
	if got := mustToken(t, s); got != tok {
		t.Errorf("the call that started the refresh did not get the current token")
	}
	waitFor(t, "the refresh", func() bool { return s.Status().LastRefresh.Equal(clock.Now()) })
	if got := mustToken(t, s); got == tok || idp.calls() != 4 {
		t.Errorf("after the refresh: %q after %d requests; want a new token, 4 requests", got.AccessToken, idp.calls())
	}
}

// TestFailedRefreshRetriesBeforeExpiry: when a refresh ahead fails, the
// retry comes while the current token still serves (at half its remaining
// life), however long the backoff, so a short outage never outlives a
// short-lived token.
func TestFailedRefreshRetriesBeforeExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		idp := &fakeIdP{life: 2 * time.Second}
		s := RefreshAhead(idp, Options{Name: "t", MinBackoff: 30 * time.Second})
		defer s.Close()
		if _, err := s.Token(); err != nil {
			t.Fatal(err)
		}
		idp.set(func(f *fakeIdP) { f.fail = errors.New("store restarting") })
		time.Sleep(time.Second + time.Millisecond) // fake time: the refresh at half-life runs and fails
		synctest.Wait()
		if idp.calls() != 2 {
			t.Fatalf("%d token requests; want the failed refresh (2)", idp.calls())
		}
		idp.set(func(f *fakeIdP) { f.fail = nil })
		// Effective expiry is at 1.8 s; the retry must land before it.
		time.Sleep(700 * time.Millisecond)
		synctest.Wait()
		if idp.calls() != 3 {
			t.Fatalf("%d token requests by 1.7 s; want a retry before the token's expiry, not after the 30 s backoff", idp.calls())
		}
		if _, err := s.TokenContext(t.Context()); err != nil {
			t.Errorf("after the retry: %v", err)
		}
	})
}

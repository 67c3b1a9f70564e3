package tokensource

import (
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/oauth2"
)

func TestInvalidate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		idp := &fakeIdP{life: time.Hour}
		s := RefreshAhead(idp, Options{Name: "acme"})
		defer s.Close()

		tok1 := mustToken(t, s)
		for _, tt := range []struct {
			name string
			tok  *oauth2.Token // passed to Invalidate
		}{
			{"nil", nil},
			{"another token", &oauth2.Token{AccessToken: "secret-token-0"}},
			{"empty", &oauth2.Token{}},
		} {
			if s.Invalidate(tt.tok) {
				t.Errorf("Invalidate(%s) = true; want false", tt.name)
			}
		}
		if got := mustToken(t, s); got != tok1 || idp.calls() != 1 {
			t.Fatalf("no-op invalidations changed the token or fetched")
		}

		// A copy with the same access token is the current token.
		if !s.Invalidate(&oauth2.Token{AccessToken: tok1.AccessToken}) {
			t.Fatal("Invalidate(current) = false")
		}
		if s.Invalidate(tok1) {
			t.Error("second Invalidate of the same token = true")
		}
		tok2 := mustToken(t, s)
		if tok2.AccessToken == tok1.AccessToken || idp.calls() != 2 {
			t.Fatalf("after Invalidate: %q after %d requests; want a new token, 2 requests", tok2.AccessToken, idp.calls())
		}

		// A late 401 for the old token must not drop the new one.
		time.Sleep(10 * time.Minute)
		if s.Invalidate(tok1) {
			t.Error("Invalidate(stale token) = true")
		}
		if got := mustToken(t, s); got != tok2 || idp.calls() != 2 {
			t.Errorf("stale Invalidate changed the token or fetched")
		}
	})
}

func TestInvalidateStartsFetch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		idp := &fakeIdP{life: time.Hour, delay: time.Second}
		s := RefreshAhead(idp, Options{Name: "acme"})
		defer s.Close()

		tok := mustToken(t, s)
		time.Sleep(10 * time.Minute)
		s.Invalidate(tok)
		synctest.Wait()
		if idp.running() != 1 {
			t.Fatalf("no request started by Invalidate")
		}
		time.Sleep(500 * time.Millisecond)
		start := time.Now()
		mustToken(t, s) // joins the fetch Invalidate started
		if waited := time.Since(start); waited != 500*time.Millisecond || idp.calls() != 2 {
			t.Errorf("waited %v with %d requests; want the remaining 500ms of the one fetch", waited, idp.calls())
		}
	})
}

func TestRepeatedRejectionsBackOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		idp := &fakeIdP{life: time.Hour}
		s := RefreshAhead(idp, Options{Name: "acme", MinBackoff: time.Second})
		defer s.Close()

		tok := mustToken(t, s)
		time.Sleep(10 * time.Minute) // an old token: its rejection is re-fetched at once
		s.Invalidate(tok)
		tok = mustToken(t, s)

		// The API rejects each new token right away: the re-fetches back off.
		for i, want := range []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second} {
			if !s.Invalidate(tok) {
				t.Fatalf("rejection %d: Invalidate(current) = false", i+2)
			}
			calls := idp.calls()
			_, err := s.Token()
			var fe *FetchError
			if !errors.As(err, &fe) || !errors.Is(err, errRejected) || fe.RetryAfter > want || fe.RetryAfter < want/2 {
				t.Fatalf("rejection %d: Token = %v; want a FetchError with RetryAfter in [%v, %v]", i+2, err, want/2, want)
			}
			if idp.calls() != calls {
				t.Fatalf("rejection %d: fetched during the backoff", i+2)
			}
			time.Sleep(fe.RetryAfter) // the timer fetches
			tok = mustToken(t, s)
			if idp.calls() != calls+1 {
				t.Fatalf("rejection %d: %d requests after the backoff; want %d", i+2, idp.calls(), calls+1)
			}
		}

		// A token that survives to its refresh ends the streak.
		time.Sleep(31 * time.Minute)
		tok = mustToken(t, s)
		calls := idp.calls()
		s.Invalidate(tok)
		if _, err := s.Token(); err != nil || idp.calls() != calls+1 {
			t.Errorf("after a healthy refresh: Token = %v with %d requests; want an immediate re-fetch", err, idp.calls()-calls)
		}
	})
}

// TestInvalidateRace runs Token, Invalidate and Status from many goroutines
// (run with -race): every token is dropped at most once, and every fetch
// after the first is caused by a drop.
func TestInvalidateRace(t *testing.T) {
	idp := &fakeIdP{life: time.Hour}
	s := RefreshAhead(idp, Options{Name: "acme", MinBackoff: time.Microsecond, MaxBackoff: 50 * time.Microsecond})
	defer s.Close()

	var mu sync.Mutex
	dropped := map[string]int{} // access token → successful Invalidate calls
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 300 {
				tok, err := s.Token()
				var fe *FetchError
				switch {
				case errors.As(err, &fe):
					continue // backing off after quick rejections
				case err != nil:
					t.Errorf("Token: %v", err)
					return
				case tok.AccessToken == "":
					t.Errorf("Token returned an empty token")
					return
				}
				if (g+i)%3 == 0 && s.Invalidate(tok) {
					mu.Lock()
					dropped[tok.AccessToken]++
					mu.Unlock()
				}
				if i%50 == 0 {
					s.Status()
				}
			}
		})
	}
	wg.Wait()

	drops := 0
	for at, n := range dropped {
		if n != 1 {
			t.Errorf("token %s dropped %d times; want once", at, n)
		}
		drops += n
	}
	if drops == 0 {
		t.Fatal("no token was ever dropped; the test proves nothing")
	}
	// Every fetch after the first, and every timer retry, follows a drop.
	waitFor(t, "fetches to settle", func() bool { return s.Status().State != "refreshing" })
	if got := s.Status().Fetches; got > uint64(drops)+1 {
		t.Errorf("%d fetches for %d drops; want at most drops+1", got, drops)
	}
}

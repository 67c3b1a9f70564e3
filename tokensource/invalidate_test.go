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

// TestRejectionsNeverBackOff: a caller whose requests the API always
// refuses (invariant 7) drops a token at most once, never pushes the Source
// into backoff and never counts a failure; the replacement survives its
// 401s for replacedHold.
func TestRejectionsNeverBackOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		idp := &fakeIdP{life: time.Hour}
		s := RefreshAhead(idp, Options{Name: "acme", MinBackoff: time.Second})
		defer s.Close()

		tok1 := mustToken(t, s)
		if !s.Invalidate(tok1) {
			t.Fatal("Invalidate(fresh token) = false; want the first 401 to drop it")
		}
		tok2 := mustToken(t, s)
		for i := range 100 { // a hostile caller's 401s on the replacement
			if s.Invalidate(tok2) {
				t.Fatalf("401 %d on the replacement dropped it", i)
			}
			if got := mustToken(t, s); got != tok2 {
				t.Fatalf("401 %d: Token = %q; want the replacement", i, got.AccessToken)
			}
			time.Sleep(time.Second)
		}
		st := s.Status()
		if idp.calls() != 2 || st.State != "valid" || st.Failures != 0 || st.LastError != "" {
			t.Fatalf("after 100 rejections: %d requests, status %+v; want 2 requests, valid, no failure", idp.calls(), st)
		}

		// Past the hold, the replacement may be dropped once: at once, no backoff.
		time.Sleep(replacedHold)
		if !s.Invalidate(tok2) {
			t.Fatal("Invalidate(replacement past its hold) = false")
		}
		if tok3 := mustToken(t, s); tok3 == tok2 || idp.calls() != 3 {
			t.Fatalf("after the hold: %d requests; want a third token at once", idp.calls())
		}
		if st := s.Status(); st.Failures != 0 || st.LastError != "" {
			t.Errorf("status %+v; want no failure", st)
		}
	})
}

// TestRejectedTokenServedWhileNoReplacement: when the replacement cannot be
// fetched, the dropped token serves again (other callers' paths work) and
// is never dropped a second time.
func TestRejectedTokenServedWhileNoReplacement(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		idp := &fakeIdP{life: time.Hour}
		s := RefreshAhead(idp, Options{Name: "acme", MinBackoff: time.Second})
		defer s.Close()

		tok1 := mustToken(t, s)
		idp.set(func(f *fakeIdP) { f.fail = errors.New("idp down") })
		if !s.Invalidate(tok1) {
			t.Fatal("Invalidate(current) = false")
		}
		if got := mustToken(t, s); got.AccessToken != tok1.AccessToken {
			t.Fatalf("Token = %q while the IdP is down; want the dropped token served again", got.AccessToken)
		}
		if s.Invalidate(tok1) {
			t.Error("the restored token was dropped a second time")
		}
		idp.set(func(f *fakeIdP) { f.fail = nil })
		waitFor(t, "the retry to bring a new token", func() bool { return mustToken(t, s).AccessToken != tok1.AccessToken })
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

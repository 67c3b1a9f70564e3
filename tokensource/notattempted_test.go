package tokensource_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/oauth2"

	"github.com/sidekey/sidekey/internal/testwait"
	"github.com/sidekey/sidekey/store"
	"github.com/sidekey/sidekey/tokensource"
)

// lockCountingStore is a memory store that counts the per-tenant locks
// taken.
type lockCountingStore struct {
	tokensource.Storage
	locks atomic.Int64
}

func (s *lockCountingStore) Lock(ctx context.Context, name string) (func(), error) {
	s.locks.Add(1)
	return s.Storage.Lock(ctx, name)
}

// countingObserver counts the fetches it is told about.
type countingObserver struct{ n atomic.Int64 }

func (o *countingObserver) FetchDone(string, time.Duration, error) { o.n.Add(1) }

// TestNoTokenWithoutAPersonIsNotAFailure (issues 11 and 16): when
// NeedsPerson says no token can be had (never connected), the chain takes
// no lock, makes no token request, counts neither a fetch nor a failure,
// tells the observer nothing and logs it once per cause, however often it
// is asked.
func TestNoTokenWithoutAPersonIsNotAFailure(t *testing.T) {
	st := &lockCountingStore{Storage: store.NewMemory()}
	idp := &rotatingIdP{live: "rt-0", life: time.Hour}
	var cause atomic.Value
	cause.Store("tenant acme is not connected")
	stored := tokensource.Stored(tokensource.StoredOptions{
		Name: "acme", Storage: st, Key: "tokens/acme", Fetch: idp.refresh,
		NeedsPerson: func(prev *oauth2.Token) error {
			if prev == nil {
				return errors.New(cause.Load().(string))
			}
			return nil
		},
	})
	core, logs := observer.New(zapcore.WarnLevel)
	obs := &countingObserver{}
	s := tokensource.RefreshAhead(stored, tokensource.Options{Name: "acme", Logger: zap.New(core), Observer: obs,
		MinBackoff: time.Microsecond, MaxBackoff: time.Microsecond})
	defer s.Close()

	ask := func(n int) {
		for i := range n {
			if _, err := s.Token(); err == nil || !tokensource.IsNotAttempted(err) {
				t.Fatalf("Token %d = %v; want a NotAttempted error", i, err)
			}
			testwait.For(t, "the backoff to pass", func() bool { return !s.Status().NextRefresh.After(time.Now()) })
		}
	}
	ask(5)
	status := s.Status()
	if status.Fetches != 0 || status.Failures != 0 || status.LastError == "" || status.State != "error" {
		t.Errorf("status %+v; want no fetch, no failure, the reason shown", status)
	}
	if idp.fetches.Load() != 0 || st.locks.Load() != 0 || obs.n.Load() != 0 {
		t.Errorf("%d token requests, %d locks, %d observer events; want none", idp.fetches.Load(), st.locks.Load(), obs.n.Load())
	}
	testwait.For(t, "the warning", func() bool { return logs.Len() >= 1 })
	cause.Store("tenant acme was disconnected")
	ask(2)
	s.Close()
	if err := s.Wait(context.Background()); err != nil { // every report logged
		t.Fatal(err)
	}
	if n := logs.Len(); n != 2 {
		t.Errorf("%d warnings for 7 asks with 2 causes; want 2:\n%v", n, logs.All())
	}
}

// TestUnrefreshableTokenSurvivesA401 (invariant 7): a 401 to a token that
// nothing can replace (Istores) drops it once; since no replacement can be
// had without a person, it serves again, is never dropped twice, and no
// failure is counted.
func TestUnrefreshableTokenSurvivesA401(t *testing.T) {
	idp := &rotatingIdP{life: time.Hour}
	stored := tokensource.Stored(tokensource.StoredOptions{
		Name: "il", Storage: store.NewMemory(), Key: "tokens/il", Fetch: idp.refresh, CannotRefresh: true,
		NeedsPerson: func(*oauth2.Token) error { return errors.New("istores has no refresh grant") },
	})
	ctx := context.Background()
	if err := stored.Save(ctx, &oauth2.Token{AccessToken: "at-consent", Expiry: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	s := tokensource.RefreshAhead(stored, tokensource.Options{Name: "il"})
	defer s.Close()
	tok, err := s.Token()
	if err != nil {
		t.Fatal(err)
	}
	if !s.Invalidate(tok) {
		t.Fatal("first 401: Invalidate = false")
	}
	again, err := s.Token()
	if err != nil || again.AccessToken != tok.AccessToken {
		t.Fatalf("after the 401: %v, %v; want the same token served again", again, err)
	}
	if s.Invalidate(again) {
		t.Error("second 401 dropped the token again")
	}
	if st := s.Status(); st.Failures != 0 || !st.Valid || !st.NextRefresh.IsZero() {
		t.Errorf("status %+v; want valid, no failure, no refresh planned", st)
	}
	if idp.fetches.Load() != 0 {
		t.Errorf("%d token requests; want none", idp.fetches.Load())
	}
}

package tokensource_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/sidekey/sidekey/store"
	"github.com/sidekey/sidekey/tokensource"
)

// rotatingIdP issues access tokens with rotating, single-use refresh
// tokens, and counts reuse of a dead refresh token (which a correct chain
// never causes).
type rotatingIdP struct {
	mu      sync.Mutex
	live    string // the one valid refresh token
	n       int
	reuse   int
	fetches atomic.Int64
	life    time.Duration
}

func (p *rotatingIdP) refresh(_ context.Context, prev *oauth2.Token) (*oauth2.Token, error) {
	p.fetches.Add(1)
	p.mu.Lock()
	defer p.mu.Unlock()
	if prev == nil || prev.RefreshToken == "" {
		return nil, errNoConsent
	}
	if prev.RefreshToken != p.live {
		p.reuse++
		return nil, errDeadGrant
	}
	p.n++
	p.live = fmt.Sprintf("rt-%d", p.n)
	return &oauth2.Token{AccessToken: fmt.Sprintf("at-%d", p.n), RefreshToken: p.live, Expiry: time.Now().Add(p.life)}, nil
}

var (
	errNoConsent = errors.New("not connected")
	errDeadGrant = errors.New("invalid_grant")
)

func storedFor(st store.Store, idp *rotatingIdP) *tokensource.StoredSource {
	return tokensource.Stored(tokensource.StoredOptions{
		Name: "acme", Storage: st, Key: "tokens/acme", Fetch: idp.refresh,
		Final: func(err error) bool { return errors.Is(err, errDeadGrant) },
	})
}

func TestStoredAnswersFromStoreAfterRestart(t *testing.T) {
	st := store.NewMemory()
	idp := &rotatingIdP{live: "rt-0", life: time.Hour}
	first := storedFor(st, idp)
	if err := first.Save(context.Background(), &oauth2.Token{AccessToken: "at-0", RefreshToken: "rt-0", Expiry: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	restarted := storedFor(st, idp) // a new process over the same store
	tok, err := restarted.Token()
	if err != nil || tok.AccessToken != "at-0" {
		t.Fatalf("after restart: %v, %v; want the stored at-0", tok, err)
	}
	if n := idp.fetches.Load(); n != 0 {
		t.Errorf("fetches = %d; want 0 (the stored token is valid)", n)
	}
}

func TestStoredRotatesAndStoresBeforeReturning(t *testing.T) {
	st := store.NewMemory()
	idp := &rotatingIdP{live: "rt-0", life: time.Hour}
	s := storedFor(st, idp)
	_ = s.Save(context.Background(), &oauth2.Token{AccessToken: "at-0", RefreshToken: "rt-0", Expiry: time.Now().Add(time.Hour)})
	if tok, _ := s.Token(); tok.AccessToken != "at-0" {
		t.Fatalf("first token %q; want at-0", tok.AccessToken)
	}
	tok, err := s.Token() // the engine asks again: it wants a new one
	if err != nil || tok.AccessToken != "at-1" || tok.RefreshToken != "rt-1" {
		t.Fatalf("refresh: %+v, %v; want at-1 / rt-1", tok, err)
	}
	b, err := st.Load(context.Background(), "tokens/acme")
	if err != nil {
		t.Fatal(err)
	}
	var rec struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	_ = json.Unmarshal(b, &rec)
	if rec.AccessToken != "at-1" || rec.RefreshToken != "rt-1" {
		t.Errorf("store holds %+v; want the rotated pair", rec)
	}
}

func TestStoredPicksUpAnotherReplicasRefresh(t *testing.T) {
	st := store.NewMemory()
	idp := &rotatingIdP{live: "rt-0", life: time.Hour}
	a, b := storedFor(st, idp), storedFor(st, idp)
	_ = a.Save(context.Background(), &oauth2.Token{AccessToken: "at-0", RefreshToken: "rt-0", Expiry: time.Now().Add(time.Hour)})
	_, _ = a.Token()
	_, _ = b.Token() // both hold at-0
	if tok, _ := a.Token(); tok.AccessToken != "at-1" {
		t.Fatalf("a refreshed to %q; want at-1", tok.AccessToken)
	}
	tok, err := b.Token() // b wants a new token too: a's is newer than b's
	if err != nil || tok.AccessToken != "at-1" {
		t.Fatalf("b got %v, %v; want a's at-1 without a refresh", tok, err)
	}
	if n := idp.fetches.Load(); n != 1 {
		t.Errorf("fetches = %d; want 1", n)
	}
}

// failingStore is the real memory store with writes that can be made to
// fail, as a full disk or a lost Redis would.
type failingStore struct {
	realStore
	fail atomic.Bool
}

type realStore = store.Store

func (f *failingStore) Store(ctx context.Context, key string, v []byte) error {
	if f.fail.Load() {
		return errors.New("disk full")
	}
	return f.realStore.Store(ctx, key, v)
}

func (f *failingStore) CompareAndSwap(ctx context.Context, key string, old, v []byte) (bool, error) {
	if f.fail.Load() {
		return false, errors.New("disk full")
	}
	return f.realStore.CompareAndSwap(ctx, key, old, v)
}

func TestStoredKeepsARotatedTokenItCouldNotWrite(t *testing.T) {
	st := &failingStore{realStore: store.NewMemory()}
	idp := &rotatingIdP{live: "rt-0", life: time.Hour}
	s := storedFor(st, idp)
	_ = s.Save(context.Background(), &oauth2.Token{AccessToken: "at-0", RefreshToken: "rt-0", Expiry: time.Now().Add(time.Hour)})
	_, _ = s.Token()
	st.fail.Store(true)
	if tok, err := s.Token(); err == nil {
		t.Fatalf("got %v with a failing store; want an error (a token must be stored before use)", tok.AccessToken)
	}
	st.fail.Store(false)
	tok, err := s.Token()
	if err != nil || tok.AccessToken != "at-1" {
		t.Fatalf("after the store recovered: %v, %v; want the kept at-1", tok, err)
	}
	if n := idp.fetches.Load(); n != 1 || idp.reuse != 0 {
		t.Errorf("fetches = %d, reuse = %d; want 1 fetch and no reuse", n, idp.reuse)
	}
}

func TestStoredClearsARefusedRefreshToken(t *testing.T) {
	st := store.NewMemory()
	idp := &rotatingIdP{live: "rt-other", life: time.Hour}
	s := storedFor(st, idp)
	_ = s.Save(context.Background(), &oauth2.Token{AccessToken: "at-0", RefreshToken: "rt-0", Expiry: time.Now().Add(time.Hour)})
	_, _ = s.Token()
	if _, err := s.Token(); !errors.Is(err, errDeadGrant) {
		t.Fatalf("refresh with a dead token: %v; want invalid_grant", err)
	}
	if _, err := s.Token(); !errors.Is(err, errNoConsent) {
		t.Fatalf("next attempt: %v; want the grant not to be tried again", err)
	}
	if idp.reuse != 1 {
		t.Errorf("dead refresh token tried %d times; want once", idp.reuse)
	}
}

// TestReplicasNeverReuseARotatedRefreshToken runs three engines (replicas)
// over one store with 150 ms tokens for a while: the store's lock and the
// re-read under it must keep every refresh on the live refresh token.
func TestReplicasNeverReuseARotatedRefreshToken(t *testing.T) {
	st := store.NewMemory()
	idp := &rotatingIdP{live: "rt-0", life: 150 * time.Millisecond}
	ctx := context.Background()
	_ = storedFor(st, idp).Save(ctx, &oauth2.Token{AccessToken: "at-0", RefreshToken: "rt-0", Expiry: time.Now().Add(150 * time.Millisecond)})
	var engines []*tokensource.Source
	for range 3 {
		e := tokensource.RefreshAhead(storedFor(st, idp), tokensource.Options{Name: "acme", MinBackoff: 10 * time.Millisecond})
		defer e.Close()
		engines = append(engines, e)
	}
	deadline := time.Now().Add(1500 * time.Millisecond)
	var wg sync.WaitGroup
	var failures atomic.Int64
	for _, e := range engines {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				if _, err := e.TokenContext(ctx); err != nil {
					failures.Add(1)
				}
			}
		})
	}
	wg.Wait()
	idp.mu.Lock()
	defer idp.mu.Unlock()
	if idp.reuse != 0 {
		t.Errorf("refresh token reused %d times; want 0", idp.reuse)
	}
	if failures.Load() != 0 {
		t.Errorf("%d token calls failed; want none", failures.Load())
	}
	t.Logf("%d refreshes fleet-wide", idp.n)
	// 1.5 s of 150 ms tokens refreshed at half-life: about 20 refreshes
	// fleet-wide, not 3× that.
	if idp.n < 5 || idp.n > 30 {
		t.Errorf("%d refreshes fleet-wide; want about 20", idp.n)
	}
}

// TestStoredNeverOverwritesANewerToken: a replica whose lock lease ran out
// (simulated by another writer storing during its fetch) must not overwrite
// the newer token; it hands out the stored one instead.
func TestStoredNeverOverwritesANewerToken(t *testing.T) {
	st := store.NewMemory()
	ctx := context.Background()
	other := tokensource.Stored(tokensource.StoredOptions{Name: "acme", Storage: st, Key: "tokens/acme",
		Fetch: func(context.Context, *oauth2.Token) (*oauth2.Token, error) { return nil, errNoConsent }})
	_ = other.Save(ctx, &oauth2.Token{AccessToken: "at-0", RefreshToken: "rt-0", Expiry: time.Now().Add(time.Hour)})
	slow := tokensource.Stored(tokensource.StoredOptions{Name: "acme", Storage: st, Key: "tokens/acme",
		Fetch: func(context.Context, *oauth2.Token) (*oauth2.Token, error) {
			// Meanwhile another replica, no longer excluded, stores its token.
			_ = other.Save(ctx, &oauth2.Token{AccessToken: "at-other", RefreshToken: "rt-other", Expiry: time.Now().Add(time.Hour)})
			return &oauth2.Token{AccessToken: "at-slow", RefreshToken: "rt-slow", Expiry: time.Now().Add(time.Hour)}, nil
		}})
	_, _ = slow.Token() // at-0
	tok, err := slow.Token()
	if err != nil || tok.AccessToken != "at-other" {
		t.Fatalf("got %v, %v; want the other replica's at-other", tok, err)
	}
	stored, _ := slow.Stored(ctx)
	if stored.RefreshToken != "rt-other" {
		t.Errorf("store holds %q; the newer token was overwritten", stored.RefreshToken)
	}
}

// TestRefreshOutlivesItsCaller: a caller that goes away mid-refresh does not
// cancel the refresh-token request — the platform may already have rotated
// the refresh token — and its answer is stored.
func TestRefreshOutlivesItsCaller(t *testing.T) {
	st := store.NewMemory()
	defer st.Close()
	called, answered := make(chan struct{}), make(chan struct{})
	src := tokensource.Stored(tokensource.StoredOptions{
		Name: "acme", Storage: st, Key: "tokens/acme",
		Fetch: func(ctx context.Context, prev *oauth2.Token) (*oauth2.Token, error) {
			close(called)
			<-answered // the platform answers after the caller left
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if _, ok := ctx.Deadline(); !ok {
				return nil, errors.New("a refresh request without a deadline")
			}
			return &oauth2.Token{AccessToken: "at-2", RefreshToken: "rt-2", Expiry: time.Now().Add(time.Hour)}, nil
		},
	})
	if err := src.Save(context.Background(), &oauth2.Token{AccessToken: "at-1", RefreshToken: "rt-1", Expiry: time.Now().Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := src.TokenContext(ctx)
		errc <- err
	}()
	<-called
	cancel()
	close(answered)
	if err := <-errc; err != nil {
		t.Fatalf("refresh after the caller left: %v", err)
	}
	tok, err := src.Stored(context.Background())
	if err != nil || tok == nil || tok.RefreshToken != "rt-2" {
		t.Fatalf("stored %+v, %v; want the rotated refresh token rt-2", tok, err)
	}
}

// TestRefreshExpiryIsStoredAndCarried: a refresh token's stated expiry is
// stored with it, read back after a restart, and kept for a rotated
// refresh token whose answer states none (SCAYLE's rule).
func TestRefreshExpiryIsStoredAndCarried(t *testing.T) {
	st := store.NewMemory()
	defer st.Close()
	consentEnds := time.Now().Add(30 * 24 * time.Hour).Truncate(time.Second).UTC()
	n := 0
	fetch := func(_ context.Context, prev *oauth2.Token) (*oauth2.Token, error) {
		n++
		return &oauth2.Token{AccessToken: fmt.Sprintf("at-%d", n), RefreshToken: fmt.Sprintf("rt-%d", n), Expiry: time.Now().Add(time.Hour)}, nil
	}
	src := tokensource.Stored(tokensource.StoredOptions{Name: "acme", Storage: st, Key: "tokens/acme", Fetch: fetch})
	first := (&oauth2.Token{AccessToken: "at-0", RefreshToken: "rt-0", Expiry: time.Now().Add(-time.Minute)}).
		WithExtra(map[string]any{tokensource.RefreshExpiryExtra: consentEnds})
	if err := src.Save(context.Background(), first); err != nil {
		t.Fatal(err)
	}
	tok, err := src.Token() // the stored token ran out: a refresh rotates rt-0
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken != "rt-1" || !tokensource.RefreshExpiry(tok).Equal(consentEnds) {
		t.Errorf("after rotation: %s, refresh expiry %v; want rt-1 keeping %v", tok.RefreshToken, tokensource.RefreshExpiry(tok), consentEnds)
	}
	// A restarted replica reads the same from the store.
	again := tokensource.Stored(tokensource.StoredOptions{Name: "acme", Storage: st, Key: "tokens/acme", Fetch: fetch})
	stored, err := again.Stored(context.Background())
	if err != nil || !tokensource.RefreshExpiry(stored).Equal(consentEnds) {
		t.Errorf("stored refresh expiry %v, %v; want %v", tokensource.RefreshExpiry(stored), err, consentEnds)
	}
	raw, _ := st.Load(context.Background(), "tokens/acme")
	if info, err := tokensource.ReadStoredInfo(raw); err != nil || !info.RefreshExpiry.Equal(consentEnds) {
		t.Errorf("ReadStoredInfo refresh expiry %v, %v; want %v", info.RefreshExpiry, err, consentEnds)
	}
}

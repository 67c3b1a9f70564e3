package tokensource

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/sidekey/sidekey/internal/testwait"
)

// fakeIdP stands in for an identity provider's token endpoint: every Token
// call is one token request, like a provider's raw grant. Tests set its
// fields before first use and change them later only through set.
type fakeIdP struct {
	life  time.Duration    // lifetime of issued tokens; 0: permanent (no Expiry)
	delay time.Duration    // how long a request takes (fake time inside synctest bubbles)
	gate  chan struct{}    // if not nil, every request waits for a receive from it
	now   func() time.Time // clock for Expiry; nil: time.Now
	// mint, if not nil, replaces the issued token (for malformed tokens).
	mint func(n int, now time.Time) *oauth2.Token

	mu        sync.Mutex
	fail      error       // if not nil, requests fail with it
	n         int         // requests started
	active    int         // requests running
	maxActive int         // most requests ever running at once
	calledAt  []time.Time // start time of each request
}

// Token performs one fake token request.
func (f *fakeIdP) Token() (*oauth2.Token, error) {
	now := time.Now
	if f.now != nil {
		now = f.now
	}
	f.mu.Lock()
	f.n++
	n := f.n
	f.active++
	f.maxActive = max(f.maxActive, f.active)
	f.calledAt = append(f.calledAt, now())
	f.mu.Unlock()

	if f.gate != nil {
		<-f.gate
	}
	if f.delay > 0 {
		time.Sleep(f.delay) // the IdP's latency, not a wait for a condition
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	f.active--
	if f.fail != nil {
		return nil, f.fail
	}
	if f.mint != nil {
		return f.mint(n, now()), nil
	}
	tok := &oauth2.Token{AccessToken: fmt.Sprintf("secret-token-%d", n), TokenType: "Bearer"}
	if f.life > 0 {
		tok.Expiry = now().Add(f.life)
	}
	return tok, nil
}

// set changes the fake's behaviour under its lock.
func (f *fakeIdP) set(change func(f *fakeIdP)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	change(f)
}

// calls returns the number of token requests started so far.
func (f *fakeIdP) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

// running returns the number of token requests in progress.
func (f *fakeIdP) running() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.active
}

// mostAtOnce returns the largest number of requests that ever ran at once.
func (f *fakeIdP) mostAtOnce() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.maxActive
}

// times returns the start times of the requests so far.
func (f *fakeIdP) times() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.calledAt...)
}

// fakeClock is a settable clock for Options.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// mustToken calls s.Token and fails the test on error.
func mustToken(t testing.TB, s *Source) *oauth2.Token {
	t.Helper()
	tok, err := s.Token()
	if err != nil {
		t.Fatalf("Token: %v", err)
	}
	return tok
}

// waitFor is testwait.For.
var waitFor = testwait.For

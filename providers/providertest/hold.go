package providertest

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Crash tests need to know where a token request stands when they kill the
// client: a refresh the platform has not yet processed loses nothing, one it
// has processed (rotating the refresh token) but whose answer the client
// has not stored loses the grant — the window no client can close. The
// switches here let a test keep its kills out of that window, or aim at it.

// tokenEndpoint wraps a simulator's token handler: it reads the request
// body first (so that a client that goes away is noticed), waits while
// token requests are held (HoldTokenRequests), drops a request whose client
// went away meanwhile — it never reached the grant — and delays the answer
// of a processed one by the token response delay.
func (c *core) tokenEndpoint(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
		var rest io.Reader = bytes.NewReader(body)
		if err != nil {
			rest = io.MultiReader(rest, errReader{err})
		}
		r.Body = io.NopCloser(rest)

		if !c.enterTokenEndpoint(r.Context()) {
			return // the client went away while held: dropped unprocessed
		}
		defer c.leaveTokenEndpoint()
		delay := time.Duration(c.tokenResponseDelay.Load())
		if delay <= 0 {
			h(w, r)
			return
		}
		var late lateResponse
		late.header = w.Header()
		h(&late, r) // processed now: a refresh token may have rotated
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-c.done:
		}
		late.sendTo(w)
	}
}

// tokenGate holds token requests for HoldTokenRequests.
type tokenGate struct {
	mu      sync.Mutex
	idle    *sync.Cond    // signalled when active drops to 0
	held    chan struct{} // closed on release; nil: not holding
	active  int           // requests being processed
	waiting int           // requests being held
	dropped atomic.Int64  // held requests whose client went away
}

// enterTokenEndpoint waits while token requests are held; false: ctx ended
// while it was held, and the request is dropped.
func (c *core) enterTokenEndpoint(ctx context.Context) bool {
	g := &c.gate
	g.mu.Lock()
	defer g.mu.Unlock()
	waited := false
	for g.held != nil && ctx.Err() == nil {
		held := g.held
		waited = true
		g.waiting++
		g.mu.Unlock()
		select {
		case <-held:
		case <-ctx.Done():
		}
		g.mu.Lock()
		g.waiting--
	}
	if waited && ctx.Err() != nil {
		g.dropped.Add(1)
		return false
	}
	g.active++
	return true
}

// leaveTokenEndpoint ends a request entered with enterTokenEndpoint.
func (c *core) leaveTokenEndpoint() {
	g := &c.gate
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.active--; g.active == 0 && g.idle != nil {
		g.idle.Broadcast()
	}
}

// HoldTokenRequests stops the token endpoint from processing requests: it
// waits for the ones being processed to be answered, and holds new ones
// until release is called. A held request whose client goes away is
// dropped without being processed (TokenRequestsDropped counts them).
func (c *core) HoldTokenRequests() (release func()) {
	g := &c.gate
	g.mu.Lock()
	if g.idle == nil {
		g.idle = sync.NewCond(&g.mu)
	}
	held := make(chan struct{})
	g.held = held
	for g.active > 0 {
		g.idle.Wait()
	}
	g.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			g.mu.Lock()
			g.held = nil
			g.mu.Unlock()
			close(held)
		})
	}
}

// TokenRequestsHeld is the number of token requests being held now.
func (c *core) TokenRequestsHeld() int {
	c.gate.mu.Lock()
	defer c.gate.mu.Unlock()
	return c.gate.waiting
}

// TokenRequestsDropped counts the token requests dropped unprocessed
// because their client went away while they were held.
func (c *core) TokenRequestsDropped() int64 { return c.gate.dropped.Load() }

// SetTokenResponseDelay delays the answer of every token request by d
// after it was processed (0: none): the platform has already issued the new
// tokens — and rotated the refresh token — when the client gets them, as
// over a slow network.
func (c *core) SetTokenResponseDelay(d time.Duration) { c.tokenResponseDelay.Store(int64(d)) }

// LatestTokenUsed reports whether the access token issued last has been
// presented to the API (true when none was issued yet). A client that only
// uses a token once it has stored it has then stored that token's refresh
// token too.
func (c *core) LatestTokenUsed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.latestUsed
}

// WaitLatestTokenUsed waits until LatestTokenUsed or ctx is done, and
// reports which.
func (c *core) WaitLatestTokenUsed(ctx context.Context) bool {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !c.LatestTokenUsed() {
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
	return true
}

// noteIssued records tok as the latest access token issued. c.mu is held.
func (c *core) noteIssuedLocked(tok string) {
	c.latestIssued, c.latestUsed = tok, false
}

// noteUsed records the token an API request presented. c.mu is held.
func (c *core) noteUsedLocked(r *http.Request, f flavor) {
	if c.latestUsed || c.latestIssued == "" {
		return
	}
	auth := r.Header.Get("Authorization")
	if bearer, ok := strings.CutPrefix(auth, "Bearer "); ok && bearer == c.latestIssued {
		c.latestUsed = true
	} else if f.tokenHeader != "" && r.Header.Get(f.tokenHeader) == c.latestIssued {
		c.latestUsed = true
	}
}

// lateResponse keeps a handler's answer to send it later.
type lateResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (l *lateResponse) Header() http.Header { return l.header }

func (l *lateResponse) WriteHeader(status int) {
	if l.status == 0 {
		l.status = status
	}
}

func (l *lateResponse) Write(p []byte) (int, error) {
	if l.status == 0 {
		l.status = http.StatusOK
	}
	return l.body.Write(p)
}

// sendTo writes the kept answer to w (whose header map it already shares).
func (l *lateResponse) sendTo(w http.ResponseWriter) {
	if l.status == 0 {
		l.status = http.StatusOK
	}
	w.WriteHeader(l.status)
	_, _ = w.Write(l.body.Bytes())
}

// errReader fails every read with err.
type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

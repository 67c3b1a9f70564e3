package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"go.uber.org/zap"
	"golang.org/x/oauth2"

	"github.com/sidekey/sidekey/providers"
	"github.com/sidekey/sidekey/proxy"
	"github.com/sidekey/sidekey/tokensource"
)

// Session engines: each session's token chain, loaded from the store on a
// session's first request and held in its tenant's LRU.

// sessionLoad is one session load in progress, shared by concurrent
// requests for it.
type sessionLoad struct {
	done chan struct{}
	e    *sessionEngine
	err  error
}

// sessionEngine is one customer session's token engine. It implements
// proxy.TokenSource, turning an ended grant into 401 session_expired.
type sessionEngine struct {
	set     *sessions
	tenant  string
	hash    string
	stored  *tokensource.StoredSource
	engine  *tokensource.Source
	raw     atomic.Pointer[[]byte] // the session record as last read or written
	touched atomic.Int64           // unix nanoseconds of the LastUsed last stored
	used    atomic.Int64           // unix nanoseconds of the last request on this replica
	busy    atomic.Bool            // a touch is being written
	ended   atomic.Bool            // its record was found gone (ended on another replica)
}

// TokenContext returns the customer's access token.
func (e *sessionEngine) TokenContext(ctx context.Context) (*oauth2.Token, error) {
	if e.ended.Load() {
		return nil, &proxy.SessionError{Code: proxy.CodeSessionUnknown, Message: "no such session (it was ended)"}
	}
	tok, err := e.engine.TokenContext(ctx)
	switch {
	case err == nil:
		return tok, nil
	case errors.Is(err, errSessionGone):
		e.set.evict(e.tenant, e.hash)
		return nil, &proxy.SessionError{Code: proxy.CodeSessionUnknown, Message: "no such session (it was ended)"}
	case errors.Is(err, errSessionEnded), errors.Is(err, providers.ErrConsentRequired):
		e.set.remove(context.WithoutCancel(ctx), e.tenant, e.hash)
		return nil, &proxy.SessionError{Code: proxy.CodeSessionExpired, Message: "the session's login expired: send the customer to log in again"}
	}
	return nil, err
}

// Invalidate drops tok if it is still the session's current token. When
// the engine keeps it (a token that already replaced a rejected one is not
// dropped again: DESIGN invariant 7), the 401 may mean the session was
// ended on another replica: if its record is gone, the engine is forgotten
// and reports session_unknown from then on, the replay included.
func (e *sessionEngine) Invalidate(tok *oauth2.Token) bool {
	if e.engine.Invalidate(tok) {
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := e.set.s.store.Load(ctx, sessionKey(e.tenant, e.hash)); errors.Is(err, fs.ErrNotExist) {
		e.ended.Store(true)
		e.set.evict(e.tenant, e.hash)
		return true
	}
	return false
}

// lookupFor is the proxy's session lookup for tenant t.
func (ss *sessions) lookupFor(name string, t *tenant) proxy.SessionLookup {
	return func(r *http.Request) (proxy.TokenSource, error) {
		handle := r.Header.Get(proxy.SessionHeader)
		if handle == "" {
			return nil, &proxy.SessionError{Code: proxy.CodeSessionRequired,
				Message: "tenant " + name + " holds per-customer sessions: send the customer's session handle in " + proxy.SessionHeader}
		}
		hash, ok := handleHash(handle)
		if !ok {
			return nil, &proxy.SessionError{Code: proxy.CodeSessionUnknown, Message: "no such session"}
		}
		return ss.engine(r.Context(), name, t, hash)
	}
}

// cache returns tenant's engine LRU, creating it with bound.
func (ss *sessions) cache(tenant string, bound int) *lru.Cache[string, *sessionEngine] {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	c, ok := ss.engines[tenant]
	if !ok {
		c, _ = lru.NewWithEvict(max(bound, 1), func(_ string, e *sessionEngine) { ss.retire(e) })
		ss.engines[tenant] = c
	}
	return c
}

// retire stops an evicted engine once the requests routed to it a moment
// ago are surely done (at once after closeAll).
func (ss *sessions) retire(e *sessionEngine) {
	ss.mu.Lock()
	closed := ss.closed
	ss.mu.Unlock()
	if closed {
		e.engine.Close()
		return
	}
	time.AfterFunc(evictGrace, e.engine.Close)
}

// engine returns the engine of session hash of tenant name, loading it
// from the store when needed (once, however many requests ask at once).
func (ss *sessions) engine(ctx context.Context, name string, t *tenant, hash string) (*sessionEngine, error) {
	conf := sessionsConf(t)
	c := ss.cache(name, conf.ActiveBound())
	if e, ok := c.Get(hash); ok {
		e.used.Store(ss.s.now().UnixNano())
		ss.touch(e, conf.Idle())
		return e, nil
	}
	key := name + "/" + hash
	ss.mu.Lock()
	l, running := ss.loading[key]
	if !running {
		l = &sessionLoad{done: make(chan struct{})}
		ss.loading[key] = l
	}
	ss.mu.Unlock()
	if !running {
		l.e, l.err = ss.load(ctx, name, t, hash)
		if l.err == nil {
			c.Add(hash, l.e)
		}
		ss.mu.Lock()
		delete(ss.loading, key)
		ss.mu.Unlock()
		close(l.done)
	}
	select {
	case <-l.done:
		return l.e, l.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// load reads session hash of tenant name and builds its engine.
func (ss *sessions) load(ctx context.Context, name string, t *tenant, hash string) (*sessionEngine, error) {
	s := ss.s
	b, err := s.store.Load(ctx, sessionKey(name, hash))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &proxy.SessionError{Code: proxy.CodeSessionUnknown, Message: "no such session"}
	}
	if err != nil {
		return nil, fmt.Errorf("server: reading a session of %s: %w", name, err)
	}
	var rec sessionRecord
	if err := json.Unmarshal(b, &rec); err != nil || rec.Tenant != name {
		return nil, &proxy.SessionError{Code: proxy.CodeSessionUnknown, Message: "no such session"}
	}
	if !s.now().Before(rec.expiry(sessionsConf(t).Idle())) {
		ss.remove(context.WithoutCancel(ctx), name, hash)
		return nil, &proxy.SessionError{Code: proxy.CodeSessionExpired, Message: "the session expired: send the customer to log in again"}
	}
	e := ss.newEngine(name, t, hash)
	e.used.Store(s.now().UnixNano())
	e.raw.Store(&b)
	e.touched.Store(rec.LastUsed.UnixNano())
	ss.touch(e, sessionsConf(t).Idle())
	return e, nil
}

// newEngine builds the token chain of one session.
func (ss *sessions) newEngine(name string, t *tenant, hash string) *sessionEngine {
	s := ss.s
	e := &sessionEngine{set: ss, tenant: name, hash: hash}
	e.stored = tokensource.Stored(tokensource.StoredOptions{
		Name: name, Storage: s.store, Key: sessionTokenKey(name, hash), Logger: s.log, Now: s.now,
		Fetch: func(ctx context.Context, prev *oauth2.Token) (*oauth2.Token, error) {
			switch {
			case prev == nil:
				return nil, errSessionGone
			case prev.RefreshToken == "":
				return nil, fmt.Errorf("%w: the access token ran out and there is no refresh token", errSessionEnded)
			}
			if exp := tokensource.RefreshExpiry(prev); !exp.IsZero() && !s.now().Before(exp) {
				return nil, fmt.Errorf("%w: the refresh token expired at %s", errSessionEnded, exp.UTC().Format(time.RFC3339))
			}
			return t.spec.AuthCode.Refresh(ctx, prev.RefreshToken)
		},
		Final: sessionGone,
	})
	e.engine = tokensource.RefreshAhead(e.stored, tokensource.Options{
		Name:          name,
		RefreshBefore: t.spec.RefreshBefore,
		FetchTimeout:  time.Duration(s.cfg.Engine.FetchTimeout),
		Logger:        s.log,
		Now:           s.now,
		Final:         sessionGone,
	})
	return e
}

// sessionGone reports whether a token request's error means the customer's
// grant is gone: the session has ended.
func sessionGone(err error) bool {
	return grantGone(err) || errors.Is(err, errSessionEnded) || errors.Is(err, errSessionGone)
}

// touch stores the session's LastUsed when the stored one is older than a
// tenth of the idle TTL (at most an hour), in the background, fenced by
// compare-and-swap so that it never revives a session ended meanwhile.
func (ss *sessions) touch(e *sessionEngine, idle time.Duration) {
	every := min(idle/10, time.Hour)
	now := ss.s.now()
	if now.Sub(time.Unix(0, e.touched.Load())) < every || !e.busy.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer e.busy.Store(false)
		old := e.raw.Load()
		var rec sessionRecord
		if old == nil || json.Unmarshal(*old, &rec) != nil {
			return
		}
		rec.LastUsed = now.UTC()
		b, _ := json.Marshal(rec)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		swapped, err := ss.s.store.CompareAndSwap(ctx, sessionKey(e.tenant, e.hash), *old, b)
		switch {
		case err != nil:
			ss.s.log.Warn("sessions: storing a session's last use failed", zap.String("tenant", e.tenant), zap.Error(err))
		case swapped:
			e.raw.Store(&b)
			e.touched.Store(now.UnixNano())
		default:
			ss.evict(e.tenant, e.hash) // changed or ended elsewhere: reload on next use
		}
	}()
}

// engineIdle is how long a session engine stays in memory without a
// request before the sweep stops it: until then it keeps the token fresh
// (refresh ahead), after it the session costs storage only.
const engineIdle = time.Hour

// evictIdle stops the engines of sessions no request used since before.
func (ss *sessions) evictIdle(before time.Time) int {
	ss.mu.Lock()
	caches := make([]*lru.Cache[string, *sessionEngine], 0, len(ss.engines))
	for _, c := range ss.engines {
		caches = append(caches, c)
	}
	ss.mu.Unlock()
	n := 0
	for _, c := range caches {
		for _, hash := range c.Keys() {
			if e, ok := c.Peek(hash); ok && e.used.Load() < before.UnixNano() {
				c.Remove(hash)
				n++
			}
		}
	}
	return n
}

package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/oauth2"

	"github.com/sidekey/sidekey/config"
	"github.com/sidekey/sidekey/providers"
	"github.com/sidekey/sidekey/proxy"
	"github.com/sidekey/sidekey/tokensource"
)

// Per-customer sessions (DESIGN.md, "Per-customer sessions"). The store
// holds, per session, a record and a token, both under the SHA-256 of the
// session handle, so that a dump of the store reveals no usable handle:
//
//	sessions/{tenant}/{sha256 hex of handle}        sessionRecord
//	session-tokens/{tenant}/{sha256 hex of handle}  the customer's token (tokensource's record)
//	session-tickets/{sha256 hex of ticket}          ticketRecord: a login not yet redeemed
//
// A session's token engine is the chain every tenant has — platform
// refresh → StoredSource (rotated refresh token stored before use, under
// the store's lock and compare-and-swap) → RefreshAhead — held in an LRU
// per tenant (sessions.max_active); idle sessions cost storage only.
const (
	sessionPrefix      = "sessions/"
	sessionTokenPrefix = "session-tokens/"
	ticketPrefix       = "session-tickets/"
)

// sessionRecord is a session as stored (sealed like every value).
type sessionRecord struct {
	Tenant   string    `json:"tenant"`
	Created  time.Time `json:"created"`
	LastUsed time.Time `json:"last_used"` // updated at most every touchEvery
	// RefreshExpiry is when the customer's refresh token dies (the session
	// with it); zero: unknown.
	RefreshExpiry time.Time `json:"refresh_expiry,omitzero"`
}

// expiry is when the session ends unless it is used: after idle without
// use, or with its refresh token.
func (rec *sessionRecord) expiry(idle time.Duration) time.Time {
	e := rec.LastUsed.Add(idle)
	if !rec.RefreshExpiry.IsZero() && rec.RefreshExpiry.Before(e) {
		e = rec.RefreshExpiry
	}
	return e
}

func sessionKey(tenant, hash string) string      { return sessionPrefix + tenant + "/" + hash }
func sessionTokenKey(tenant, hash string) string { return sessionTokenPrefix + tenant + "/" + hash }

// handleHash returns the store name of handle (a session handle or a
// ticket): the SHA-256 hex of it, after checking that it has the shape
// randomNonce gives (32 random bytes, base64url), so that no caller-chosen
// string reaches the store.
func handleHash(handle string) (string, bool) {
	if !validNonce(handle) {
		return "", false
	}
	sum := sha256.Sum256([]byte(handle))
	return hex.EncodeToString(sum[:]), true
}

// errSessionGone is a session engine's fetch when its token is no longer
// stored: logged out or swept, perhaps by another replica.
var errSessionGone = errors.New("server: the session was ended")

// errSessionEnded is a session engine's fetch when the customer's grant
// can no longer be refreshed.
var errSessionEnded = errors.New("server: the session's grant ended")

// sessions holds the session engines of every sessions tenant and the
// per-tenant session counts. Safe for concurrent use.
type sessions struct {
	s *Server

	mu      sync.Mutex // guards the fields below
	engines map[string]*lru.Cache[string, *sessionEngine]
	loading map[string]*sessionLoad // by tenant + "/" + hash
	counts  map[string]int64        // stored sessions per tenant, from the last sweep ± since
	closed  bool

	countDesc *prometheus.Desc
}

// sessionLoad is one session load in progress, shared by concurrent
// requests for it.
type sessionLoad struct {
	done chan struct{}
	e    *sessionEngine
	err  error
}

func newSessions(s *Server) *sessions {
	return &sessions{
		s:         s,
		engines:   map[string]*lru.Cache[string, *sessionEngine]{},
		loading:   map[string]*sessionLoad{},
		counts:    map[string]int64{},
		countDesc: prometheus.NewDesc("sidekey_sessions", "Stored per-customer sessions by tenant (as of the last sweep, plus those made or ended since on this replica).", []string{"tenant"}, nil),
	}
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
}

// TokenContext returns the customer's access token.
func (e *sessionEngine) TokenContext(ctx context.Context) (*oauth2.Token, error) {
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

// Invalidate drops tok if it is still the session's current token.
func (e *sessionEngine) Invalidate(tok *oauth2.Token) bool { return e.engine.Invalidate(tok) }

// sessionsConf returns the sessions settings of tenant t; nil when it has
// none.
func sessionsConf(t *tenant) *config.Sessions {
	if t == nil || t.conf == nil {
		return nil
	}
	return t.conf.Sessions
}

// attach makes every sessions tenant's route take its tokens from the
// request's session (providers.Check refuses sessions on a tenant without
// a consent flow). Engines of a tenant whose configuration changed are
// dropped.
func (ss *sessions) attach(tenants map[string]*tenant) {
	for name, t := range tenants {
		if sessionsConf(t) == nil || t.spec.AuthCode == nil || t.route.HasSessions() {
			continue
		}
		t.route.SetSessions(ss.lookupFor(name, t))
		ss.purge(name)
	}
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
		Final: func(err error) bool {
			return errors.Is(err, providers.ErrConsentRequired) || errors.Is(err, errSessionEnded)
		},
	})
	e.engine = tokensource.RefreshAhead(e.stored, tokensource.Options{
		Name:          name,
		RefreshBefore: t.spec.RefreshBefore,
		FetchTimeout:  time.Duration(s.cfg.Engine.FetchTimeout),
		Logger:        s.log,
		Now:           s.now,
	})
	return e
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

// create stores a new session of tenant t holding tok and returns its
// handle and expiry.
func (ss *sessions) create(ctx context.Context, name string, t *tenant, tok *oauth2.Token) (string, time.Time, error) {
	s := ss.s
	handle := randomNonce()
	hash, _ := handleHash(handle)
	now := s.now().UTC()
	rec := sessionRecord{Tenant: name, Created: now, LastUsed: now}
	if exp := tokensource.RefreshExpiry(tok); !exp.IsZero() {
		rec.RefreshExpiry = exp.UTC()
	}
	e := ss.newEngine(name, t, hash)
	defer e.engine.Close()
	if err := e.stored.Save(ctx, tok); err != nil {
		return "", time.Time{}, err
	}
	b, _ := json.Marshal(rec)
	if err := s.store.Store(ctx, sessionKey(name, hash), b); err != nil {
		_ = s.store.Delete(context.WithoutCancel(ctx), sessionTokenKey(name, hash))
		return "", time.Time{}, fmt.Errorf("server: storing a session of %s: %w", name, err)
	}
	ss.mu.Lock()
	ss.counts[name]++
	ss.mu.Unlock()
	return handle, rec.expiry(sessionsConf(t).Idle()), nil
}

// find returns the sessions tenant that session hash belongs to.
func (ss *sessions) find(ctx context.Context, hash string) (string, *tenant, error) {
	for name, t := range ss.s.live.Load().tenants {
		if sessionsConf(t) == nil {
			continue
		}
		_, err := ss.s.store.Load(ctx, sessionKey(name, hash))
		switch {
		case err == nil:
			return name, t, nil
		case !errors.Is(err, fs.ErrNotExist):
			return "", nil, fmt.Errorf("server: reading a session: %w", err)
		}
	}
	return "", nil, fs.ErrNotExist
}

// remove forgets session hash of tenant: its record, its token and its
// engine. It reports whether the session was still stored.
func (ss *sessions) remove(ctx context.Context, tenant, hash string) bool {
	ss.evict(tenant, hash)
	_, err := ss.s.store.Take(ctx, sessionKey(tenant, hash))
	if derr := ss.s.store.Delete(ctx, sessionTokenKey(tenant, hash)); derr != nil {
		ss.s.log.Warn("sessions: deleting a session's token failed", zap.String("tenant", tenant), zap.Error(derr))
	}
	if err != nil {
		return false
	}
	ss.mu.Lock()
	if ss.counts[tenant] > 0 {
		ss.counts[tenant]--
	}
	ss.mu.Unlock()
	return true
}

// evict drops session hash's engine from memory.
func (ss *sessions) evict(tenant, hash string) {
	ss.mu.Lock()
	c := ss.engines[tenant]
	ss.mu.Unlock()
	if c != nil {
		c.Remove(hash)
	}
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

// purge drops every engine of tenant (its configuration changed).
func (ss *sessions) purge(tenant string) {
	ss.mu.Lock()
	c := ss.engines[tenant]
	delete(ss.engines, tenant)
	ss.mu.Unlock()
	if c != nil {
		c.Purge()
	}
}

// closeAll stops every session engine and returns them, so that a
// shutting-down server can wait for their token requests in progress.
func (ss *sessions) closeAll() []*tokensource.Source {
	ss.mu.Lock()
	ss.closed = true
	caches := ss.engines
	ss.engines = map[string]*lru.Cache[string, *sessionEngine]{}
	ss.mu.Unlock()
	var all []*tokensource.Source
	for _, c := range caches {
		for _, e := range c.Values() {
			all = append(all, e.engine)
		}
		c.Purge()
	}
	return all
}

// count returns the stored sessions of tenant.
func (ss *sessions) count(tenant string) int64 {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.counts[tenant]
}

// annotate adds the session count to the status of every sessions tenant.
func (ss *sessions) annotate(out map[string]tenantStatus) {
	for name, t := range ss.s.live.Load().tenants {
		if st, ok := out[name]; ok {
			ss.annotateOne(name, t, &st)
			out[name] = st
		}
	}
}

// annotateOne adds tenant t's session count to st when it has sessions.
func (ss *sessions) annotateOne(name string, t *tenant, st *tenantStatus) {
	if sessionsConf(t) != nil {
		n := ss.count(name)
		st.Sessions = &n
	}
}

// Describe implements prometheus.Collector.
func (ss *sessions) Describe(ch chan<- *prometheus.Desc) { ch <- ss.countDesc }

// Collect implements prometheus.Collector: sidekey_sessions{tenant}.
func (ss *sessions) Collect(ch chan<- prometheus.Metric) {
	for name, t := range ss.s.live.Load().tenants {
		if sessionsConf(t) != nil {
			ch <- prometheus.MustNewConstMetric(ss.countDesc, prometheus.GaugeValue, float64(ss.count(name)), name)
		}
	}
}

// tenantOf splits a sessions/ key into tenant and hash.
func tenantOf(key, prefix string) (tenant, hash string, ok bool) {
	return strings.Cut(strings.TrimPrefix(key, prefix), "/")
}

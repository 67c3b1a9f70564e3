package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/oauth2"

	"github.com/sidekey/sidekey/config"
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
	LastUsed time.Time `json:"last_used"` // stored at most every tenth of idle_ttl (at most hourly)
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

func newSessions(s *Server) *sessions {
	return &sessions{
		s:         s,
		engines:   map[string]*lru.Cache[string, *sessionEngine]{},
		loading:   map[string]*sessionLoad{},
		counts:    map[string]int64{},
		countDesc: prometheus.NewDesc("sidekey_sessions", "Stored per-customer sessions by tenant (as of the last sweep, plus those made or ended since on this replica).", []string{"tenant"}, nil),
	}
}

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

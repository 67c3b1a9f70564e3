package server

import (
	"container/list"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"go.uber.org/zap"

	"github.com/sidekey/sidekey/config"
	"github.com/sidekey/sidekey/providers"
)

// connectionPrefix is the store folder of connections: tenants created at
// runtime under an app, by a consent flow or the admin API. The store seals
// them like tokens and shares them between replicas.
const connectionPrefix = "connections/"

// connection is a runtime tenant as stored.
type connection struct {
	Name    string     `json:"name"`
	App     string     `json:"app"`
	Params  connParams `json:"params"`
	Created time.Time  `json:"created"`
}

// connParams are the per-store settings a connection adds to its app.
type connParams struct {
	Store       string `json:"store,omitempty"`
	TenantSpace string `json:"tenant_space,omitempty"`
	ShopID      string `json:"shop_id,omitempty"`
	IdpKey      string `json:"idp_key,omitempty"`
}

// tenantConfig is the tenant a connection runs as: its app's settings with
// its own parameters.
func (p connParams) tenantConfig(app string, apps map[string]*config.Tenant) (*config.Tenant, error) {
	a, ok := apps[app]
	if !ok || a == nil {
		return nil, fmt.Errorf("unknown app %q", app)
	}
	t := config.WithApp(a, &config.Tenant{App: app, Store: p.Store, TenantSpace: p.TenantSpace, ShopID: p.ShopID, IdpKey: p.IdpKey})
	return t, nil
}

// negativeTTL is how long a name that is no connection is remembered as
// such, so a stream of requests for unknown tenants does not become a
// stream of store reads.
const negativeTTL = 5 * time.Second

// evictGrace is how long an evicted engine keeps serving the requests
// that were routed to it before eviction.
const evictGrace = 30 * time.Second

// minRetiring is the least number of evicted engines kept for their
// grace; the bound is a quarter of engine.max_active when that is more. Past
// it the one evicted longest ago stops at once, so that churn through the
// LRU cannot grow memory beyond the bound by the grace period's worth of
// evictions.
const minRetiring = 64

// registry holds the token engines of connections in an LRU bounded by
// engine.max_active: a request for a connection that is not loaded loads it
// from the store (once, however many requests ask at the same time), and
// the least recently used engine is stopped when the bound is reached. The
// store keeps every connection; memory holds only the active ones.
type registry struct {
	opts    registryOptions
	loaded  *lru.Cache[string, *tenant]
	missing *lru.Cache[string, time.Time] // names that are no connection, until the time given

	mu          sync.Mutex // guards loading, retiring and closedAll
	loading     map[string]*load
	retiring    *list.List // of *retiree: evicted engines still serving their last requests, oldest first
	maxRetiring int
	closedAll   bool // closeAll ran: evictions stop their engine at once
}

// retiree is an evicted tenant whose engine stops when timer fires.
type retiree struct {
	t       *tenant
	timer   *time.Timer
	stopped bool // its engine was stopped sooner and it left the list (under registry.mu)
}

// load is one connection load in progress, shared by concurrent callers.
type load struct {
	done chan struct{}
	t    *tenant
	err  error
}

// registryOptions is what a registry needs from its server.
type registryOptions struct {
	// MaxActive is engine.max_active: the most connections loaded at once.
	MaxActive int
	// Read loads a connection from the store; fs.ErrNotExist when there is
	// none. Required.
	Read func(ctx context.Context, name string) (*connection, error)
	// Build makes a connection's running tenant (its engine started).
	// Required.
	Build func(c *connection) (*tenant, error)
	// Loaded is called after a connection was loaded. Default: nothing.
	Loaded func()
	// Evicted is called when a connection leaves the LRU for the bound,
	// before its engine retires (metrics count it and forget its series).
	// Default: nothing.
	Evicted func(name string)
	// Logger receives connections that failed to load. Default: nop.
	Logger *zap.Logger
	// Now is the clock of the negative cache. Default: time.Now.
	Now func() time.Time
}

// newRegistry returns an empty registry for opts.
func newRegistry(opts registryOptions) *registry {
	if opts.Loaded == nil {
		opts.Loaded = func() {}
	}
	if opts.Evicted == nil {
		opts.Evicted = func(string) {}
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	r := &registry{opts: opts, loading: map[string]*load{}, retiring: list.New(), maxRetiring: max(opts.MaxActive/4, minRetiring)}
	r.loaded, _ = lru.NewWithEvict(max(opts.MaxActive, 1), func(name string, t *tenant) {
		opts.Evicted(name)
		r.retire(t)
	})
	r.missing, _ = lru.New[string, time.Time](10000)
	return r
}

// retire stops evicted tenant t's engine once the requests routed to it a
// moment ago (a 401 replay, say) are surely done: after evictGrace, or
// sooner when maxRetiring engines are retiring already.
func (r *registry) retire(t *tenant) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closedAll {
		t.engine.Close()
		return
	}
	for r.retiring.Len() >= r.maxRetiring {
		oldest := r.retiring.Remove(r.retiring.Front()).(*retiree)
		oldest.stopped = true
		oldest.timer.Stop()
		oldest.t.engine.Close()
	}
	rt := &retiree{t: t}
	e := r.retiring.PushBack(rt)
	rt.timer = time.AfterFunc(evictGrace, func() {
		r.mu.Lock()
		if rt.stopped { // by closeAll or the bound, while this timer fired
			r.mu.Unlock()
			return
		}
		rt.stopped = true
		r.retiring.Remove(e)
		r.mu.Unlock()
		t.engine.Close()
	})
}

// retiringCount is the number of evicted engines within their grace.
func (r *registry) retiringCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.retiring.Len()
}

// closeAll stops every connection's engine, loaded or evicted, and
// returns them, so that a shutting-down server can wait for their token
// requests in progress.
func (r *registry) closeAll() []*tenant {
	all := r.loaded.Values()
	r.mu.Lock()
	r.closedAll = true
	for e := r.retiring.Front(); e != nil; e = e.Next() {
		rt := e.Value.(*retiree)
		rt.stopped = true
		rt.timer.Stop()
		all = append(all, rt.t)
	}
	r.retiring.Init()
	r.mu.Unlock()
	r.purge()
	for _, t := range all {
		t.engine.Close()
	}
	return all
}

// isMissing reports whether name was found to be no connection less than
// negativeTTL ago.
func (r *registry) isMissing(name string) bool {
	until, ok := r.missing.Get(name)
	if ok && r.opts.Now().After(until) {
		r.missing.Remove(name)
		return false
	}
	return ok
}

// get returns connection name's tenant, loading it when needed; ok is false
// when there is no such connection.
func (r *registry) get(name string) (*tenant, bool) {
	if t, ok := r.loaded.Get(name); ok {
		return t, true
	}
	if r.isMissing(name) {
		return nil, false
	}
	r.mu.Lock()
	l, running := r.loading[name]
	if !running {
		l = &load{done: make(chan struct{})}
		r.loading[name] = l
	}
	r.mu.Unlock()
	if !running {
		l.t, l.err = r.load(name)
		r.mu.Lock()
		delete(r.loading, name)
		r.mu.Unlock()
		close(l.done)
	}
	<-l.done
	if l.err != nil {
		if !errors.Is(l.err, fs.ErrNotExist) {
			r.opts.Logger.Warn("loading a connection failed", zap.String("tenant", name), zap.Error(l.err))
		}
		return nil, false
	}
	return l.t, true
}

// load reads connection name from the store and starts its engine.
func (r *registry) load(name string) (*tenant, error) {
	if t, ok := r.loaded.Get(name); ok { // loaded while we queued
		return t, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := r.opts.Read(ctx, name)
	if errors.Is(err, fs.ErrNotExist) {
		r.missing.Add(name, r.opts.Now().Add(negativeTTL))
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	t, err := r.opts.Build(c)
	if err != nil {
		return nil, err
	}
	r.loaded.Add(name, t)
	r.opts.Loaded()
	return t, nil
}

// transient returns connection name's tenant without making it active:
// the loaded one, or else one built for the caller alone, which done stops.
// The idle sweep uses it, so that renewing a thousand idle connections does
// not push the active ones out of the LRU.
func (r *registry) transient(name string) (t *tenant, done func(), err error) {
	if t, ok := r.loaded.Peek(name); ok {
		return t, func() {}, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := r.opts.Read(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	if t, err = r.opts.Build(c); err != nil {
		return nil, nil, err
	}
	return t, t.engine.Close, nil
}

// forget drops connection name from memory (its engine stops); the next
// request reads the store again.
func (r *registry) forget(name string) {
	r.loaded.Remove(name)
	r.missing.Remove(name)
}

// purge stops every loaded connection (after a reload changed apps).
func (r *registry) purge() {
	r.loaded.Purge()
	r.missing.Purge()
}

// each calls fn for every loaded connection.
func (r *registry) each(fn func(name string, t *tenant)) {
	for _, name := range r.loaded.Keys() {
		if t, ok := r.loaded.Peek(name); ok {
			fn(name, t)
		}
	}
}

// connectionTenant builds the running tenant of connection c.
func (s *Server) connectionTenant(c *connection) (*tenant, error) {
	l := s.live.Load()
	conf, err := c.Params.tenantConfig(c.App, l.cfg.Apps)
	if err != nil {
		return nil, err
	}
	spec, err := providers.Build(c.Name, conf, providers.Options{HTTPClient: s.client, Logger: s.log})
	if err != nil {
		return nil, err
	}
	t := s.newTenant(c.Name, spec, providers.RateLimit(conf))
	t.conf = conf
	return t, nil
}

// readConnection loads connection name from the store.
func (s *Server) readConnection(ctx context.Context, name string) (*connection, error) {
	b, err := s.store.Load(ctx, connectionPrefix+name)
	if err != nil {
		return nil, err
	}
	var c connection
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("connection %s is unreadable: %w", name, err)
	}
	c.Name = name
	return &c, nil
}

// writeConnection stores connection c.
func (s *Server) writeConnection(ctx context.Context, c *connection) error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	if err := s.store.Store(ctx, connectionPrefix+c.Name, b); err != nil {
		return fmt.Errorf("storing connection %s: %w", c.Name, err)
	}
	return nil
}

// tenantNamed returns the tenant called name: a configured one, or a
// connection (loaded on demand).
func (s *Server) tenantNamed(name string) (*tenant, bool) {
	if t, ok := s.live.Load().tenants[name]; ok {
		return t, true
	}
	return s.conns.get(name)
}

// connParamsFrom reads a connection's parameters from a query or form.
func connParamsFrom(q url.Values) connParams {
	return connParams{Store: q.Get("store"), TenantSpace: q.Get("tenant_space"), ShopID: q.Get("shop_id"), IdpKey: q.Get("idp_key")}
}

// pendingConnection builds the tenant a new connection name under app with
// params would be, without storing anything, so a consent flow can start
// (or finish) for it. Its engine is the caller's to Close.
func (s *Server) pendingConnection(name, app string, params connParams) (*tenant, error) {
	l := s.live.Load()
	switch {
	case !config.ValidTenantName(name):
		return nil, errors.New("?tenant= must name the new connection: [a-z0-9][a-z0-9._-]*")
	case l.tenants[name] != nil:
		return nil, fmt.Errorf("%s is a tenant of the config file, not a connection", name)
	case l.cfg.Apps[name] != nil:
		return nil, fmt.Errorf("%s is the name of an app", name)
	}
	return s.connectionTenant(&connection{Name: name, App: app, Params: params})
}

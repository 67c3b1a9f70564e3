// Package server assembles sidekey: tenants and their token engines, the
// proxy, the /_sidekey/ endpoints, the listener and graceful shutdown.
package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/sidekey/sidekey/config"
	"github.com/sidekey/sidekey/localca"
	"github.com/sidekey/sidekey/notify"
	"github.com/sidekey/sidekey/providers"
	"github.com/sidekey/sidekey/proxy"
	"github.com/sidekey/sidekey/store"
)

// Options configures a Server.
type Options struct {
	// Config is the validated configuration. Required.
	Config *config.Config
	// Logger receives every log line. Default: nop.
	Logger *zap.Logger
	// Version is shown on /_sidekey/status.
	Version string
	// Store keeps tokens and consent flows. Nil: opened from
	// Config.Storage, and closed by Shutdown.
	Store store.Store
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
	// Listeners are listeners the caller opened for the tenant listeners
	// and the forward proxy, by config key (TenantListenKey,
	// ForwardProxyKey); Run opens the others. Nil: Run opens them all.
	Listeners map[string]net.Listener
	// NotifyInterval is how often tenant states are compared for webhooks.
	// Zero: 5s.
	NotifyInterval time.Duration
}

// Server is a running sidekey instance. Create it with New, serve with
// Serve or Run, and stop it with Shutdown.
type Server struct {
	cfg      *config.Config
	log      *zap.Logger
	version  string
	metrics  *metrics
	proxy    *proxy.Proxy
	handler  http.Handler
	loopback bool // the listener is loopback: admins are trusted, callers not required
	client   *http.Client
	store    store.Store
	conns    *registry   // connections: runtime tenants, LRU-bounded
	sessions *sessions   // per-customer sessions (sessions.go)
	logins   loginLimits // open login starts per tenant (flows.go)

	notifier    *notify.Notifier // webhooks; nil without any
	states      *stateWatch      // what notifier was last told of each tenant
	notifyEvery time.Duration    // how often states are compared

	stopBackground context.CancelFunc // ends watchReplicas and sweepIdle
	background     sync.WaitGroup     // their goroutines
	ownStore       bool               // the server opened store and closes it
	now            func() time.Time

	live     atomic.Pointer[live] // what a reload replaces
	reloadMu sync.Mutex           // serialises Reload

	ca     *localca.CA             // the local CA; nil when no listener needs it
	opened map[string]net.Listener // Options.Listeners
	legacy atomic.Pointer[legacy]  // tenant listeners and forward proxy, once started

	ready        atomic.Bool
	http         *http.Server
	shutdownOnce sync.Once
	shutdownErr  error
}

// New builds a Server from opts: it resolves every tenant and starts its
// token engine (tokens are fetched on first use, or ahead by the engine).
func New(opts Options) (*Server, error) {
	cfg := opts.Config
	if cfg == nil {
		return nil, errors.New("server: no config")
	}
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	s := &Server{
		cfg:      cfg,
		log:      log,
		version:  opts.Version,
		loopback: config.IsLoopback(cfg.Listen),
		store:    opts.Store,
		now:      opts.Now,
		opened:   opts.Listeners,
	}
	if s.now == nil {
		s.now = time.Now
	}
	for _, w := range cfg.Warnings {
		log.Warn("SECRET FILE READABLE BY OTHERS: "+w.String(),
			zap.String("key", w.Key), zap.String("file", w.Path), zap.String("mode", w.Mode.String()))
	}
	transport := proxy.NewTransport(proxy.TransportOptions{
		DialTimeout:           time.Duration(cfg.Upstream.DialTimeout),
		TLSHandshakeTimeout:   time.Duration(cfg.Upstream.TLSHandshakeTimeout),
		ResponseHeaderTimeout: time.Duration(cfg.Upstream.ResponseHeaderTimeout),
		IdleConnTimeout:       time.Duration(cfg.Upstream.IdleConnTimeout),
		MaxIdleConnsPerHost:   cfg.Upstream.MaxIdleConnsPerHost,
	})
	// Token, revocation and logout requests carry credentials: never follow a redirect.
	s.client = providers.RefuseRedirects(&http.Client{Transport: transport, Timeout: time.Duration(cfg.Engine.FetchTimeout)})
	if s.store == nil {
		var err error
		if s.store, err = store.Open(cfg.Storage, log); err != nil {
			return nil, err
		}
		s.ownStore = true
	}
	if err := s.openLocalCA(); err != nil {
		s.closeStore()
		return nil, err
	}
	s.metrics = newMetrics(s.statusMap)
	s.conns = newRegistry(registryOptions{
		MaxActive: cfg.Engine.MaxActive,
		Read:      s.readConnection,
		Build:     s.connectionTenant,
		Loaded:    s.metrics.loads.Inc,
		Evicted: func(name string) {
			s.metrics.evictions.Inc()
			s.metrics.forget(name)
		},
		Logger: s.log,
		Now:    s.now,
	})
	s.metrics.reg.MustRegister(s.engineGauges()...)
	s.sessions = newSessions(s)
	s.metrics.reg.MustRegister(s.sessions)
	notifier, err := s.newNotifier(opts.NotifyInterval)
	if err != nil {
		s.closeStore()
		return nil, err
	}
	s.notifier = notifier
	l, err := s.newLive(cfg, nil)
	if err != nil {
		s.closeNotify(context.Background())
		s.closeStore()
		return nil, err
	}
	s.live.Store(l)
	accessLog := cfg.Log.AccessLog == nil || *cfg.Log.AccessLog
	s.proxy = proxy.New(proxy.Options{
		Lookup:           s.lookup,
		Transport:        transport,
		MaxReplayBody:    cfg.Upstream.MaxReplayBody,
		Logger:           log.Named("proxy"),
		AccessLog:        accessLog,
		Observer:         s.metrics,
		TokenUnavailable: s.tokenUnavailable,
		AllowUpgrade:     s.allowUpgrade,
		Admit:            s.admitProxied,
		CallerKeyHeader:  cfg.CallerKeyHeader, // bound at start, see Reload
	})
	s.handler = refuseAmbiguousFraming(s.guarded(s.routes()))
	// Built here, not in Serve: Shutdown reads it from another goroutine.
	s.http = &http.Server{
		Handler:           s.handler,
		ConnContext:       withFramingConn,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          zap.NewStdLog(s.log.Named("http")),
	}
	var bg context.Context
	bg, s.stopBackground = context.WithCancel(context.Background())
	s.watchReplicas(bg)
	s.background.Go(func() { s.sweepIdle(bg) })
	s.background.Go(func() { s.sweepSessionsEvery(bg) })
	s.background.Go(func() { s.sweepFlowsEvery(bg) })
	s.startNotify(bg)
	s.ready.Store(true)
	return s, nil
}

// lookup resolves a tenant for the proxy.
func (s *Server) lookup(name string) (*proxy.Route, bool) {
	t, ok := s.tenantNamed(name)
	if !ok {
		return nil, false
	}
	return t.route, true
}

// allowUpgrade reports whether tenant lets Upgrade tunnels through
// (allow_upgrade).
func (s *Server) allowUpgrade(tenant string) bool {
	t, ok := s.tenantNamed(tenant)
	return ok && t.conf != nil && t.conf.AllowUpgrade
}

// appOf names tenant's app, for callers granted whole apps.
func (s *Server) appOf(tenant string) (string, bool) {
	t, ok := s.tenantNamed(tenant)
	if !ok {
		return "", false
	}
	return t.conf.App, true
}

// Handler returns the server's whole HTTP handler (proxy and /_sidekey/).
func (s *Server) Handler() http.Handler { return s.handler }

// guarded wraps h in the Guard for the configured listener (DNS rebinding
// and cross-site requests). public_url and allowed_hosts are bound at start.
func (s *Server) guarded(h http.Handler) http.Handler {
	public, err := url.Parse(s.cfg.PublicURL)
	if err != nil {
		public = nil // Validate refuses such a public_url; serve loopback names only
	}
	return Guard(GuardOptions{Loopback: s.loopback, PublicURL: public, AllowedHosts: s.cfg.AllowedHosts})(h)
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /_sidekey/healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /_sidekey/readyz", s.readyz)
	mux.Handle("GET /_sidekey/metrics", promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{}))
	mux.Handle("GET /_sidekey/status", s.adminOnly(http.HandlerFunc(s.statusPage)))
	mux.Handle("GET /_sidekey/oauth/connect/{tenant}", s.adminOnly(http.HandlerFunc(s.connect)))
	mux.HandleFunc("GET /_sidekey/oauth/callback", s.callback)
	mux.Handle("DELETE /_sidekey/admin/connections/{tenant}", s.adminOnly(s.announceDisconnect(http.HandlerFunc(s.disconnect))))
	mux.HandleFunc("GET /_sidekey/login/{tenant}", s.login)
	mux.HandleFunc("POST /_sidekey/sessions/redeem", s.redeem)
	mux.HandleFunc("DELETE /_sidekey/sessions/{session}", s.endSession)
	mux.Handle("GET /_sidekey/admin/connections/{tenant}", s.adminOnly(http.HandlerFunc(s.showConnection)))
	mux.Handle("GET /_sidekey/admin/connections", s.adminOnly(http.HandlerFunc(s.listConnections)))
	mux.Handle("POST /_sidekey/admin/connections", s.adminOnly(http.HandlerFunc(s.createConnection)))
	s.consoleRoutes(mux)
	mux.HandleFunc("/_sidekey/", func(w http.ResponseWriter, r *http.Request) {
		proxy.WriteError(w, http.StatusNotFound, proxy.CodeNotFound, "", "no such sidekey endpoint", 0)
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.RequestURI, "/_sidekey/") || r.RequestURI == "/_sidekey" {
			mux.ServeHTTP(w, r)
			return
		}
		// Configured callers are enforced on every listener (loopback
		// only means that none are required): by the proxy, through
		// Options.Admit, once it has parsed the target.
		s.proxy.ServeHTTP(w, r)
	})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if !s.ready.Load() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "shutting down"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		s.log.Warn("readiness: token store unreachable", zap.Error(err))
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "token store unreachable"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) statusMap() map[string]tenantStatus {
	tenants := s.live.Load().tenants
	out := make(map[string]tenantStatus, len(tenants)+s.conns.loaded.Len())
	for name, t := range tenants {
		out[name] = s.tenantStatus(name, t)
	}
	s.conns.each(func(name string, t *tenant) { out[name] = s.tenantStatus(name, t) })
	s.sessions.annotate(out)
	return out
}

func (s *Server) statusPage(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, struct {
		Version  string                  `json:"version"`
		Tenants  map[string]tenantStatus `json:"tenants"`
		Webhooks *notify.Status          `json:"webhooks,omitempty"`
	}{s.version, s.statusMap(), s.webhookStatus()})
}

// adminOnly lets a request through on a loopback listener, or with
// "Authorization: Bearer <admin token>".
func (s *Server) adminOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.loopback {
			h.ServeHTTP(w, r)
			return
		}
		if want := s.live.Load().adminSum; want != nil {
			if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
				sum := sha256.Sum256([]byte(tok))
				if subtle.ConstantTimeCompare(sum[:], want) == 1 {
					h.ServeHTTP(w, r)
					return
				}
			}
		}
		proxy.WriteError(w, http.StatusUnauthorized, proxy.CodeCallerUnauthorized, "", "this endpoint needs the admin token", 0)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// Serve accepts connections on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	err := s.http.Serve(framingListener(ln))
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Run listens on the configured address and serves until ctx is done, then
// keeps serving for drain_delay with readyz answering 503, then shuts down
// gracefully within the configured shutdown_timeout.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("server: listen: %w", err)
	}
	return s.RunListener(ctx, ln)
}

// RunListener is Run on a listener the caller opened.
func (s *Server) RunListener(ctx context.Context, ln net.Listener) error {
	ln, err := s.wrapTLS(ctx, ln)
	if err == nil {
		err = s.startLegacy(s.opened)
	}
	if err != nil {
		_ = ln.Close()
		s.stop(ctx)
		return err
	}
	s.log.Info("sidekey listening", zap.String("addr", ln.Addr().String()), zap.Int("tenants", len(s.live.Load().tenants)))
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(ln) }()
	select {
	case err := <-errc:
		sctx, cancel := context.WithTimeout(context.Background(), time.Duration(s.cfg.ShutdownTimeout))
		defer cancel()
		s.stop(sctx)
		return err
	case <-ctx.Done():
	}
	s.drain()
	sctx, cancel := context.WithTimeout(context.Background(), time.Duration(s.cfg.ShutdownTimeout))
	defer cancel()
	err = s.Shutdown(sctx)
	<-errc
	return err
}

// drain marks the server not ready and keeps serving for drain_delay, so
// that a load balancer that polls readyz stops sending before the listener
// closes.
func (s *Server) drain() {
	d := time.Duration(s.live.Load().cfg.DrainDelay)
	if d <= 0 {
		return
	}
	s.ready.Store(false)
	s.log.Info("draining: readyz answers 503; still serving", zap.Duration("drain_delay", d))
	time.Sleep(d) // a fixed delay is the contract: keep serving this long
}

// Shutdown marks the server not ready, stops accepting connections, waits
// for in-flight requests until ctx is done (then closes what remains),
// stops every token engine, waits (within ctx) for the token requests they
// had in progress to be answered and stored, and closes the store. It is
// safe to call more than once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutdownOnce.Do(func() {
		s.ready.Store(false)
		s.log.Info("shutting down: draining in-flight requests")
		if err := s.http.Shutdown(ctx); err != nil {
			s.shutdownErr = fmt.Errorf("server: drain: %w", err)
			_ = s.http.Close()
		}
		s.stop(ctx)
	})
	return s.shutdownErr
}

// stop ends the background work and every token engine, waits until ctx is
// done for the token requests in progress — a refresh the platform has
// answered with a rotated refresh token must reach the store — and then
// closes the store.
func (s *Server) stop(ctx context.Context) {
	if err := s.legacy.Load().shutdown(ctx); err != nil {
		s.log.Warn("shutdown: draining the tenant listeners and the forward proxy", zap.Error(err))
	}
	s.stopBackground()
	s.closeNotify(ctx)
	engines := s.conns.closeAll()
	sessionEngines := s.sessions.closeAll()
	for _, t := range s.live.Load().tenants {
		t.engine.Close()
		engines = append(engines, t)
	}
	if err := waitGroup(ctx, &s.background); err != nil {
		s.log.Warn("shutdown: the idle sweep did not end in time", zap.Error(err))
	}
	for _, t := range engines {
		if err := t.engine.Wait(ctx); err != nil {
			s.log.Warn("shutdown: a token request was still in progress", zap.Error(err))
		}
	}
	for _, e := range sessionEngines {
		e.Close()
		if err := e.Wait(ctx); err != nil {
			s.log.Warn("shutdown: a session's token request was still in progress", zap.Error(err))
		}
	}
	s.closeStore()
}

// waitGroup waits for wg until ctx is done.
func waitGroup(ctx context.Context, wg *sync.WaitGroup) error {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Server) closeStore() {
	if s.ownStore {
		if err := s.store.Close(); err != nil {
			s.log.Warn("closing the token store", zap.Error(err))
		}
	}
}

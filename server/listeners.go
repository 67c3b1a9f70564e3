package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/sidekey/sidekey/config"
	"github.com/sidekey/sidekey/forwardproxy"
	"github.com/sidekey/sidekey/localca"
)

// ForwardProxyKey names the forward proxy's listener in Options.Listeners.
const ForwardProxyKey = "forward_proxy.listen"

// TenantListenKey names tenant's own listener in Options.Listeners.
func TenantListenKey(tenant string) string { return "tenants." + tenant + ".listen" }

// legacy is what serves apps that cannot change: each tenant's own
// listener and the forward proxy. Its listeners start with the main one
// and shut down with it.
type legacy struct {
	servers []*http.Server      // one per listener
	fwd     *forwardproxy.Proxy // nil: no forward proxy
	serving sync.WaitGroup      // the Serve goroutines
}

// openLocalCA opens the local CA when a listener needs one (tls: local or
// the forward proxy): from local_ca's files, or from the token store,
// generating it there on first use.
func (s *Server) openLocalCA() error {
	if !s.cfg.NeedsLocalCA() {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ca, err := localca.Open(ctx, localca.Options{
		CertFile: s.cfg.LocalCA.CertFile,
		KeyFile:  s.cfg.LocalCA.KeyFile,
		Store:    s.store,
		Logger:   s.log.Named("localca"),
		Now:      s.now,
	})
	if err != nil {
		return fmt.Errorf("server: local CA: %w", err)
	}
	s.ca = ca
	return nil
}

// startLegacy binds (or takes from opened) every tenant listener and the
// forward proxy, then serves them all. When one cannot bind, none is
// served and every listener is closed.
func (s *Server) startLegacy(opened map[string]net.Listener) error {
	l := &legacy{}
	var lns []net.Listener
	var handlers []http.Handler // served on lns, index for index
	fail := func(err error) error {
		for _, ln := range lns {
			_ = ln.Close()
		}
		return err
	}
	listen := func(key, addr string) (net.Listener, error) {
		if ln := opened[key]; ln != nil {
			return ln, nil
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("server: %s: %w", key, err)
		}
		return ln, nil
	}
	for _, name := range slices.Sorted(maps.Keys(s.cfg.Tenants)) {
		t := s.cfg.Tenants[name]
		if t == nil || t.Listen == "" {
			continue
		}
		ln, err := listen(TenantListenKey(name), t.Listen)
		if err != nil {
			return fail(err)
		}
		if t.TLS == config.TLSLocal {
			ln = tls.NewListener(ln, &tls.Config{
				MinVersion:     tls.VersionTLS12,
				NextProtos:     []string{"h2", "http/1.1"},
				GetCertificate: s.ca.GetCertificate(listenerNames(t.Listen)...),
			})
		}
		guarded := Guard(GuardOptions{Loopback: config.IsLoopback(t.Listen), AllowedHosts: s.cfg.AllowedHosts})
		lns, handlers = append(lns, framingListener(ln)), append(handlers, refuseAmbiguousFraming(guarded(s.tenantListener(name))))
		s.log.Info("tenant listener", zap.String("tenant", name), zap.String("addr", ln.Addr().String()), zap.Bool("tls", t.TLS == config.TLSLocal))
	}
	if fp := s.cfg.ForwardProxy; fp != nil {
		ln, err := listen(ForwardProxyKey, fp.Listen)
		if err != nil {
			return fail(err)
		}
		l.fwd = forwardproxy.New(forwardproxy.Options{
			Hosts: interceptedHosts(s.cfg),
			Serve: s.forwardedTenant,
			Certificate: func(host string) func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
				return s.ca.GetCertificate(host)
			},
			Admit:  s.admitProxyCaller,
			Logger: s.log.Named("forward_proxy"),
		})
		// The Host/cross-site guard (server/guard.go) does not wrap the
		// forward proxy: its requests name the intercepted hosts.
		lns, handlers = append(lns, ln), append(handlers, l.fwd)
		s.log.Info("forward proxy", zap.String("addr", ln.Addr().String()), zap.Int("intercepted_hosts", len(interceptedHosts(s.cfg))))
	}
	for i, ln := range lns {
		l.add(s.legacyServer(handlers[i]), ln)
	}
	s.legacy.Store(l)
	return nil
}

// add serves h on ln in the background.
func (l *legacy) add(srv *http.Server, ln net.Listener) {
	l.servers = append(l.servers, srv)
	l.serving.Go(func() { _ = srv.Serve(ln) })
}

// shutdown stops every legacy listener and the forward proxy's tunnels,
// draining in-flight requests until ctx is done (then closing what is left).
func (l *legacy) shutdown(ctx context.Context) error {
	if l == nil {
		return nil
	}
	var errs []error
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, srv := range l.servers {
		wg.Go(func() {
			if err := srv.Shutdown(ctx); err != nil {
				_ = srv.Close()
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	if l.fwd != nil {
		wg.Go(func() {
			if err := l.fwd.Shutdown(ctx); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	l.serving.Wait()
	return errors.Join(errs...)
}

// legacyServer is an http.Server for a legacy listener, with the main
// listener's limits.
func (s *Server) legacyServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          zap.NewStdLog(s.log.Named("http")),
		ConnContext:       withFramingConn,
	}
}

// tenantListener serves every request on tenant's own listener as that
// tenant, whole path; the proxy applies the caller check (Options.Admit,
// admitProxied) as on the main listener.
//
// startLegacy wraps it, like the main listener, in the Host/cross-site
// Guard (a loopback tenant listener answers loopback Host names and
// allowed_hosts only) and the framing check. The forward proxy is not
// guarded: its requests name the intercepted hosts, and browsers use it
// only when configured to.
func (s *Server) tenantListener(tenant string) http.Handler {
	return s.proxy.ForTenant(tenant)
}

// admittedKey marks, in a request's context, a request the forward proxy
// has admitted itself (at its CONNECT, whose Proxy-Authorization the
// requests inside the tunnel do not repeat). Clients cannot set it.
type admittedKey struct{}

// forwardedTenant is the forward proxy's handler for tenant: the proxy's,
// for requests the forward proxy has admitted already.
func (s *Server) forwardedTenant(tenant string) http.Handler {
	h := s.proxy.ForTenant(tenant)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), admittedKey{}, true)))
	})
}

// admitProxied is the proxy's caller check (proxy Options.Admit), run on
// every listener — loopback included; without callers everyone is
// admitted (config refuses a listener off loopback without callers unless
// allow_unauthenticated). Requests the forward proxy admitted are not
// checked twice.
func (s *Server) admitProxied(w http.ResponseWriter, r *http.Request, tenant string) bool {
	if r.Context().Value(admittedKey{}) != nil {
		return true
	}
	return s.admitCaller(w, r, tenant)
}

// admitProxyCaller is admitCaller for the forward proxy, whose clients
// can send a key only as Proxy-Authorization (from the proxy URL): with
// another caller_key_header, a key there counts as if sent in that header.
func (s *Server) admitProxyCaller(w http.ResponseWriter, r *http.Request, tenant string) bool {
	cs := s.live.Load().callers
	if cs == nil {
		return true
	}
	if key, ok := strings.CutPrefix(r.Header.Get("Proxy-Authorization"), "Bearer "); ok && !cs.bearer && r.Header.Get(cs.header) == "" {
		r = r.Clone(r.Context())
		r.Header.Set(cs.header, key)
	}
	return cs.admit(w, r, tenant, s.appOf)
}

// interceptedHosts maps every intercepted host to its tenant.
func interceptedHosts(cfg *config.Config) map[string]string {
	hosts := map[string]string{}
	for name, t := range cfg.Tenants {
		if t == nil {
			continue
		}
		for _, h := range t.InterceptHosts {
			hosts[config.InterceptHost(h)] = name
		}
	}
	return hosts
}

// listenerNames are the names a tls: local listener's certificate covers:
// its host (unless it listens on every address) and the loopback names.
func listenerNames(listen string) []string {
	host, _, _ := net.SplitHostPort(listen)
	names := []string{}
	if addr, err := netip.ParseAddr(host); host != "" && (err != nil || !addr.IsUnspecified()) {
		names = append(names, host)
	}
	return append(names, "localhost", "127.0.0.1", "::1")
}

// legacyChanged reports whether cfg changes a setting of the legacy
// listeners, which are bound at start.
func legacyChanged(prev, cfg *config.Config) bool {
	if !reflect.DeepEqual(prev.ForwardProxy, cfg.ForwardProxy) || prev.LocalCA != cfg.LocalCA {
		return true
	}
	type listenerSettings struct {
		listen, tls string
		hosts       []string
	}
	settings := func(c *config.Config) map[string]listenerSettings {
		m := map[string]listenerSettings{}
		for name, t := range c.Tenants {
			if t != nil && (t.Listen != "" || len(t.InterceptHosts) > 0) {
				m[name] = listenerSettings{t.Listen, t.TLS, t.InterceptHosts}
			}
		}
		return m
	}
	return !reflect.DeepEqual(settings(prev), settings(cfg))
}

// LocalCACertificate returns the local CA's certificate (PEM), which apps
// trust for tls: local listeners and the forward proxy; nil when no
// listener needs the CA.
func (s *Server) LocalCACertificate() []byte {
	if s.ca == nil {
		return nil
	}
	return s.ca.CertificatePEM()
}

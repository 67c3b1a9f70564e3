package forwardproxy

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/sidekey/sidekey/config"
	"github.com/sidekey/sidekey/proxy"
)

// Options configures a Proxy.
type Options struct {
	// Hosts maps each intercepted host name (as config.InterceptHost
	// normalises it) to the tenant it belongs to. Required.
	Hosts map[string]string
	// Serve returns the handler that serves a tenant's requests with the
	// whole path (proxy.Proxy.ForTenant). Required.
	Serve func(tenant string) http.Handler
	// Certificate returns the tls.Config.GetCertificate for a tunnel to
	// host: it must serve a certificate for host and for no other server
	// name (localca.CA.GetCertificate(host)). Required.
	Certificate func(host string) func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	// Admit, when set, decides whether the caller of r may use tenant,
	// answering the refusal itself (401 or 403; a 401 goes out as 407).
	// It sees a Basic Proxy-Authorization already turned into "Bearer
	// <password>". Nil: every caller is admitted.
	Admit func(w http.ResponseWriter, r *http.Request, tenant string) bool
	// Logger receives refused requests and tunnel errors. Default: nop.
	Logger *zap.Logger
}

// Proxy is the forward proxy's http.Handler. Create it with New and stop
// it with Shutdown, which also ends the tunnels. It is safe for concurrent
// use.
type Proxy struct {
	opts     Options
	log      *zap.Logger
	tls      map[string]*tls.Config  // per intercepted host
	handlers map[string]http.Handler // per tenant

	tunnels *http.Server  // serves the requests inside every tunnel
	accept  *tunnelQueue  // hands tunnels to it
	conns   sync.Map      // *tls.Conn → tunnel
	served  chan struct{} // closed when tunnels.Serve returns
}

// tunnel is what a tunnel's connection carries: the host it was opened to
// and the tenant serving it.
type tunnel struct {
	host   string
	tenant string
}

// tunnelKey carries a request's tunnel in its context.
type tunnelKey struct{}

// New returns a Proxy for opts and starts serving tunnels.
func New(opts Options) *Proxy {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	p := &Proxy{
		opts:     opts,
		log:      opts.Logger,
		tls:      make(map[string]*tls.Config, len(opts.Hosts)),
		handlers: make(map[string]http.Handler),
		accept:   newTunnelQueue(),
		served:   make(chan struct{}),
	}
	for host, tenant := range opts.Hosts {
		p.tls[host] = &tls.Config{
			MinVersion:     tls.VersionTLS12,
			NextProtos:     []string{"http/1.1"},
			GetCertificate: opts.Certificate(host),
		}
		if p.handlers[tenant] == nil {
			p.handlers[tenant] = opts.Serve(tenant)
		}
	}
	p.tunnels = &http.Server{
		Handler:           http.HandlerFunc(p.serveTunnel),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          zap.NewStdLog(p.log.Named("tunnel")),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if t, ok := p.conns.Load(c); ok {
				return context.WithValue(ctx, tunnelKey{}, t.(tunnel))
			}
			return ctx
		},
		ConnState: func(c net.Conn, s http.ConnState) {
			if s == http.StateClosed || s == http.StateHijacked {
				p.conns.Delete(c)
			}
		},
	}
	go func() {
		defer close(p.served)
		_ = p.tunnels.Serve(p.accept)
	}()
	return p
}

// Shutdown ends the proxy's tunnels gracefully: no new ones start, idle
// ones close, and busy ones close once their request is answered or ctx is
// done (then they are closed at once). The listener serving ServeHTTP is
// its caller's to shut down.
func (p *Proxy) Shutdown(ctx context.Context) error {
	err := p.tunnels.Shutdown(ctx)
	if err != nil {
		_ = p.tunnels.Close()
	}
	<-p.served
	return err
}

// ServeHTTP serves one request to the proxy: a CONNECT, an absolute-form
// http:// request, or (refused) anything else.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodConnect:
		p.connect(w, r)
	case r.URL.IsAbs():
		p.plain(w, r)
	default:
		proxy.WriteError(w, http.StatusBadRequest, proxy.CodeBadRequest, "",
			"this is sidekey's forward proxy: use it as HTTPS_PROXY (or HTTP_PROXY), not as a server", 0)
	}
}

// connect opens a tunnel to an intercepted host and serves TLS in it.
func (p *Proxy) connect(w http.ResponseWriter, r *http.Request) {
	host, port, err := net.SplitHostPort(r.Host)
	if err != nil {
		proxy.WriteError(w, http.StatusBadRequest, proxy.CodeBadRequest, "", "CONNECT needs host:port", 0)
		return
	}
	tenant, ok := p.intercepted(w, host, port, "443")
	if !ok || !p.admit(w, r, tenant) {
		return
	}
	host = config.InterceptHost(host)
	hj, ok := w.(http.Hijacker)
	if !ok {
		proxy.WriteError(w, http.StatusInternalServerError, proxy.CodeBadRequest, tenant, "CONNECT needs HTTP/1.1", 0)
		return
	}
	conn, buf, err := hj.Hijack()
	if err != nil {
		p.log.Warn("CONNECT: taking over the connection", zap.Error(err))
		return
	}
	_ = conn.SetDeadline(time.Time{}) // the tunnel server sets its own
	if _, err := conn.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n")); err != nil {
		conn.Close()
		return
	}
	var raw net.Conn = conn
	if buf.Reader.Buffered() > 0 { // the client sent its ClientHello without waiting
		raw = &bufferedConn{Conn: conn, r: buf.Reader}
	}
	tc := tls.Server(raw, p.tls[host])
	p.conns.Store(tc, tunnel{host: host, tenant: tenant})
	if !p.accept.put(tc) {
		p.conns.Delete(tc)
		tc.Close()
	}
}

// plain serves an absolute-form http:// request (HTTP_PROXY) for an
// intercepted host.
func (p *Proxy) plain(w http.ResponseWriter, r *http.Request) {
	if !strings.EqualFold(r.URL.Scheme, "http") {
		proxy.WriteError(w, http.StatusBadRequest, proxy.CodeBadRequest, "", "only http:// URLs are proxied this way; https:// goes through CONNECT", 0)
		return
	}
	port := r.URL.Port()
	if port == "" {
		port = "80"
	}
	tenant, ok := p.intercepted(w, r.URL.Hostname(), port, "80")
	if !ok || !p.admit(w, r, tenant) {
		return
	}
	routed := *r
	routed.RequestURI = originForm(r.RequestURI)
	u := *r.URL
	u.Scheme, u.Host, u.User = "", "", nil
	routed.URL = &u
	p.handlers[tenant].ServeHTTP(w, &routed)
}

// serveTunnel serves one request that arrived inside a tunnel.
func (p *Proxy) serveTunnel(w http.ResponseWriter, r *http.Request) {
	t, ok := r.Context().Value(tunnelKey{}).(tunnel)
	if !ok { // never: every connection handed to the tunnel server has one
		proxy.WriteError(w, http.StatusInternalServerError, proxy.CodeBadRequest, "", "not a tunnel", 0)
		return
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if config.InterceptHost(host) != t.host {
		proxy.WriteError(w, http.StatusMisdirectedRequest, proxy.CodeMisdirectedRequest, t.tenant,
			"this tunnel was opened to "+t.host+"; open another for "+host, 0)
		return
	}
	p.handlers[t.tenant].ServeHTTP(w, r)
}

// intercepted returns the tenant that intercepts host on port (which must
// be want), or answers 403 host_not_intercepted.
func (p *Proxy) intercepted(w http.ResponseWriter, host, port, want string) (string, bool) {
	var why string
	tenant, known := p.opts.Hosts[config.InterceptHost(host)]
	switch _, ipErr := netip.ParseAddr(strings.Trim(host, "[]")); {
	case ipErr == nil:
		why = "sidekey does not proxy to ip addresses, only to the host names tenants intercept"
	case !known:
		why = "sidekey is not an open proxy: no tenant intercepts " + host
	case port != want:
		why = "sidekey intercepts " + host + " on port " + want + " only"
	default:
		return tenant, true
	}
	p.log.Info("forward proxy: refused", zap.String("host", host), zap.String("port", port))
	proxy.WriteError(w, http.StatusForbidden, proxy.CodeHostNotIntercepted, "", why, 0)
	return "", false
}

// admit runs Options.Admit with a Basic Proxy-Authorization turned into
// Bearer, and answers a 401 as 407 with Proxy-Authenticate.
func (p *Proxy) admit(w http.ResponseWriter, r *http.Request, tenant string) bool {
	if p.opts.Admit == nil {
		return true
	}
	if key, ok := basicPassword(r.Header.Get("Proxy-Authorization")); ok {
		r = r.Clone(r.Context())
		r.Header.Set("Proxy-Authorization", "Bearer "+key)
	}
	return p.opts.Admit(&proxyAuthWriter{ResponseWriter: w}, r, tenant)
}

// basicPassword returns the password of a Basic credential.
func basicPassword(v string) (string, bool) {
	scheme, enc, ok := strings.Cut(v, " ")
	if !ok || !strings.EqualFold(scheme, "Basic") {
		return "", false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(enc))
	if err != nil {
		return "", false
	}
	_, pass, ok := strings.Cut(string(raw), ":")
	return pass, ok && pass != ""
}

// proxyAuthWriter turns a 401 into 407 Proxy Authentication Required, the
// status a proxy asks for credentials with.
type proxyAuthWriter struct {
	http.ResponseWriter
}

// WriteHeader writes status, 407 with Proxy-Authenticate for a 401.
func (w *proxyAuthWriter) WriteHeader(status int) {
	if status == http.StatusUnauthorized {
		w.Header().Set("Proxy-Authenticate", `Basic realm="sidekey"`)
		status = http.StatusProxyAuthRequired
	}
	w.ResponseWriter.WriteHeader(status)
}

// originForm returns the path and query of an absolute-form request
// target, byte for byte ("/" when it has no path).
func originForm(target string) string {
	_, rest, ok := strings.Cut(target, "://")
	if !ok {
		return target
	}
	i := strings.IndexAny(rest, "/?")
	switch {
	case i < 0:
		return "/"
	case rest[i] == '?':
		return "/" + rest[i:]
	}
	return rest[i:]
}

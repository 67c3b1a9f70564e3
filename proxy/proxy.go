// Package proxy routes /{tenant}/{path} to the tenant's API with the
// tenant's token injected, using httputil.ReverseProxy's Rewrite hook.
package proxy

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/oauth2"
)

// Lookup finds the route for a tenant name; ok is false for an unknown
// tenant. It is called on every request and must be fast and safe for
// concurrent use.
type Lookup func(tenant string) (rt *Route, ok bool)

// Observer receives one call per proxied request (implemented by the
// metrics layer). code is the status the caller got.
type Observer interface {
	// ObserveRequest reports one request: the status the caller got, its
	// duration, and how long it queued for the tenant's rate limit.
	ObserveRequest(tenant string, code int, d, waited time.Duration)
}

// Options configures a Proxy. Zero values mean defaults.
type Options struct {
	// Lookup resolves tenants. Required.
	Lookup Lookup
	// Transport sends requests upstream. Default: NewTransport(TransportOptions{}).
	Transport http.RoundTripper
	// MaxReplayBody is the largest request body buffered so that a request
	// can be replayed once after an upstream 401. Default 1 MiB; negative
	// disables buffering (only bodiless requests are replayed).
	MaxReplayBody int64
	// Logger receives error and (when AccessLog) access lines. Default: nop.
	Logger *zap.Logger
	// AccessLog writes one info line per request. Default false.
	AccessLog bool
	// Observer, when set, sees every request's outcome.
	Observer Observer
	// CallerKeyHeader is a further inbound header that carries a caller's
	// credential (the server's caller_key_header). Like Authorization and
	// Proxy-Authorization, which are always removed, it never reaches the
	// upstream. Empty: none.
	CallerKeyHeader string
	// AllowUpgrade reports whether a tenant's callers may open Upgrade
	// tunnels (WebSocket): the tenant's allow_upgrade. Nil: none may; a
	// request carrying Upgrade is answered 400 bad_request, since what
	// flows through a tunnel escapes sidekey's path checks.
	AllowUpgrade func(tenant string) bool
	// Admit, when set, decides whether the caller of r may use tenant. It
	// runs once the proxy has parsed the request target, with the tenant
	// that target names (so the tenant is parsed in one place only), and
	// before the tenant is looked up. Returning false means Admit has
	// answered the request itself (401 or 403). Nil: everyone is admitted.
	Admit func(w http.ResponseWriter, r *http.Request, tenant string) bool
	// TokenUnavailable maps a token engine error to the status, code,
	// message and Retry-After the caller gets. Default: 503
	// token_unavailable with the error's text.
	TokenUnavailable func(tenant string, err error) (status int, code, message string, retryAfter time.Duration)
}

// Proxy is the http.Handler that serves /{tenant}/… requests. It is safe for
// concurrent use.
type Proxy struct {
	opts Options
	log  *zap.Logger
	rp   *httputil.ReverseProxy
}

// stateKey carries a request's *requestState from ServeHTTP to Rewrite and
// the replaying transport.
type stateKey struct{}

// requestState is what one request's hooks share. It is pooled: nothing may
// keep a pointer to it after ServeHTTP returns.
type requestState struct {
	statusWriter
	route      *Route
	tokens     TokenSource   // where this request's token comes from (a session's, or the route's)
	out        url.URL       // the upstream URL
	tok        *oauth2.Token // the token injected into the current attempt
	replay     bool          // the body can be sent again
	retried429 bool          // the request was already replayed after a 429
	waited     time.Duration // time spent waiting for the tenant's rate limit
}

var statePool = sync.Pool{New: func() any { return new(requestState) }}

// New returns a Proxy for opts.
func New(opts Options) *Proxy {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.MaxReplayBody == 0 {
		opts.MaxReplayBody = 1 << 20
	}
	if opts.Transport == nil {
		opts.Transport = NewTransport(TransportOptions{})
	}
	if opts.TokenUnavailable == nil {
		opts.TokenUnavailable = defaultTokenUnavailable
	}
	if opts.CallerKeyHeader != "" {
		opts.CallerKeyHeader = http.CanonicalHeaderKey(opts.CallerKeyHeader)
	}
	p := &Proxy{opts: opts, log: opts.Logger}
	p.rp = &httputil.ReverseProxy{
		Rewrite:        p.rewrite,
		Transport:      &replayTransport{base: opts.Transport, proxy: p},
		BufferPool:     bufferPool{},
		ModifyResponse: stripErrorHeader,
		ErrorHandler:   p.upstreamError,
		ErrorLog:       zap.NewStdLog(opts.Logger.Named("reverseproxy")),
	}
	return p
}

// ServeHTTP routes one request.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	st := statePool.Get().(*requestState)
	*st = requestState{statusWriter: statusWriter{ResponseWriter: w}}
	defer func() {
		*st = requestState{}
		statePool.Put(st)
	}()
	p.serve(st, r)
	if st.route == nil {
		return // never reached a tenant: not counted per tenant
	}
	tenant, code, d := st.route.name, st.status(), time.Since(start)
	if p.opts.Observer != nil {
		p.opts.Observer.ObserveRequest(tenant, code, d, st.waited)
	}
	if p.opts.AccessLog {
		p.log.Info("request",
			zap.String("tenant", tenant),
			zap.String("method", r.Method),
			zap.String("path", r.URL.Path),
			zap.Int("status", code),
			zap.Duration("duration", d),
			zap.Int64("bytes", st.bytes),
		)
	}
}

// serve does the work of ServeHTTP, writing through st. st.route is set
// once the request is known to be for a tenant.
func (p *Proxy) serve(st *requestState, r *http.Request) {
	w := &st.statusWriter
	if r.Method == http.MethodConnect {
		WriteError(w, http.StatusMethodNotAllowed, CodeMethodNotAllowed, "", "CONNECT is not supported", 0)
		return
	}
	t, err := parseTarget(r.RequestURI)
	if err != nil {
		WriteError(w, http.StatusBadRequest, CodeBadRequest, "", err.Error(), 0)
		return
	}
	if p.opts.Admit != nil && !p.opts.Admit(w, r, t.tenant) {
		return
	}
	rt, ok := p.opts.Lookup(t.tenant)
	if !ok {
		WriteError(w, http.StatusNotFound, CodeUnknownTenant, t.tenant, "no tenant named "+t.tenant, 0)
		return
	}
	st.route = rt
	if _, ok := r.Header["Upgrade"]; ok && (p.opts.AllowUpgrade == nil || !p.opts.AllowUpgrade(rt.name)) {
		WriteError(w, http.StatusBadRequest, CodeBadRequest, rt.name, "Upgrade (WebSocket, h2c) is not allowed for this tenant: set allow_upgrade: true to let it through", 0)
		return
	}
	if st.out, err = joinURL(rt.upstream, rt.base, t.rest, t.rawQuery); err != nil {
		WriteError(w, http.StatusBadRequest, CodeBadRequest, rt.name, err.Error(), 0)
		return
	}
	if st.waited, err = rt.limit.wait(r.Context()); err != nil {
		p.rateLimited(w, r, rt.name, err)
		return
	}
	if st.tokens, err = rt.tokensFor(r); err != nil {
		p.tokenError(w, r, rt.name, err)
		return
	}
	if st.tok, err = st.tokens.TokenContext(r.Context()); err != nil {
		p.tokenError(w, r, rt.name, err)
		return
	}
	if st.replay, err = prepareReplay(r, p.opts.MaxReplayBody); err != nil {
		WriteError(w, http.StatusBadRequest, CodeBadRequest, rt.name, "could not read the request body", 0)
		return
	}
	p.rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), stateKey{}, st)))
}

// rewrite builds the outbound request: the tenant's URL, no caller
// credentials, the tenant's token and static headers. It runs after
// ReverseProxy removed hop-by-hop headers, so nothing it sets is stripped.
func (p *Proxy) rewrite(pr *httputil.ProxyRequest) {
	st := pr.In.Context().Value(stateKey{}).(*requestState)
	rt := st.route
	// The tenant's URL, with the caller's path and query byte for byte:
	// ReverseProxy drops query parameters url.ParseQuery rejects, to stop a
	// proxy and its backend from reading one query two ways, but sidekey
	// never reads the query (routing is by tenant only).
	*pr.Out.URL = st.out
	pr.Out.Host = "" // the upstream's own host, never the caller's
	h := pr.Out.Header
	p.dropCallerCredentials(h, rt)
	for k, v := range rt.static {
		h[k] = v
	}
	h[rt.header] = rt.headerValue(st.tok)
	// A chunked body's trailers are headers too: the caller's credentials
	// and the headers sidekey sets never travel in them either.
	if len(pr.Out.Trailer) > 0 {
		p.dropCallerCredentials(pr.Out.Trailer, rt)
		for k := range rt.static {
			delete(pr.Out.Trailer, k)
		}
		if len(pr.Out.Trailer) == 0 {
			pr.Out.Trailer = nil
		}
	}
}

// dropCallerCredentials removes from h every header that carries a
// caller's credential, or the tenant's: Authorization,
// Proxy-Authorization, the caller key header and the token header.
func (p *Proxy) dropCallerCredentials(h http.Header, rt *Route) {
	delete(h, "Authorization")
	delete(h, "Proxy-Authorization")
	delete(h, SessionHeader)
	delete(h, rt.header)
	if p.opts.CallerKeyHeader != "" {
		delete(h, p.opts.CallerKeyHeader)
	}
}

// rateLimited answers a request refused by its tenant's rate limit.
func (p *Proxy) rateLimited(w http.ResponseWriter, r *http.Request, tenant string, err error) {
	var rl *rateLimitedError
	if !errors.As(err, &rl) {
		w.WriteHeader(statusClientClosed) // the caller gave up while queued
		return
	}
	WriteError(w, http.StatusTooManyRequests, CodeRateLimited, tenant, err.Error(), rl.retryAfter)
}

// tokenError answers a request whose tenant has no usable token.
func (p *Proxy) tokenError(w http.ResponseWriter, r *http.Request, tenant string, err error) {
	if r.Context().Err() != nil {
		w.WriteHeader(statusClientClosed) // the caller went away; nobody reads this
		return
	}
	if writeSessionError(w, tenant, err) {
		return
	}
	status, code, msg, retry := p.opts.TokenUnavailable(tenant, err)
	p.log.Warn("no token for request", zap.String("tenant", tenant), zap.Error(err))
	WriteError(w, status, code, tenant, msg, retry)
}

func defaultTokenUnavailable(_ string, err error) (int, string, string, time.Duration) {
	return http.StatusServiceUnavailable, CodeTokenUnavailable, err.Error(), 5 * time.Second
}

// statusClientClosed is recorded (as nginx does) when the caller went away
// before an answer was ready.
const statusClientClosed = 499

// upstreamError answers a request whose upstream round trip failed.
func (p *Proxy) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	st, _ := r.Context().Value(stateKey{}).(*requestState)
	tenant := ""
	if st != nil {
		tenant = st.route.name
	}
	var te *tokenErr
	var ne net.Error
	switch {
	case errors.As(err, &te):
		p.tokenError(w, r, tenant, te.err)
	case r.Context().Err() == context.Canceled:
		w.WriteHeader(statusClientClosed)
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		p.log.Warn("upstream timeout", zap.String("tenant", tenant), zap.Error(err))
		WriteError(w, http.StatusGatewayTimeout, CodeUpstreamTimeout, tenant, "the API did not answer in time", 0)
	default:
		p.log.Warn("upstream unreachable", zap.String("tenant", tenant), zap.Error(err))
		WriteError(w, http.StatusBadGateway, CodeUpstreamUnreachable, tenant, "the API could not be reached", 0)
	}
}

package proxy

import (
	"context"
	"net/http"
	"net/url"
	"sync/atomic"

	"golang.org/x/oauth2"
)

// TokenSource is what the proxy needs from a tenant's token engine
// (*tokensource.Source implements it).
type TokenSource interface {
	// TokenContext returns a valid token, waiting at most until ctx is done.
	TokenContext(ctx context.Context) (*oauth2.Token, error)
	// Invalidate drops tok if it is still the current token.
	Invalidate(tok *oauth2.Token) bool
}

// Route is one tenant as the proxy sees it: where requests go, which token
// they carry and in which header. A Route is immutable after NewRoute apart
// from its internal header-value cache, and safe for concurrent use.
type Route struct {
	name     string
	upstream *url.URL
	base     string // upstream's escaped path, no trailing slash (basePath)
	tokens   TokenSource
	header   string      // canonical header name the token goes into
	prefix   string      // header value before the token
	suffix   string      // header value after the token
	static   http.Header // extra headers set on every request
	limit    *limiter    // the tenant's outbound pace; never nil

	sessions SessionLookup // per-customer sessions (session.go); nil: the tenant's own token

	cached atomic.Pointer[headerValue] // the header value for the last token seen
}

// headerValue caches the injected header value for one token, so the hot
// path builds the string once per token rather than once per request.
type headerValue struct {
	tok   *oauth2.Token
	value []string
}

// RouteOptions describes a Route.
type RouteOptions struct {
	Name     string      // tenant name (first path segment)
	Upstream *url.URL    // API base; proxied paths are appended
	Tokens   TokenSource // the tenant's token engine
	Header   string      // header for the token; "" means Authorization
	Prefix   string      // header value before the token, e.g. "Bearer "
	Suffix   string      // header value after the token
	Headers  http.Header // static extra headers; may be nil
	Limit    RateLimit   // outbound rate limit; zero: none
}

// NewRoute returns a Route for opts.
func NewRoute(opts RouteOptions) *Route {
	header := opts.Header
	if header == "" {
		header = "Authorization"
	}
	return &Route{
		name:     opts.Name,
		upstream: opts.Upstream,
		base:     basePath(opts.Upstream),
		tokens:   opts.Tokens,
		header:   http.CanonicalHeaderKey(header),
		prefix:   opts.Prefix,
		suffix:   opts.Suffix,
		static:   opts.Headers.Clone(),
		limit:    newLimiter(opts.Limit),
	}
}

// Name returns the tenant name.
func (rt *Route) Name() string { return rt.name }

// headerValue returns the token header value for tok, from cache when tok is
// the token the previous request used.
func (rt *Route) headerValue(tok *oauth2.Token) []string {
	if hv := rt.cached.Load(); hv != nil && hv.tok == tok {
		return hv.value
	}
	hv := &headerValue{tok: tok, value: []string{rt.prefix + tok.AccessToken + rt.suffix}}
	rt.cached.Store(hv)
	return hv.value
}

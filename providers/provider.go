// Package providers resolves a configured tenant against its platform: the
// endpoints (with the platform's defaults applied), the grant that obtains a
// token, and how that token is injected into proxied requests.
//
// Each platform lives in its own file (istores.go, storehippo.go,
// simplestore.go, scayle.go, oauth2.go with oauth2code.go, static.go).
// Providers hold no network state of their own: every Token() call of a
// Tenant's Source, and every AuthCode.Exchange or Refresh, performs exactly
// one token request. Caching, refresh-ahead, persistence and the consent
// state are other packages' job.
package providers

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"time"

	"go.uber.org/zap"
	"golang.org/x/oauth2"

	"github.com/sidekey/sidekey/config"
)

// Tenant is a configured tenant resolved against its provider: endpoints with
// defaults applied, the raw grant, and how its token is injected.
type Tenant struct {
	// Name is the tenant's name, the first path segment of a proxied request.
	Name string
	// Provider is the platform: istores, storehippo, simplestore, scayle,
	// oauth2 or static.
	Provider string
	// APIURL is the upstream base; proxied paths are appended. It is an
	// http or https URL with a host, and never has a query, a fragment,
	// user info or a trailing slash.
	APIURL *url.URL
	// TokenURL is the token endpoint after defaults; nil for providers
	// without one (static).
	TokenURL *url.URL
	// AuthURL is the consent page after defaults; nil unless AuthCode is
	// set.
	AuthURL *url.URL
	// Inject says where and how the token goes into a proxied request.
	Inject Injection
	// Headers are static extra headers, canonicalised (from the config's
	// `headers`; providers may add defaults the config does not set, such
	// as SCAYLE's X-Shop-Id). Never nil.
	Headers http.Header
	// RefreshBefore starts a refresh this long before expiry. Zero: the
	// engine's default (half the token's lifetime).
	RefreshBefore time.Duration
	// RefreshTokenLifetime is the configured life of a consent's refresh
	// token (refresh_token_lifetime); zero: unknown.
	RefreshTokenLifetime time.Duration
	// Source is the raw grant of a tenant without a consent flow (nil when
	// AuthCode is set): every Token() call performs one token request
	// (no caching; the engine caches). It is safe for concurrent use and
	// also implements ContextTokenSource.
	//
	// A returned token with a zero Expiry has an unknown lifetime (the
	// provider sent no expires_in): the engine treats it as permanent until
	// the API answers 401. A token's TokenType is the provider's raw value
	// and is not used for injection: Inject alone decides the header value.
	Source oauth2.TokenSource
	// AuthCode is non-nil for tenants connected through a consent flow
	// (istores, storehippo, scayle, oauth2 with grant authorization_code).
	// Their Source is nil: tokens come from the store, and refreshes go
	// through AuthCode.Refresh (see tokensource.Stored).
	AuthCode AuthCode
}

// ContextTokenSource is a TokenSource whose token request can be bounded or
// cancelled by a context. Every Tenant.Source implements it; Token() is
// TokenContext(context.Background()), bounded only by the HTTP client's
// timeout.
type ContextTokenSource interface {
	oauth2.TokenSource
	TokenContext(ctx context.Context) (*oauth2.Token, error)
}

// Injection says where the token goes: Header (canonical MIME form) =
// Prefix + token + Suffix (split from token_format around {token}).
type Injection struct {
	Header string // canonical header name, e.g. "Authorization" or "X-Token"
	Prefix string // text before the token, e.g. "Bearer "
	Suffix string // text after the token; usually empty
}

// Value returns the header value that carries token.
func (i Injection) Value(token string) string {
	return i.Prefix + token + i.Suffix
}

// Options configure Build. The zero value is ready to use.
type Options struct {
	// HTTPClient sends token requests. Nil: a client with a 30 s overall
	// timeout. Either way Build uses it through RefuseRedirects: a request
	// carrying a credential never follows a redirect.
	HTTPClient *http.Client
	// Logger receives debug lines about token requests (never a secret or
	// a token). Nil: zap.NewNop().
	Logger *zap.Logger
}

// platform is one provider: its default endpoints, its own configuration
// checks and how it builds the grant.
type platform struct {
	name string
	// authURL, tokenURL and apiURL are the default consent page, token
	// endpoint and API base; "" means the key is required (when used).
	// They may contain {store} and {tenant_space}, filled from the tenant.
	authURL  string
	tokenURL string
	apiURL   string
	// usesTokenURL is false for providers that never request a token.
	usesTokenURL bool
	// consent reports whether tenant t is connected through a consent flow
	// (and so uses auth_url and authCode); nil means never.
	consent func(t *config.Tenant) bool
	// headers returns default static headers for t; headers the config
	// sets itself win. Nil: none.
	headers func(t *config.Tenant) map[string]string
	// check adds the provider's own problems (required credentials, ...).
	check func(c *checker)
	// source builds the grant for a tenant without a consent flow that
	// passed every check.
	source func(r *resolved, env sourceEnv) ContextTokenSource
	// authCode builds the consent flow for a tenant with one that passed
	// every check.
	authCode func(r *resolved, env sourceEnv) AuthCode
}

// always is platform.consent for providers that only have a consent flow.
func always(*config.Tenant) bool { return true }

// platformNamed returns the provider called name, or nil.
func platformNamed(name string) *platform {
	switch name {
	case "istores":
		return istoresPlatform()
	case "storehippo":
		return storeHippoPlatform()
	case "simplestore":
		return simpleStorePlatform()
	case "scayle":
		return scaylePlatform()
	case "oauth2":
		return oauth2Platform()
	case "static":
		return staticPlatform()
	}
	return nil
}

// platformNames lists the known providers for error messages, sorted.
const platformNames = "istores, oauth2, scayle, simplestore, static, storehippo"

// sourceEnv is what a platform's source needs besides the tenant.
type sourceEnv struct {
	client *http.Client
	log    *zap.Logger // already named and tagged with the tenant
}

// Check reports provider-specific problems (unknown provider, missing
// credentials, unparsable endpoint after defaults, invalid injection or
// headers) without building anything. Keys are full paths
// ("tenants.<name>.token_url"). An empty result means Build will succeed.
func Check(name string, t *config.Tenant) []config.Problem {
	_, problems := resolve(name, t)
	return problems
}

// CheckApp reports the problems of app block name that are the provider's
// to judge: its provider must be set and known. What else a provider
// requires is checked on each tenant and connection using the app (Check),
// since an app holds only part of their settings.
func CheckApp(name string, a *config.Tenant) []config.Problem {
	if a == nil {
		return nil // config reports an empty app
	}
	c := &checker{prefix: "apps." + name + ".", t: a}
	c.checkProviderName(a.Provider)
	return c.problems
}

// Build resolves tenant name. A tenant with problems yields a config.Problems
// error listing every one of them by key path. Empty fields get the
// provider's defaults; t is not modified and not retained, except that the
// Source or AuthCode keeps copies of the credentials it sends. A tenant
// connected through a consent flow gets AuthCode and a nil Source; any
// other gets Source.
func Build(name string, t *config.Tenant, opts Options) (*Tenant, error) {
	r, problems := resolve(name, t)
	if len(problems) > 0 {
		return nil, config.Problems(problems)
	}
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	log = log.Named("providers").With(zap.String("tenant", name), zap.String("provider", r.p.name))
	client := RefuseRedirects(opts.HTTPClient)
	out := &Tenant{
		Name:                 name,
		Provider:             r.p.name,
		APIURL:               r.apiURL,
		TokenURL:             r.tokenURL,
		AuthURL:              r.authURL,
		Inject:               r.inject,
		Headers:              r.headers,
		RefreshBefore:        time.Duration(t.RefreshBefore),
		RefreshTokenLifetime: time.Duration(t.RefreshTokenLifetime),
	}
	env := sourceEnv{client: client, log: log}
	if r.authURL != nil {
		out.AuthCode = r.p.authCode(r, env)
	} else {
		out.Source = r.p.source(r, env)
	}
	fields := []zap.Field{zap.String("api_url", r.apiURL.String()), zap.String("token_header", r.inject.Header)}
	if r.tokenURL != nil {
		fields = append(fields, zap.String("token_url", r.tokenURL.String()))
	}
	if r.authURL != nil {
		fields = append(fields, zap.String("auth_url", r.authURL.String()))
	}
	log.Debug("tenant resolved", fields...)
	for key, u := range map[string]*url.URL{"api_url": r.apiURL, "token_url": r.tokenURL, "auth_url": r.authURL} {
		if cleartext(u) {
			log.Warn("endpoint is plain http to a non-loopback host: credentials and tokens cross the network unencrypted",
				zap.String("key", "tenants."+name+"."+key), zap.String("url", u.String()))
		}
	}
	return out, nil
}

// cleartext reports an http (not https) URL to a host other than loopback.
func cleartext(u *url.URL) bool {
	if u == nil || u.Scheme != "http" {
		return false
	}
	host := u.Hostname()
	if host == "localhost" {
		return false
	}
	ip := net.ParseIP(host)
	return ip == nil || !ip.IsLoopback()
}

// defaultHTTPClient is the client for token requests when
// Options.HTTPClient is nil: a 20 s wait for the answer's headers and 30 s
// overall. It follows redirects like any http.Client; RefuseRedirects,
// which Build always applies, is what refuses them.
func defaultHTTPClient() *http.Client {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.ResponseHeaderTimeout = 20 * time.Second
	return &http.Client{Transport: transport, Timeout: 30 * time.Second}
}

// timeNow is the clock; tests may swap it.
var timeNow = time.Now

// NeedsConsent reports whether tenant t gets its tokens through a consent
// flow (and so stays consent_required until a person connects it), without
// building anything. An unknown provider needs none.
func NeedsConsent(t *config.Tenant) bool {
	p := platformNamed(t.Provider)
	return p != nil && p.consent != nil && p.consent(t)
}

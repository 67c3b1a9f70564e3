package config

import (
	"net"
	"strings"
	"time"
)

// DefaultACMECA is Let's Encrypt's production directory, the default
// tls.ca for tls.mode acme.
const DefaultACMECA = "https://acme-v02.api.letsencrypt.org/directory"

// DefaultCallerKeyHeader is the default caller_key_header. In it, and only
// in it, the key must follow "Bearer ".
const DefaultCallerKeyHeader = "Proxy-Authorization"

// CallbackPath is the path of the OAuth redirect URI under public_url.
const CallbackPath = "/_sidekey/oauth/callback"

// Defaults that SetDefaults fills in.
const (
	defaultListen          = "127.0.0.1:8080"
	defaultStorageType     = "file"
	defaultStoragePath     = "sidekey-data"
	defaultRedisAddr       = "127.0.0.1:6379"
	defaultRedisPrefix     = "sidekey"
	defaultLogLevel        = "info"
	defaultLogFormat       = "json"
	defaultMaxActive       = 10000
	defaultMaxIdlePerHost  = 256
	defaultMaxReplayBody   = 1 << 20
	defaultTokenHeader     = "Authorization"
	defaultBearerFormat    = "Bearer {token}"
	defaultTokenFormat     = "{token}"
	defaultFetchTimeout    = Duration(30 * time.Second)
	defaultDialTimeout     = Duration(10 * time.Second)
	defaultTLSTimeout      = Duration(10 * time.Second)
	defaultResponseTimeout = Duration(60 * time.Second)
	defaultIdleConnTimeout = Duration(90 * time.Second)
	defaultShutdownTimeout = Duration(15 * time.Second)
)

// SetDefaults fills every zero field with its default (see each field's
// comment) and trims a trailing "/" from public_url. It is idempotent. Parse
// calls it; call it yourself on a Config built in code before Validate.
// Provider-specific endpoints are not filled here (package providers does).
func (c *Config) SetDefaults() {
	c.applyApps()
	setDefault(&c.Listen, defaultListen)
	if c.PublicURL == "" {
		c.PublicURL = defaultPublicURL(c.Listen)
		if c.TLS.Mode == "files" || c.TLS.Mode == "acme" {
			c.PublicURL = "https://" + strings.TrimPrefix(c.PublicURL, "http://")
			if _, port, err := net.SplitHostPort(c.Listen); err == nil && c.TLS.Mode == "acme" && len(c.TLS.Domains) > 0 {
				host := c.TLS.Domains[0]
				if port != "443" {
					host = net.JoinHostPort(host, port)
				}
				c.PublicURL = "https://" + host
			}
		}
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")

	setDefault(&c.CallerKeyHeader, DefaultCallerKeyHeader)

	setDefault(&c.Storage.Type, defaultStorageType)
	setDefault(&c.Storage.Path, defaultStoragePath)
	c.Storage.Redis.redisDefaults()
	setDefault(&c.Storage.Redis.Prefix, defaultRedisPrefix)

	setDefault(&c.TLS.Mode, "off")
	if c.TLS.Mode == "acme" {
		setDefault(&c.TLS.CA, DefaultACMECA)
		setDefault(&c.TLS.HTTPChallengePort, 80)
	}

	setDefault(&c.Log.Level, defaultLogLevel)
	setDefault(&c.Log.Format, defaultLogFormat)
	if c.Log.AccessLog == nil {
		on := true
		c.Log.AccessLog = &on
	}

	setDefault(&c.Engine.FetchTimeout, defaultFetchTimeout)
	setDefault(&c.Engine.MaxActive, defaultMaxActive)
	setDefault(&c.Engine.IdleRefresh, Duration(24*time.Hour))

	u := &c.Upstream
	setDefault(&u.DialTimeout, defaultDialTimeout)
	setDefault(&u.TLSHandshakeTimeout, defaultTLSTimeout)
	setDefault(&u.ResponseHeaderTimeout, defaultResponseTimeout)
	setDefault(&u.IdleConnTimeout, defaultIdleConnTimeout)
	setDefault(&u.MaxIdleConnsPerHost, defaultMaxIdlePerHost)
	setDefault(&u.MaxReplayBody, defaultMaxReplayBody)

	setDefault(&c.ShutdownTimeout, defaultShutdownTimeout)

	for _, t := range c.Tenants {
		if t != nil {
			t.setDefaults()
		}
	}
}

// setDefaults fills the tenant's token header and format.
func (t *Tenant) setDefaults() {
	setDefault(&t.TokenHeader, defaultTokenHeader)
	if t.TokenFormat == "" {
		t.TokenFormat = defaultTokenFormat
		if strings.EqualFold(t.TokenHeader, defaultTokenHeader) {
			t.TokenFormat = defaultBearerFormat
		}
	}
}

// RedirectURL is the OAuth redirect URI every authorization-code tenant
// registers: public_url + "/_sidekey/oauth/callback".
func (c *Config) RedirectURL() string {
	return strings.TrimRight(c.PublicURL, "/") + CallbackPath
}

// defaultPublicURL is "http://" + listen. An empty host (":8080", all
// interfaces) becomes localhost, since "http://:8080" is not a URL.
func defaultPublicURL(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err == nil && host == "" {
		return "http://" + net.JoinHostPort("localhost", port)
	}
	return "http://" + listen
}

// setDefault sets *v to def when *v is the zero value.
func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// Package config reads sidekey's YAML configuration: it expands ${VAR}
// references from the environment after parsing (so a value can never inject
// YAML), reads *_file secrets, fills defaults and validates the result with
// errors that name the offending key.
package config

import "time"

// Config is the whole configuration file. Zero values mean "use the default";
// each field's comment gives that default.
type Config struct {
	// Listen is the proxy's address. Default "127.0.0.1:8080" (loopback).
	Listen string `yaml:"listen"`
	// PublicURL is the base of the OAuth redirect URI
	// ({public_url}/_sidekey/oauth/callback). Default "http://" + Listen.
	PublicURL string `yaml:"public_url"`
	// AllowedHosts are further Host names (exact, compared without port and
	// case) a loopback listener answers to, besides loopback names and
	// public_url's host; any other Host is refused (DNS rebinding). Empty:
	// none. Changes on restart.
	AllowedHosts []string `yaml:"allowed_hosts"`
	// Storage is where tokens are kept. Default: type file, path "sidekey-data".
	Storage Storage `yaml:"storage"`
	// Callers are the programs allowed to call the proxy, keyed by caller
	// name. When any are configured they are enforced on every listener,
	// loopback included; off loopback they are required (or
	// allow_unauthenticated).
	Callers map[string]*Caller `yaml:"callers"`
	// CallerKeyHeader is the request header a caller presents its key in.
	// Default "Proxy-Authorization", whose value must be "Bearer <key>"; in
	// any other header the whole value is the key ("Bearer <key>" is
	// accepted too). The proxy removes it before forwarding. Changes on
	// restart.
	CallerKeyHeader string `yaml:"caller_key_header"`
	// AllowUnauthenticated lets a non-loopback listener serve callers without
	// keys. Default false; logged loudly when true.
	AllowUnauthenticated bool `yaml:"allow_unauthenticated"`
	// AdminTokenFile holds the token that unlocks /_sidekey/status, admin and
	// oauth/connect routes off loopback. Empty: those routes are loopback only.
	AdminTokenFile string `yaml:"admin_token_file"`
	// TLS serves the listener over HTTPS. Default: off (plain HTTP, for
	// loopback).
	TLS TLS `yaml:"tls"`
	// Log configures logging.
	Log Log `yaml:"log"`
	// Engine tunes the token engine.
	Engine Engine `yaml:"engine"`
	// Upstream tunes the outbound HTTP transport (API and token endpoints).
	Upstream Upstream `yaml:"upstream"`
	// ShutdownTimeout bounds the drain of in-flight requests on SIGTERM.
	// Default 15s.
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
	// DrainDelay is how long sidekey keeps serving after SIGTERM with
	// /_sidekey/readyz answering 503, before it stops accepting
	// connections and shutdown_timeout starts: time for a load balancer
	// (a Kubernetes Service) to take it out of rotation. Default 0 (stop at
	// once, for a local process); the Helm chart sets 5s.
	DrainDelay Duration `yaml:"drain_delay"`
	// Notify sends operator events to webhooks. Default: none.
	Notify Notify `yaml:"notify"`
	// Apps are platform client registrations (one client id and secret,
	// scopes, endpoints) that many tenants share: config-file tenants name
	// one with `app:`, and connections created at runtime (consent flow or
	// admin API) always belong to one. Keyed by app name; an app block takes
	// the same keys as a tenant.
	Apps map[string]*Tenant `yaml:"apps"`
	// Tenants are the configured tenants, keyed by name
	// ([a-z0-9][a-z0-9._-]*). The name is the first path segment of a
	// proxied request.
	Tenants map[string]*Tenant `yaml:"tenants"`
	// Warnings are what Parse found suspicious but not wrong (a secret file
	// others may read); the caller logs them. Never read from YAML.
	Warnings []Warning `yaml:"-"`
	// ForwardProxy is the HTTPS_PROXY listener for legacy apps (see
	// listeners.go). Nil: none.
	ForwardProxy *ForwardProxy `yaml:"forward_proxy"`
	// LocalCA is the CA that issues the certificates of tls: local tenant
	// listeners and of the forward proxy. Zero: generated on first use and
	// kept sealed in the token store.
	LocalCA LocalCA `yaml:"local_ca"`
}

// Notify configures operator notifications.
type Notify struct {
	// Webhooks receive signed events (Standard Webhooks). Empty: none.
	Webhooks []Webhook `yaml:"webhooks"`
}

// Webhook is one receiver of operator events.
type Webhook struct {
	// URL receives a POST per event: https, or http to a loopback host.
	URL string `yaml:"url"`
	// Secret signs the events: "whsec_" and the base64 of 24 to 64 random
	// bytes. Prefer SecretFile.
	Secret Secret `yaml:"secret"`
	// SecretFile is read into Secret.
	SecretFile string `yaml:"secret_file"`
	// Events are the event types sent (tenant.consent_required,
	// tenant.consent_needed_soon, tenant.connected, tenant.disconnected,
	// tenant.refresh_failing). Empty: all of them.
	Events []string `yaml:"events"`
}

// TLS configures HTTPS on the listener.
type TLS struct {
	// Mode is off (default), files (cert_file and key_file, reloaded when
	// they change) or acme (certificates for domains obtained and renewed
	// from an ACME CA with certmagic).
	Mode string `yaml:"mode"`
	// CertFile and KeyFile are the PEM certificate chain and key (files).
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// Domains are the names to obtain certificates for (acme).
	Domains []string `yaml:"domains"`
	// CA is the ACME directory URL (acme). Default: Let's Encrypt.
	CA string `yaml:"ca"`
	// CARootFile is a PEM file of roots to trust for the ACME directory,
	// for a private CA (e.g. step-ca). Empty: the system roots.
	CARootFile string `yaml:"ca_root_file"`
	// ClientCAFile is a PEM file of CA certificates (files or acme). When
	// set, the listener asks TLS clients for a certificate and verifies one
	// that is presented against these CAs (a client without one may still
	// present a caller key); callers with cert_subject are recognised by it.
	// The file's content is re-read when it changes (a rotated CA needs
	// no restart); the setting itself changes on restart. Empty: no client
	// certificates.
	ClientCAFile string `yaml:"client_ca_file"`
	// Email is the ACME account's contact (acme).
	Email string `yaml:"email"`
	// HTTPChallengePort is where the ACME HTTP-01 challenge is answered
	// (acme). Default 80; the TLS-ALPN-01 challenge is answered on the
	// listener itself.
	HTTPChallengePort int `yaml:"http_challenge_port"`
}

// Storage selects and configures the token store.
type Storage struct {
	// Type is "file" (default), "memory" or "redis".
	Type string `yaml:"type"`
	// Path is the file store's directory. Default "sidekey-data". Relative
	// paths (this one and every other path in the file) are relative to
	// the config file's directory.
	Path string `yaml:"path"`
	// KeyFile holds the 32-byte key that seals every stored value. Default:
	// {path}/key, generated with mode 0600 if absent (file store only).
	KeyFile string `yaml:"key_file"`
	// Redis configures the redis store (type redis).
	Redis Redis `yaml:"redis"`
}

// Redis configures the redis token store.
type Redis struct {
	// Addr is host:port. Default "127.0.0.1:6379".
	Addr string `yaml:"addr"`
	// Username for Redis ACLs. Empty: none.
	Username string `yaml:"username"`
	// Password for Redis. Prefer PasswordFile.
	Password Secret `yaml:"password"`
	// PasswordFile is read into Password.
	PasswordFile string `yaml:"password_file"`
	// DB is the database number. Default 0.
	DB int `yaml:"db"`
	// Prefix is prepended to every key. Default "sidekey".
	Prefix string `yaml:"prefix"`
	// TLS enables TLS to Redis. Default false.
	TLS bool `yaml:"tls"`
	// Sentinel reaches the current primary of a Sentinel-managed set
	// instead of Addr. Nil: no sentinel. See config/redis.go.
	Sentinel *RedisSentinel `yaml:"sentinel"`
	// Cluster talks to a Redis Cluster instead of Addr. Nil: no cluster.
	Cluster *RedisCluster `yaml:"cluster"`
	// MinReplicasAck is how many replicas must acknowledge a write (WAIT)
	// before it counts as stored. Nil: 0 for addr, 1 for sentinel and
	// cluster (ReplicasToAck resolves it).
	MinReplicasAck *int `yaml:"min_replicas_ack"`
}

// Caller is one program allowed to call the proxy. It authenticates with
// exactly one of KeySHA256, KeyFile and CertSubject.
type Caller struct {
	// KeySHA256 is the hex SHA-256 of the caller's key.
	KeySHA256 string `yaml:"key_sha256"`
	// KeyFile holds the caller's key in plain text (hashed on load).
	KeyFile string `yaml:"key_file"`
	// CertSubject is the subject of the caller's TLS client certificate in
	// RFC 2253 form, as `openssl x509 -noout -subject -nameopt RFC2253`
	// prints it (without "subject="), e.g. "CN=billing,O=Acme". It needs
	// tls.client_ca_file, which must have issued the certificate.
	CertSubject string `yaml:"cert_subject"`
	// Tenants the caller may use.
	Tenants []string `yaml:"tenants"`
	// Apps whose tenants (config-file and runtime connections) the caller
	// may use.
	Apps []string `yaml:"apps"`
}

// Log configures the logger.
type Log struct {
	// Level is debug, info (default), warn or error.
	Level string `yaml:"level"`
	// Format is json (default) or console.
	Format string `yaml:"format"`
	// AccessLog writes one line per proxied request. Default true.
	AccessLog *bool `yaml:"access_log"`
}

// Engine tunes the token engine.
type Engine struct {
	// FetchTimeout bounds one token request. Default 30s.
	FetchTimeout Duration `yaml:"fetch_timeout"`
	// MaxActive bounds the number of tenants whose engines are held in
	// memory. Default 10000.
	MaxActive int `yaml:"max_active"`
	// IdleRefresh is how long a connection's token may sit unused in the
	// store before a low-rate background sweep refreshes it, so that an
	// idle tenant's refresh token (on platforms whose refresh tokens expire
	// when unused) does not silently die. Default 24h.
	IdleRefresh Duration `yaml:"idle_refresh"`
}

// Upstream tunes the outbound transport.
type Upstream struct {
	// DialTimeout bounds a TCP connect. Default 10s.
	DialTimeout Duration `yaml:"dial_timeout"`
	// TLSHandshakeTimeout bounds a TLS handshake. Default 10s.
	TLSHandshakeTimeout Duration `yaml:"tls_handshake_timeout"`
	// ResponseHeaderTimeout bounds the wait for response headers. Default 60s.
	ResponseHeaderTimeout Duration `yaml:"response_header_timeout"`
	// IdleConnTimeout closes idle keep-alive connections. Default 90s.
	IdleConnTimeout Duration `yaml:"idle_conn_timeout"`
	// MaxIdleConnsPerHost sizes each upstream's keep-alive pool. Default 256.
	MaxIdleConnsPerHost int `yaml:"max_idle_conns_per_host"`
	// MaxReplayBody is the largest request body buffered so that a request
	// can be replayed after a 401. Default 1 MiB; 0 after defaults never
	// happens, a negative value disables replay of bodies.
	MaxReplayBody int64 `yaml:"max_replay_body"`
}

// Tenant is one API account sidekey holds a token for.
type Tenant struct {
	// Provider is istores, storehippo, simplestore, scayle, oauth2 or static.
	Provider string `yaml:"provider"`
	// App names the app (under apps) whose settings this tenant inherits;
	// the tenant's own settings win. Empty: none.
	App string `yaml:"app"`

	// ClientID is the OAuth client id.
	ClientID string `yaml:"client_id"`
	// ClientSecret is the OAuth client secret.
	ClientSecret Secret `yaml:"client_secret"`
	// ClientSecretFile is read into ClientSecret.
	ClientSecretFile string `yaml:"client_secret_file"`
	// ClientAuth is how the oauth2 provider authenticates the client:
	// "header" (HTTP Basic), "body" (form fields) or "" (auto-detect).
	ClientAuth string `yaml:"client_auth"`
	// Scopes requested. Joined as each platform wants.
	Scopes []string `yaml:"scopes"`
	// TokenParams are extra token request parameters (audience, resource…).
	TokenParams map[string]string `yaml:"token_params"`
	// Grant is the oauth2 provider's grant: client_credentials (default),
	// refresh_token or authorization_code (which needs auth_url).
	Grant string `yaml:"grant"`
	// RefreshToken seeds the refresh_token grant.
	RefreshToken Secret `yaml:"refresh_token"`
	// RefreshTokenFile is read into RefreshToken.
	RefreshTokenFile string `yaml:"refresh_token_file"`

	// Token is the fixed key of a static tenant.
	Token Secret `yaml:"token"`
	// TokenFile is read into Token.
	TokenFile string `yaml:"token_file"`

	// Store is the StoreHippo store name ({store}.storehippo.com).
	Store string `yaml:"store"`
	// TenantSpace is the SCAYLE tenant space ({tenant_space}.auth.scayle.cloud).
	TenantSpace string `yaml:"tenant_space"`
	// ShopID is the SCAYLE shop id (sent as X-Shop-Id).
	ShopID string `yaml:"shop_id"`
	// IdpKey is the SCAYLE identity provider key.
	IdpKey string `yaml:"idp_key"`
	// ShopSecret signs the SCAYLE consent JWT.
	ShopSecret Secret `yaml:"shop_secret"`
	// ShopSecretFile is read into ShopSecret.
	ShopSecretFile string `yaml:"shop_secret_file"`

	// AuthURL overrides the provider's consent URL.
	AuthURL string `yaml:"auth_url"`
	// TokenURL overrides the provider's token endpoint.
	TokenURL string `yaml:"token_url"`
	// APIURL overrides the provider's API base; proxied paths are appended.
	APIURL string `yaml:"api_url"`
	// TokenHeader is the header the token goes into. Default Authorization.
	TokenHeader string `yaml:"token_header"`
	// TokenFormat is the header value; {token} is replaced by the token.
	// Default "Bearer {token}" (for Authorization), "{token}" otherwise.
	TokenFormat string `yaml:"token_format"`
	// Headers are static headers added to every proxied request.
	Headers map[string]string `yaml:"headers"`
	// AllowUpgrade lets callers open Upgrade tunnels (WebSocket) to the
	// tenant's API. Default false: a request carrying Upgrade is refused,
	// since the tunnel's later traffic escapes sidekey's path checks.
	AllowUpgrade bool `yaml:"allow_upgrade"`
	// RateLimit paces requests to the tenant's API. Nil: the platform's
	// documented limit (2 req/s for istores and storehippo), none for others.
	RateLimit *RateLimit `yaml:"rate_limit"`
	// RefreshBefore starts a refresh this long before expiry. Zero: once half
	// the token's lifetime has passed.
	RefreshBefore Duration `yaml:"refresh_before"`
	// Listen gives the tenant a listener of its own ("127.0.0.1:9001")
	// where every path goes to this tenant, with no /{tenant} prefix, for
	// clients that take a host but no path prefix. Empty: none.
	Listen string `yaml:"listen"`
	// TLS is "local" to serve Listen over HTTPS with a certificate from the
	// local CA, or "off" (default: plain HTTP).
	TLS string `yaml:"tls"`
	// InterceptHosts are host names (such as api.simplestore.io) that the
	// forward proxy answers as this tenant: an app using it as HTTPS_PROXY
	// reaches this tenant's api_url when it calls https://{host}/…
	InterceptHosts []string `yaml:"intercept_hosts"`
	// RefreshTokenLifetime is how long a consent's refresh token lives, for
	// platforms that set it per client without saying so in their answers
	// (SCAYLE). Counted from the consent; a rotated refresh token keeps the
	// expiry. Zero: unknown, unless the platform states it.
	RefreshTokenLifetime Duration `yaml:"refresh_token_lifetime"`

	// Sessions makes the tenant hold one token per customer login instead
	// of one per tenant (config/sessions.go). Nil: no sessions.
	Sessions *Sessions `yaml:"sessions"`
}

// RateLimit is a token bucket for one tenant's outbound requests.
type RateLimit struct {
	// RPS is the sustained rate, requests per second. 0: unlimited.
	RPS float64 `yaml:"rps"`
	// Burst is the bucket size. Default max(1, ceil(rps)).
	Burst int `yaml:"burst"`
	// MaxWait is the longest a request queues for its turn before sidekey
	// answers 429 rate_limited. Default 10s.
	MaxWait Duration `yaml:"max_wait"`
}

// Duration is a time.Duration that reads from YAML as "90s", "15m" or a
// number of seconds.
type Duration time.Duration

// Secret is a string that never prints: fmt, zap and encoding/json all show
// "[redacted]". Use string(s) to get the value where it is really needed.
type Secret string

// Problem is one thing wrong with a configuration, named by its key path
// ("tenants.acme.client_id").
type Problem struct {
	Key     string // dotted key path, e.g. tenants.acme.client_id
	Message string // what is wrong, e.g. "required"
}

// Error formats the problem as "key: message".
func (p Problem) Error() string { return p.Key + ": " + p.Message }

// Problems is every problem found in a configuration. As an error it prints
// one problem per line.
type Problems []Problem

// Error prints one "key: message" line per problem.
func (ps Problems) Error() string {
	var b []byte
	for i, p := range ps {
		if i > 0 {
			b = append(b, '\n')
		}
		b = append(b, p.Error()...)
	}
	return string(b)
}

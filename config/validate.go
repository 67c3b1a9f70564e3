package config

import (
	"fmt"
	"maps"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Validate checks the configuration and returns every problem as Problems
// sorted by key, or nil when it is fine. It expects defaults to be filled
// (Parse does that; call SetDefaults on a Config built in code). No
// message contains a secret's value.
func (c *Config) Validate() error {
	var ps Problems
	c.validateServer(&ps)
	c.validateTLS(&ps)
	c.validateStorage(&ps)
	c.validateTuning(&ps)
	c.validateCallers(&ps)
	c.validateCallerKeyHeader(&ps)
	c.validateApps(&ps)
	c.validateListeners(&ps)
	c.validateNotify(&ps)
	for _, name := range slices.Sorted(maps.Keys(c.Tenants)) {
		t := c.Tenants[name]
		if t != nil && t.App != "" && c.Apps[t.App] == nil {
			ps.addf("tenants."+name+".app", "unknown app %q", t.App)
			continue
		}
		validateTenant(&ps, name, t)
	}
	return ps.err()
}

// validateServer checks listen, public_url, the caller requirement off
// loopback and logging.
func (c *Config) validateServer(ps *Problems) {
	listenOK := true
	if msg := checkHostPort(c.Listen, true); msg != "" {
		ps.add("listen", msg)
		listenOK = false
	}
	if listenOK && !IsLoopback(c.Listen) && len(c.Callers) == 0 && !c.AllowUnauthenticated {
		ps.add("listen", "not a loopback address: configure callers (with keys) or set allow_unauthenticated: true")
	}
	// A public_url derived from a broken listen is not a second problem.
	derived := c.PublicURL == strings.TrimRight(defaultPublicURL(c.Listen), "/")
	switch {
	case c.PublicURL == "" && listenOK:
		ps.add("public_url", "required")
	case c.PublicURL != "" && (listenOK || !derived):
		if msg := checkURL(c.PublicURL, false); msg != "" {
			ps.add("public_url", msg)
		}
	}
	for i, h := range c.AllowedHosts {
		if msg := checkAllowedHost(h); msg != "" {
			ps.add(fmt.Sprintf("allowed_hosts[%d]", i), msg)
		}
	}
	oneOf(ps, "log.level", c.Log.Level, "debug", "info", "warn", "error")
	oneOf(ps, "log.format", c.Log.Format, "json", "console")
}

// validateStorage checks the token store settings.
func (c *Config) validateStorage(ps *Problems) {
	s := c.Storage
	if !oneOf(ps, "storage.type", s.Type, "file", "memory", "redis") {
		return
	}
	switch s.Type {
	case "file":
		if s.Path == "" {
			ps.add("storage.path", "required for storage type file")
		}
	case "redis":
		s.Redis.validateRedis(ps)
		if s.KeyFile == "" {
			ps.add("storage.key_file", "required for storage type redis: every replica must seal values with the same key, from a shared secret")
		}
	}
}

// validateTuning checks timeouts and limits.
func (c *Config) validateTuning(ps *Problems) {
	positive := []struct {
		key string
		d   Duration
	}{
		{"engine.fetch_timeout", c.Engine.FetchTimeout},
		{"upstream.dial_timeout", c.Upstream.DialTimeout},
		{"upstream.tls_handshake_timeout", c.Upstream.TLSHandshakeTimeout},
		{"upstream.response_header_timeout", c.Upstream.ResponseHeaderTimeout},
		{"upstream.idle_conn_timeout", c.Upstream.IdleConnTimeout},
		{"engine.idle_refresh", c.Engine.IdleRefresh},
		{"shutdown_timeout", c.ShutdownTimeout},
	}
	for _, p := range positive {
		if p.d <= 0 {
			ps.add(p.key, "must be positive")
		}
	}
	if c.DrainDelay < 0 {
		ps.add("drain_delay", "must not be negative")
	}
	if c.Engine.MaxActive <= 0 {
		ps.add("engine.max_active", "must be positive")
	}
	if c.Upstream.MaxIdleConnsPerHost <= 0 {
		ps.add("upstream.max_idle_conns_per_host", "must be positive")
	}
}

// IsLoopback reports whether listen ("host:port", or a bare host) is a
// loopback address: 127.0.0.0/8, ::1 or localhost. An empty host (all
// interfaces) is not loopback.
func IsLoopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		host = strings.TrimSuffix(strings.TrimPrefix(listen, "["), "]")
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	addr, err := netip.ParseAddr(host)
	return err == nil && addr.Unmap().IsLoopback()
}

// checkHostPort returns what is wrong with addr as a "host:port" address,
// or "". Port 0 (any free port) is allowed for listeners only.
func checkHostPort(addr string, listener bool) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "must be host:port, such as 127.0.0.1:8080"
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 && !listener {
		return "port must be a number from 1 to 65535"
	}
	if host != "" && !validHost(host) {
		return "invalid host: want an ip address or a dns name"
	}
	return ""
}

// checkAllowedHost returns what is wrong with h as an allowed_hosts entry,
// or "": a bare host name or IP address, without scheme, port, path or a
// trailing dot (a Host ending in "." is always refused).
func checkAllowedHost(h string) string {
	switch {
	case strings.Contains(h, "://"):
		return fmt.Sprintf("%q: want a host name without scheme, such as sidekey.shop.svc", h)
	case strings.ContainsAny(h, "/?#@"):
		return fmt.Sprintf("%q: want a host name without path, such as sidekey.shop.svc", h)
	case strings.HasSuffix(h, "."):
		return fmt.Sprintf("%q: drop the trailing dot", h)
	}
	if _, _, err := net.SplitHostPort(h); err == nil || strings.HasPrefix(h, "[") {
		return fmt.Sprintf("%q: want a host name without port (any port is allowed)", h)
	}
	if !validHost(h) {
		return fmt.Sprintf("%q: not a valid host name or ip address", h)
	}
	return ""
}

// validHost reports whether host is an IP address or a DNS name
// (underscores allowed, as in docker compose service names).
func validHost(host string) bool {
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	host = strings.TrimSuffix(host, ".")
	if host == "" || len(host) > 253 {
		return false
	}
	for label := range strings.SplitSeq(host, ".") {
		if !isLabel(strings.ReplaceAll(label, "_", "-")) {
			return false
		}
	}
	return true
}

// isLabel reports whether s is a DNS label: 1-63 letters, digits or '-',
// neither starting nor ending with '-'.
func isLabel(s string) bool {
	if s == "" || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// checkURL returns what is wrong with s as an absolute http(s) URL, or "".
// Credentials in the URL are refused (URLs get logged); so is a fragment,
// and a query unless allowQuery.
func checkURL(s string, allowQuery bool) string {
	const want = "must be an absolute http or https url"
	u, err := url.Parse(s)
	switch {
	case err != nil, u.Scheme != "http" && u.Scheme != "https", u.Host == "", u.Hostname() == "":
		return want
	case u.User != nil:
		return "must not contain credentials"
	case !allowQuery && (u.RawQuery != "" || u.ForceQuery):
		return "must not have a query"
	case u.Fragment != "" || strings.Contains(s, "#"):
		return "must not have a fragment"
	case u.Port() != "":
		if _, err := strconv.ParseUint(u.Port(), 10, 16); err != nil {
			return "port must be a number up to 65535"
		}
	}
	return ""
}

// oneOf records a problem unless v is one of allowed, and reports whether
// it is. An allowed "" (unset) is not listed in the message.
func oneOf(ps *Problems, key, v string, allowed ...string) bool {
	if slices.Contains(allowed, v) {
		return true
	}
	shown := slices.DeleteFunc(slices.Clone(allowed), func(a string) bool { return a == "" })
	ps.add(key, fmt.Sprintf("must be one of %s; got %q", strings.Join(shown, ", "), v))
	return false
}

// isSHA256Hex reports whether s is 64 hex digits.
func isSHA256Hex(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// hasControl reports whether s holds a control character other than tab
// (CR, LF and NUL above all: they split or end HTTP headers).
func hasControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool {
		return r < 0x20 && r != '\t' || r == 0x7f
	})
}

// validateTLS checks the tls section for its mode.
func (c *Config) validateTLS(ps *Problems) {
	t := &c.TLS
	switch t.Mode {
	case "", "off":
	case "files":
		if t.CertFile == "" {
			ps.add("tls.cert_file", "required with tls.mode files")
		}
		if t.KeyFile == "" {
			ps.add("tls.key_file", "required with tls.mode files")
		}
	case "acme":
		if len(t.Domains) == 0 {
			ps.add("tls.domains", "required with tls.mode acme")
		}
		for i, d := range t.Domains {
			if d == "" || strings.ContainsAny(d, "/:@ \t") {
				ps.addf(fmt.Sprintf("tls.domains[%d]", i), "not a domain name: %q", d)
			}
		}
		if t.CA != "" {
			if msg := checkURL(t.CA, false); msg != "" {
				ps.add("tls.ca", msg)
			}
		}
		if t.Email == "" {
			ps.add("tls.email", "required with tls.mode acme (the CA's contact for the account)")
		}
		if t.HTTPChallengePort < 0 || t.HTTPChallengePort > 65535 {
			ps.add("tls.http_challenge_port", "must be a port number")
		}
	default:
		ps.addf("tls.mode", "unknown mode %q: want off, files or acme", t.Mode)
	}
	if t.ClientCAFile != "" && t.Mode != "files" && t.Mode != "acme" {
		ps.add("tls.client_ca_file", "needs tls.mode files or acme: client certificates are asked for in the TLS handshake")
	}
}

// validateApps checks each app block: a name like a tenant's and a
// provider set. The provider's name and requirements are package
// providers' to check (providers.CheckApp, and providers.Check on the
// tenants and connections using the app).
func (c *Config) validateApps(ps *Problems) {
	for _, name := range slices.Sorted(maps.Keys(c.Apps)) {
		a := c.Apps[name]
		key := "apps." + name
		switch {
		case !ValidTenantName(name):
			ps.add(key, "app names must match [a-z0-9][a-z0-9._-]*")
		case c.Tenants[name] != nil:
			ps.add(key, "an app and a tenant cannot share a name (both use /_sidekey/oauth/connect/"+name+")")
		case a == nil:
			ps.add(key, "empty app")
		case a.App != "":
			ps.add(key+".app", "an app cannot name another app")
		}
	}
}

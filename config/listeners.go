package config

import (
	"maps"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// ForwardProxy configures the HTTPS_PROXY listener for legacy apps: an app
// whose HTTPS_PROXY points here and that calls https://{host}/… for a host
// in some tenant's intercept_hosts gets a TLS session with a certificate
// from the local CA, and its requests go to that tenant with the token
// injected. Every other host is refused.
type ForwardProxy struct {
	// Listen is the proxy's address, e.g. "127.0.0.1:3128". Required. Off
	// loopback, callers authenticate with Proxy-Authorization.
	Listen string `yaml:"listen"`
}

// LocalCA names a CA certificate and key in PEM files (e.g. a cert-manager
// Secret) that issue the certificates of tls: local listeners and of the
// forward proxy. Both or neither: when neither is set, sidekey generates a
// CA on first use and keeps it sealed in the token store, shared by every
// replica.
type LocalCA struct {
	// CertFile is the CA certificate (PEM).
	CertFile string `yaml:"cert_file"`
	// KeyFile is the CA's private key (PEM: PKCS#8, PKCS#1 or SEC 1).
	KeyFile string `yaml:"key_file"`
}

// TLSLocal is the tenant tls value that serves its listener with a
// certificate from the local CA.
const TLSLocal = "local"

// NeedsLocalCA reports whether some listener serves certificates from the
// local CA: a tls: local tenant listener or the forward proxy.
func (c *Config) NeedsLocalCA() bool {
	if c.ForwardProxy != nil {
		return true
	}
	for _, t := range c.Tenants {
		if t != nil && t.TLS == TLSLocal {
			return true
		}
	}
	return false
}

// validateListeners checks the tenant listeners, the forward proxy, the
// intercepted hosts and the local CA: every address valid and used by one
// listener only, callers off loopback, every host claimed by one tenant,
// and a CA that apps can be given to trust.
func (c *Config) validateListeners(ps *Problems) {
	owners := map[string]string{} // listen address → key of the listener using it
	claim := func(key, addr string) {
		for other, otherKey := range owners {
			if sameListener(addr, other) {
				ps.addf(key, "%s is already used by %s", addr, otherKey)
				return
			}
		}
		owners[addr] = key
	}
	if checkHostPort(c.Listen, true) == "" {
		owners[c.Listen] = "listen"
	}
	open := len(c.Callers) == 0 && !c.AllowUnauthenticated
	hosts := map[string]string{} // intercepted host → tenant claiming it
	for _, name := range slices.Sorted(maps.Keys(c.Tenants)) {
		t := c.Tenants[name]
		if t == nil {
			continue
		}
		key := "tenants." + name
		if t.Listen != "" {
			if msg := checkHostPort(t.Listen, true); msg != "" {
				ps.add(key+".listen", msg)
			} else {
				claim(key+".listen", t.Listen)
				if open && !IsLoopback(t.Listen) {
					ps.add(key+".listen", "not a loopback address: configure callers (with keys) or set allow_unauthenticated: true")
				}
			}
		}
		if oneOf(ps, key+".tls", t.TLS, "", "off", TLSLocal) && t.TLS == TLSLocal && t.Listen == "" {
			ps.add(key+".tls", "tls: local needs tenants."+name+".listen, the listener it secures")
		}
		for i, h := range t.InterceptHosts {
			hkey := key + ".intercept_hosts[" + strconv.Itoa(i) + "]"
			host := InterceptHost(h)
			switch {
			case !isInterceptHost(host):
				ps.addf(hkey, "%q is not a host name: want a dns name such as api.simplestore.io (no scheme, port, path, wildcard or ip address)", h)
			case hosts[host] != "":
				ps.addf(hkey, "%s is already intercepted by tenants.%s: a host goes to one tenant", host, hosts[host])
			default:
				hosts[host] = name
			}
		}
		if len(t.InterceptHosts) > 0 && c.ForwardProxy == nil {
			ps.add(key+".intercept_hosts", "needs forward_proxy.listen: hosts are intercepted by the forward proxy")
		}
	}
	if fp := c.ForwardProxy; fp != nil {
		switch msg := checkHostPort(fp.Listen, true); {
		case fp.Listen == "":
			ps.add("forward_proxy.listen", "required")
		case msg != "":
			ps.add("forward_proxy.listen", msg)
		default:
			claim("forward_proxy.listen", fp.Listen)
			if open && !IsLoopback(fp.Listen) {
				ps.add("forward_proxy.listen", "not a loopback address: configure callers (with keys, presented as Proxy-Authorization) or set allow_unauthenticated: true")
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(c.Apps)) {
		if a := c.Apps[name]; a != nil && (a.Listen != "" || a.TLS != "" || len(a.InterceptHosts) > 0) {
			ps.add("apps."+name, "listen, tls and intercept_hosts belong to a tenant, not an app")
		}
	}
	c.validateLocalCA(ps)
}

// validateLocalCA checks local_ca, and that a CA needed by some listener
// has somewhere to live that `sidekey ca` can read it from.
func (c *Config) validateLocalCA(ps *Problems) {
	ca := c.LocalCA
	switch {
	case ca.CertFile != "" && ca.KeyFile == "":
		ps.add("local_ca.key_file", "required with local_ca.cert_file")
	case ca.CertFile == "" && ca.KeyFile != "":
		ps.add("local_ca.cert_file", "required with local_ca.key_file")
	}
	if ca.CertFile != "" || !c.NeedsLocalCA() || c.Storage.Type != "memory" {
		return
	}
	key := "forward_proxy"
	if c.ForwardProxy == nil {
		for _, name := range slices.Sorted(maps.Keys(c.Tenants)) {
			if t := c.Tenants[name]; t != nil && t.TLS == TLSLocal {
				key = "tenants." + name + ".tls"
				break
			}
		}
	}
	ps.add(key, "needs a local CA that apps can trust, and storage type memory cannot keep one "+
		"(a generated CA would change on every start, and `sidekey ca` could not read it): "+
		"set local_ca.cert_file and local_ca.key_file, or use storage type file or redis")
}

// sameListener reports whether two valid listen addresses would take the
// same socket: the same port on the same host, or on a wildcard host (""
// or an unspecified address) that covers the other. Port 0 (any free port)
// never collides.
func sameListener(a, b string) bool {
	ha, pa, _ := net.SplitHostPort(a)
	hb, pb, _ := net.SplitHostPort(b)
	if pa != pb || pa == "0" {
		return false
	}
	return unspecified(ha) || unspecified(hb) || strings.EqualFold(ha, hb)
}

// unspecified reports whether a listen host means every address.
func unspecified(host string) bool {
	if host == "" {
		return true
	}
	addr, err := netip.ParseAddr(host)
	return err == nil && addr.IsUnspecified()
}

// isInterceptHost reports whether host (lower case, without a trailing dot)
// can be intercepted: a DNS name of at least two labels, never an IP
// address (the forward proxy refuses CONNECTs to addresses).
func isInterceptHost(host string) bool {
	if _, err := netip.ParseAddr(host); err == nil || !strings.Contains(host, ".") || len(host) > 253 {
		return false
	}
	for label := range strings.SplitSeq(host, ".") {
		if !isLabel(label) {
			return false
		}
	}
	return true
}

// InterceptHost normalises a host name as intercept_hosts and the forward
// proxy compare it: lower case, without a trailing dot.
func InterceptHost(host string) string {
	return strings.ToLower(strings.TrimSuffix(host, "."))
}

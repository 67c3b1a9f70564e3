package server

import (
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"path"
	"strings"

	"github.com/sidekey/sidekey/proxy"
)

// GuardOptions describes the listener a Guard protects.
type GuardOptions struct {
	// Loopback is true when the listener is a loopback address: then only
	// loopback Host names, PublicURL's host and AllowedHosts are served
	// (DNS rebinding). Off loopback every Host is served: callers
	// authenticate there, and a pod IP or service name is the normal Host.
	Loopback bool
	// PublicURL is sidekey's public_url. Its host is always allowed and its
	// origin is sidekey's own. Nil: none.
	PublicURL *url.URL
	// AllowedHosts are further Host names served on loopback (exact, any
	// port, case-insensitive): the config's allowed_hosts.
	AllowedHosts []string
}

// Guard returns middleware that keeps a web page the operator happens to
// visit from driving sidekey (DESIGN invariant 8), in front of every route
// of a listener, /_sidekey/ ones included:
//
//   - On a loopback listener, a request whose Host is not a loopback name
//     (127.0.0.0/8, ::1, localhost, *.localhost), PublicURL's host or one
//     of AllowedHosts is answered 421 host_not_allowed. A missing or empty
//     Host, a non-loopback IP literal, an IPv6 zone and a trailing dot are
//     refused too. Health probes are not exempt: one that reaches a
//     loopback listener comes from the same host, with a loopback Host.
//   - On every listener, a request a browser marks cross-site —
//     Sec-Fetch-Site cross-site or same-site, or an Origin (null included)
//     other than sidekey's own — is answered 403 cross_site_refused, except
//     top-level GET or HEAD navigations of /_sidekey/oauth/connect/…,
//     /_sidekey/oauth/callback and /_sidekey/login/…, which a consent or
//     login flow reaches from the platform's pages. Sidekey's own origin is
//     the request's scheme and Host (when the Host is served) or
//     PublicURL's origin. Programs, which send none of these headers, are
//     unaffected.
//
// The returned function may wrap any number of handlers; they are safe for
// concurrent use.
func Guard(opts GuardOptions) func(http.Handler) http.Handler {
	g := &guard{loopback: opts.Loopback, hosts: make(map[string]bool)}
	for _, h := range opts.AllowedHosts {
		if addr, err := netip.ParseAddr(h); err == nil {
			h = addr.String() // the form hostAllowed compares IP literals in
		}
		g.hosts[strings.ToLower(h)] = true
	}
	if u := opts.PublicURL; u != nil && u.Host != "" {
		g.hosts[strings.ToLower(u.Hostname())] = true
		g.publicOrigin = origin(u.Scheme, u.Host)
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if g.loopback && !g.hostAllowed(r.Host) {
				proxy.WriteError(w, http.StatusMisdirectedRequest, proxy.CodeHostNotAllowed, "",
					"this loopback listener does not answer to that Host; add it to allowed_hosts if it is yours", 0)
				return
			}
			if g.crossSite(r) && !topLevelFlowNavigation(r) {
				proxy.WriteError(w, http.StatusForbidden, proxy.CodeCrossSiteRefused, "",
					"the browser marked this request as coming from another site", 0)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// guard is Guard's compiled options.
type guard struct {
	loopback     bool
	hosts        map[string]bool // lower-case names served besides loopback ones
	publicOrigin string          // public_url's origin; "" when none
}

// hostAllowed reports whether a loopback listener serves hostport (a Host
// header value, port optional).
func (g *guard) hostAllowed(hostport string) bool {
	host := hostport
	if h, port, err := net.SplitHostPort(hostport); err == nil {
		if port == "" && strings.HasSuffix(hostport, ":") {
			return false // "localhost:" is no port
		}
		host = h
	} else if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	}
	if host == "" || strings.HasSuffix(host, ".") {
		return false
	}
	if addr, err := netip.ParseAddr(host); err == nil {
		return addr.Zone() == "" && addr.Unmap().IsLoopback() || g.hosts[addr.String()]
	}
	host = strings.ToLower(host)
	return host == "localhost" || strings.HasSuffix(host, ".localhost") || g.hosts[host]
}

// crossSite reports whether a browser marked r as sent by another site.
func (g *guard) crossSite(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "cross-site", "same-site":
		return true
	}
	o, ok := r.Header["Origin"]
	if !ok {
		return false
	}
	if len(o) != 1 {
		return true
	}
	return !g.ownOrigin(r, o[0])
}

// ownOrigin reports whether the Origin value o is sidekey's own for r: the
// request's scheme and Host (when the listener serves that Host), or
// public_url's origin.
func (g *guard) ownOrigin(r *http.Request, o string) bool {
	u, err := url.Parse(o)
	if err != nil || u.Scheme == "" || u.Host == "" || u.Path != "" || u.User != nil || u.RawQuery != "" {
		return false // "null" and anything that is not scheme://host[:port]
	}
	got := origin(u.Scheme, u.Host)
	if g.publicOrigin != "" && got == g.publicOrigin {
		return true
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return r.Host != "" && got == origin(scheme, r.Host)
}

// origin is the canonical form of an origin: lower case, default port
// dropped.
func origin(scheme, hostport string) string {
	scheme, hostport = strings.ToLower(scheme), strings.ToLower(hostport)
	if h, port, err := net.SplitHostPort(hostport); err == nil &&
		(scheme == "http" && port == "80" || scheme == "https" && port == "443") {
		hostport = h
		if strings.Contains(h, ":") {
			hostport = "[" + h + "]"
		}
	}
	return scheme + "://" + hostport
}

// topLevelFlowNavigation reports whether r is a browser's top-level GET or
// HEAD navigation to a route that consent and login flows reach from the
// platform's pages: /_sidekey/oauth/connect/…, /_sidekey/oauth/callback
// and /_sidekey/login/….
func topLevelFlowNavigation(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	if r.Header.Get("Sec-Fetch-Mode") != "navigate" {
		return false
	}
	if d, ok := r.Header["Sec-Fetch-Dest"]; ok && (len(d) != 1 || d[0] != "document") {
		return false // a frame, not the top level
	}
	p := r.URL.Path
	if path.Clean(p) != p {
		return false
	}
	return p == "/_sidekey/oauth/callback" ||
		strings.HasPrefix(p, "/_sidekey/oauth/connect/") ||
		strings.HasPrefix(p, "/_sidekey/login/")
}

package config

import (
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Sessions turns a consent tenant into a per-customer token handler: each
// customer logs in through GET /_sidekey/login/{tenant}, and the app sends
// the customer's opaque session handle in Sidekey-Session; the tenant's own
// single token is never used (DESIGN.md, "Per-customer sessions").
type Sessions struct {
	// ReturnTo lists the URL prefixes a login may send the browser back
	// to. Each is an absolute https URL (http only on a loopback host)
	// without query, fragment or credentials. A target matches a prefix
	// when scheme and host (with port) are equal and its path is the
	// prefix's path or lies below it at a segment boundary:
	// https://shop.example/account admits https://shop.example/account/x
	// but neither https://shop.example/accountX nor
	// https://shop.example.evil/account. Required, at least one.
	ReturnTo []string `yaml:"return_to"`
	// IdleTTL ends a session nobody used for this long. Zero: 30 days.
	IdleTTL Duration `yaml:"idle_ttl"`
	// MaxActive bounds the sessions of this tenant whose token engines are
	// held in memory; the others wait in the store. Zero: 10000.
	MaxActive int `yaml:"max_active"`
}

// Session defaults.
const (
	defaultSessionIdleTTL   = 30 * 24 * time.Hour
	defaultSessionMaxActive = 10000
	// maxReturnTo is the longest return_to URL accepted, in bytes.
	maxReturnTo = 2048
)

// Idle is IdleTTL with its default applied.
func (s *Sessions) Idle() time.Duration {
	if s.IdleTTL > 0 {
		return time.Duration(s.IdleTTL)
	}
	return defaultSessionIdleTTL
}

// ActiveBound is MaxActive with its default applied.
func (s *Sessions) ActiveBound() int {
	if s.MaxActive > 0 {
		return s.MaxActive
	}
	return defaultSessionMaxActive
}

// validateSessions checks a tenant's sessions block, keyed under
// key.sessions.
func validateSessions(ps *Problems, key string, s *Sessions) {
	if s == nil {
		return
	}
	key += ".sessions"
	if len(s.ReturnTo) == 0 {
		ps.add(key+".return_to", "required: at least one allowed URL prefix")
	}
	for i, p := range s.ReturnTo {
		if msg := checkReturnPrefix(p); msg != "" {
			ps.add(key+".return_to["+strconv.Itoa(i)+"]", msg)
		}
	}
	if s.IdleTTL < 0 {
		ps.add(key+".idle_ttl", "must not be negative")
	}
	if s.MaxActive < 0 {
		ps.add(key+".max_active", "must not be negative")
	}
}

// checkReturnPrefix returns what is wrong with p as a return_to prefix.
func checkReturnPrefix(p string) string {
	u, msg := parseReturnURL(p)
	switch {
	case msg != "":
		return msg
	case u.RawQuery != "" || u.ForceQuery:
		return "must not have a query"
	}
	return ""
}

// parseReturnURL parses s as an absolute URL a browser may be sent to: no
// control characters, spaces, backslashes or non-ASCII bytes, http(s) with
// a host and no credentials or fragment, https unless the host is
// loopback, and a path without dot segments or encoded dots, slashes and
// backslashes (which browsers and servers read differently).
func parseReturnURL(s string) (*url.URL, string) {
	if len(s) > maxReturnTo {
		return nil, "must be at most " + strconv.Itoa(maxReturnTo) + " bytes"
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '\\' {
			return nil, "must not contain spaces, control characters, backslashes or non-ASCII characters"
		}
	}
	u, err := url.Parse(s)
	switch {
	case err != nil || u.Opaque != "" || u.Host == "" || u.Hostname() == "":
		return nil, "must be an absolute https url"
	case u.Scheme != "https" && !(u.Scheme == "http" && loopbackHost(u.Hostname())):
		return nil, "must be https (http only on a loopback host)"
	case u.User != nil:
		return nil, "must not contain credentials"
	case u.Fragment != "" || strings.Contains(s, "#"):
		return nil, "must not have a fragment"
	}
	path := strings.ToLower(u.EscapedPath())
	for _, bad := range []string{"%2e", "%2f", "%5c"} {
		if strings.Contains(path, bad) {
			return nil, "must not encode '.', '/' or '\\' in its path"
		}
	}
	for _, seg := range strings.Split(path, "/") {
		if seg == "." || seg == ".." {
			return nil, "must not have '.' or '..' path segments"
		}
	}
	return u, ""
}

// loopbackHost reports whether host names this machine.
func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	addr, err := netip.ParseAddr(host)
	return err == nil && addr.Unmap().IsLoopback()
}

// ReturnAllowed reports whether a login may send the browser to target:
// it is a well-formed URL (see parseReturnURL) under one of ReturnTo (same
// scheme, same host and port, path equal to the prefix's or below it at a
// segment boundary). A nil Sessions allows nothing.
func (s *Sessions) ReturnAllowed(target string) bool {
	if s == nil {
		return false
	}
	u, msg := parseReturnURL(target)
	if msg != "" {
		return false
	}
	path := u.EscapedPath()
	for _, p := range s.ReturnTo {
		pu, msg := parseReturnURL(p)
		if msg != "" || pu.Scheme != u.Scheme || !strings.EqualFold(pu.Host, u.Host) {
			continue
		}
		if pathUnder(path, pu.EscapedPath()) {
			return true
		}
	}
	return false
}

// pathUnder reports whether path is prefix or lies below it at a segment
// boundary.
func pathUnder(path, prefix string) bool {
	switch {
	case prefix == "" || prefix == "/" || path == prefix:
		return true
	case strings.HasSuffix(prefix, "/"):
		return strings.HasPrefix(path, prefix)
	default:
		return strings.HasPrefix(path, prefix+"/")
	}
}

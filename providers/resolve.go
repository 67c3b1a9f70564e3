package providers

import (
	"fmt"
	"maps"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/sidekey/sidekey/config"
)

// resolved is a tenant with its provider's defaults applied and every field
// checked.
type resolved struct {
	name     string
	t        *config.Tenant
	p        *platform
	tokenURL *url.URL // nil when the provider has no token endpoint
	authURL  *url.URL // nil unless the tenant is connected through consent
	apiURL   *url.URL
	inject   Injection
	headers  http.Header
}

// checker collects problems for one tenant under "tenants.<name>.".
type checker struct {
	prefix   string
	t        *config.Tenant
	problems []config.Problem
}

// add records a problem for the tenant's field key (a path below the
// tenant, e.g. "token_url" or "headers.X-Shop-Id").
func (c *checker) add(key, format string, args ...any) {
	c.problems = append(c.problems, config.Problem{Key: c.prefix + key, Message: fmt.Sprintf(format, args...)})
}

// required records "required" when value is empty.
func (c *checker) required(key, value string) {
	if value == "" {
		c.add(key, "required")
	}
}

// checkProviderName records the problem with a provider's name, if any:
// missing, or unknown (with the known name spelled most like it). It
// reports whether the name is known.
func (c *checker) checkProviderName(name string) bool {
	switch {
	case name == "":
		c.add("provider", "required (one of %s)", platformNames)
	case platformNamed(name) == nil:
		if best := config.Suggest(name, strings.Split(platformNames, ", ")); best != "" {
			c.add("provider", "unknown provider %q (did you mean %s?)", name, best)
		} else {
			c.add("provider", "unknown provider %q (want one of %s)", name, platformNames)
		}
	default:
		return true
	}
	return false
}

// resolve applies defaults to t and checks it. It returns the resolved
// tenant only when there are no problems.
func resolve(name string, t *config.Tenant) (*resolved, []config.Problem) {
	c := &checker{prefix: "tenants." + name + ".", t: t}
	if t == nil {
		return nil, []config.Problem{{Key: "tenants." + name, Message: "required"}}
	}
	if !c.checkProviderName(t.Provider) {
		return nil, c.problems
	}
	p := platformNamed(t.Provider)
	r := &resolved{name: name, t: t, p: p}
	r.apiURL = c.endpoint("api_url", t.APIURL, p.apiURL, true)
	if p.usesTokenURL {
		r.tokenURL = c.endpoint("token_url", t.TokenURL, p.tokenURL, false)
	}
	if p.consent != nil && p.consent(t) {
		r.authURL = c.endpoint("auth_url", t.AuthURL, p.authURL, false)
	} else if t.RefreshTokenLifetime > 0 {
		c.add("refresh_token_lifetime", "only for tenants connected by a consent (authorization code)")
	}
	if t.Sessions != nil && (p.consent == nil || !p.consent(t)) {
		c.add("sessions", "only for tenants whose customers log in through a consent flow (authorization code)")
	}
	r.inject = c.injection()
	r.headers = c.headers(r.inject.Header)
	if p.headers != nil {
		for name, value := range p.headers(t) {
			if r.headers.Get(name) == "" && value != "" {
				r.headers.Set(name, value)
			}
		}
	}
	if t.RefreshBefore < 0 {
		c.add("refresh_before", "must not be negative")
	}
	p.check(c)
	if len(c.problems) > 0 {
		return nil, c.problems
	}
	return r, nil
}

// endpoint parses the tenant's value for key, or def (expanded) when it is
// empty. An API base may not carry a query and loses its trailing slash, so
// that a proxied path can simply be appended.
func (c *checker) endpoint(key, value, def string, api bool) *url.URL {
	override := value != ""
	if !override {
		value = def
	}
	// Placeholders work in overrides too, so an app shared by many stores
	// can point every store at its own host.
	value, ok := c.expand(value)
	if !ok {
		if override { // a default's field is reported by the platform's check
			c.add(key, "needs the tenant's store or tenant_space (a DNS label) for its {store}/{tenant_space} placeholder")
		}
		return nil
	}
	if value == "" {
		c.add(key, "required")
		return nil
	}
	u, err := url.Parse(value)
	switch {
	case err != nil:
		// The parse error repeats the URL, which may hold credentials.
		c.add(key, "not a valid URL")
	case u.Scheme != "http" && u.Scheme != "https":
		c.add(key, "must be an http or https URL")
	case u.Hostname() == "":
		c.add(key, "must include a host")
	case u.Port() != "" && !validPort(u.Port()):
		c.add(key, "port must be a number up to 65535")
	case u.User != nil:
		c.add(key, "must not contain credentials")
	case u.Fragment != "" || strings.Contains(value, "#"):
		c.add(key, "must not have a fragment")
	case api && (u.RawQuery != "" || u.ForceQuery):
		c.add(key, "must not have a query (proxied requests bring their own)")
	default:
		if api {
			u.Path = strings.TrimRight(u.Path, "/")
			u.RawPath = strings.TrimRight(u.RawPath, "/")
		}
		return u
	}
	return nil
}

// expand fills {store} and {tenant_space} in an endpoint from the tenant,
// lower-cased. ok is false when a placeholder's field is not a DNS
// label; the platform's check reports that field.
func (c *checker) expand(def string) (string, bool) {
	for placeholder, value := range map[string]string{"{store}": c.t.Store, "{tenant_space}": c.t.TenantSpace} {
		if !strings.Contains(def, placeholder) {
			continue
		}
		if !dnsLabel(value) {
			return "", false
		}
		def = strings.ReplaceAll(def, placeholder, strings.ToLower(value))
	}
	return def, true
}

// label checks a field that becomes part of a host name: required, and a
// DNS label.
func (c *checker) label(key, value string) {
	switch {
	case value == "":
		c.add(key, "required")
	case !dnsLabel(value):
		c.add(key, "must be a DNS label (letters, digits and inner hyphens, at most 63 characters)")
	}
}

// validPort reports whether port is a decimal port number up to 65535.
func validPort(port string) bool {
	_, err := strconv.ParseUint(port, 10, 16)
	return err == nil
}

// dnsLabel reports whether s is an RFC 1123 host name label.
func dnsLabel(s string) bool {
	if s == "" || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '-') {
			return false
		}
	}
	return true
}

// injection resolves token_header and token_format: Authorization with
// "Bearer {token}" by default, "{token}" for any other header.
func (c *checker) injection() Injection {
	header := c.t.TokenHeader
	if header == "" {
		header = "Authorization"
	}
	if !validHeaderName(header) {
		c.add("token_header", "not a valid header name")
		return Injection{}
	}
	header = textproto.CanonicalMIMEHeaderKey(header)
	if reservedHeader(header) {
		c.add("token_header", "%s cannot carry a token", header)
		return Injection{}
	}
	format := c.t.TokenFormat
	if format == "" {
		format = "{token}"
		if header == "Authorization" {
			format = "Bearer {token}"
		}
	}
	prefix, suffix, found := strings.Cut(format, "{token}")
	switch {
	case !found:
		c.add("token_format", "must contain {token}")
	case strings.Contains(suffix, "{token}"):
		c.add("token_format", "must contain {token} only once")
	case !validHeaderValue(format):
		c.add("token_format", "must not contain control characters")
	default:
		return Injection{Header: header, Prefix: prefix, Suffix: suffix}
	}
	return Injection{}
}

// headers canonicalises the static headers and rejects those that would
// clash with the token header or with HTTP framing.
func (c *checker) headers(tokenHeader string) http.Header {
	h := make(http.Header, len(c.t.Headers))
	for _, name := range slices.Sorted(maps.Keys(c.t.Headers)) {
		key := "headers." + name
		if !validHeaderName(name) {
			c.add(key, "not a valid header name")
			continue
		}
		canon := textproto.CanonicalMIMEHeaderKey(name)
		switch {
		case reservedHeader(canon):
			c.add(key, "%s cannot be set as a static header", canon)
		case canon == tokenHeader:
			c.add(key, "conflicts with token_header (the token goes there)")
		case h.Get(canon) != "":
			c.add(key, "duplicate of another header with different case")
		case !validHeaderValue(c.t.Headers[name]):
			c.add(key, "must not contain control characters")
		default:
			h.Set(canon, c.t.Headers[name])
		}
	}
	return h
}

// clientAuth checks client_auth: "header", "body" or "" (provider default).
func (c *checker) clientAuth() {
	switch c.t.ClientAuth {
	case "", clientAuthHeader, clientAuthBody:
	default:
		c.add("client_auth", "must be header or body")
	}
}

// scopes checks every scope is an RFC 6749 scope-token.
func (c *checker) scopes() {
	for i, s := range c.t.Scopes {
		if s == "" || strings.ContainsFunc(s, func(r rune) bool {
			return r <= ' ' || r == '"' || r == '\\' || r >= 0x7f
		}) {
			c.add(fmt.Sprintf("scopes[%d]", i), "not a valid scope (printable ASCII without spaces, quotes or backslashes)")
		}
	}
}

// tokenParams rejects extra token parameters that would override what the
// provider sends itself.
func (c *checker) tokenParams(reserved ...string) {
	for _, name := range slices.Sorted(maps.Keys(c.t.TokenParams)) {
		switch {
		case name == "":
			c.add("token_params", "parameter names must not be empty")
		case slices.Contains(reserved, name):
			c.add("token_params."+name, "reserved; sidekey sets %s itself", name)
		}
	}
}

// reservedHeader reports headers that belong to HTTP framing, routing or
// the proxy's own hop and must not be set from configuration.
func reservedHeader(canon string) bool {
	switch canon {
	case "Host", "Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive",
		"Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Upgrade":
		return true
	}
	return false
}

// validHeaderName reports whether s is an RFC 9110 field name (a token).
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if b >= 0x80 || b <= ' ' || b == 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, b) >= 0 {
			return false
		}
	}
	return true
}

// validHeaderValue reports whether s can be sent as a field value: no
// control characters other than tab.
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if b := s[i]; (b < ' ' && b != '\t') || b == 0x7f {
			return false
		}
	}
	return true
}

package config

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// ValidTenantName reports whether name may name a tenant:
// [a-z0-9][a-z0-9._-]*. Names starting with "_" are reserved for sidekey's
// own routes (/_sidekey/...). The proxy calls it on every request, so it is
// a plain loop rather than a regexp.
func ValidTenantName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case i > 0 && (c == '.' || c == '_' || c == '-'):
		default:
			return false
		}
	}
	return true
}

// hopByHop are headers a tenant can neither inject a token into nor set:
// they belong to one connection, or the proxy itself sets them.
var hopByHop = []string{
	"connection", "keep-alive", "proxy-connection", "proxy-authenticate",
	"proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade",
	"host", "content-length",
}

// setting returns the value of the tenant setting named by its yaml key.
func (t *Tenant) setting(name string) string {
	switch name {
	case "client_id":
		return t.ClientID
	case "client_secret":
		return string(t.ClientSecret)
	case "refresh_token":
		return string(t.RefreshToken)
	case "token":
		return string(t.Token)
	case "shop_secret":
		return string(t.ShopSecret)
	case "store":
		return t.Store
	case "tenant_space":
		return t.TenantSpace
	case "shop_id":
		return t.ShopID
	case "idp_key":
		return t.IdpKey
	case "auth_url":
		return t.AuthURL
	case "token_url":
		return t.TokenURL
	case "api_url":
		return t.APIURL
	}
	panic("config: unknown tenant setting " + name)
}

// validateTenant checks what every tenant shares; problems are keyed under
// tenants.<name>. What a provider requires (its name, credentials,
// endpoints) has one owner, package providers (providers.Check), which
// `sidekey check` and `serve` run after Validate.
func validateTenant(ps *Problems, name string, t *Tenant) {
	key := "tenants." + name
	switch {
	case strings.HasPrefix(name, "_"):
		ps.add(key, "reserved name: names starting with _ belong to sidekey")
	case !ValidTenantName(name):
		ps.add(key, "invalid name: use a-z, 0-9, '.', '_' and '-', starting with a letter or digit")
	}
	if t == nil {
		ps.add(key, "must not be empty")
		return
	}
	if rl := t.RateLimit; rl != nil {
		if rl.RPS < 0 || rl.RPS > 1e6 {
			ps.add(key+".rate_limit.rps", "must be between 0 (unlimited) and 1000000")
		}
		if rl.Burst < 0 {
			ps.add(key+".rate_limit.burst", "must not be negative")
		}
		if rl.MaxWait < 0 {
			ps.add(key+".rate_limit.max_wait", "must not be negative")
		}
	}
	if t.RefreshBefore < 0 {
		ps.add(key+".refresh_before", "must not be negative")
	}
	if t.RefreshTokenLifetime < 0 {
		ps.add(key+".refresh_token_lifetime", "must not be negative")
	}
	oneOf(ps, key+".grant", t.Grant, "", "client_credentials", "refresh_token", "authorization_code")
	oneOf(ps, key+".client_auth", t.ClientAuth, "", "header", "body")

	for _, f := range []string{"auth_url", "token_url", "api_url"} {
		if v := t.setting(f); v != "" {
			if msg := checkURL(v, f != "api_url"); msg != "" {
				ps.add(key+"."+f, msg)
			}
		}
	}
	for _, f := range []string{"client_id", "shop_id", "idp_key"} {
		if hasControl(t.setting(f)) {
			ps.add(key+"."+f, "must not contain control characters (CR, LF, NUL…)")
		}
	}
	for _, f := range []string{"store", "tenant_space"} {
		if v := t.setting(f); v != "" && !isLabel(v) {
			ps.add(key+"."+f, "must be a dns label: letters, digits and '-', at most 63")
		}
	}
	for i, s := range t.Scopes {
		if s == "" || strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
			ps.add(key+".scopes["+strconv.Itoa(i)+"]", "must be non-empty, without spaces or control characters")
		}
	}
	validateInjection(ps, key, t)
	validateSessions(ps, key, t.Sessions)
}

// validateInjection checks the token header, its format and static headers,
// which all end up in every proxied request.
func validateInjection(ps *Problems, key string, t *Tenant) {
	if msg := checkHeaderName(t.TokenHeader); msg != "" {
		ps.add(key+".token_header", msg)
	}
	switch n := strings.Count(t.TokenFormat, "{token}"); {
	case n != 1:
		ps.add(key+".token_format", fmt.Sprintf("must contain {token} exactly once; found %d", n))
	case hasControl(t.TokenFormat):
		ps.add(key+".token_format", "must not contain control characters (CR, LF, NUL…)")
	}
	for _, name := range slices.Sorted(maps.Keys(t.Headers)) {
		hkey := key + ".headers." + name
		if msg := checkHeaderName(name); msg != "" {
			ps.add(hkey, msg)
		} else if strings.EqualFold(name, t.TokenHeader) {
			ps.add(hkey, "conflicts with token_header")
		}
		if hasControl(t.Headers[name]) {
			ps.add(hkey, "value must not contain control characters (CR, LF, NUL…)")
		}
	}
}

// checkHeaderName returns what is wrong with name as a header sidekey sets
// on proxied requests, or "".
func checkHeaderName(name string) string {
	if name == "" {
		return "must not be empty"
	}
	for _, c := range []byte(name) {
		if !isTokenChar(c) {
			return "not a valid header name"
		}
	}
	if slices.Contains(hopByHop, strings.ToLower(name)) {
		return "cannot set " + name + ": hop-by-hop or set by the proxy"
	}
	return ""
}

// isTokenChar reports whether c may appear in an HTTP token (RFC 9110 tchar).
func isTokenChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

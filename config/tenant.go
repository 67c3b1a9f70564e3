package config

import (
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
	}
	panic("config: unknown tenant setting " + name)
}

// validateTenant checks what every tenant shares and what is plain syntax
// of the file; problems are keyed under tenants.<name>. What sidekey does
// with a value has one owner, package providers (providers.Check, which
// `sidekey check` and `serve` run after Validate, and providers.Build for
// connections made at run time): a provider's name, credentials and
// requirements, the endpoints (auth_url, token_url, api_url, after the
// provider's defaults), the injection (token_header, token_format,
// headers) and refresh_before.
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
	if t.RefreshTokenLifetime < 0 {
		ps.add(key+".refresh_token_lifetime", "must not be negative")
	}
	oneOf(ps, key+".grant", t.Grant, "", "client_credentials", "refresh_token", "authorization_code")
	oneOf(ps, key+".client_auth", t.ClientAuth, "", "header", "body")

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
	validateSessions(ps, key, t.Sessions)
}

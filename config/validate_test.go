package config

import (
	"strings"
	"testing"
)

// validTenants is a tenant of every provider, each valid.
const validTenants = `
tenants:
  il-shop: {provider: istores, client_id: id, client_secret: s, scopes: ["products:read"]}
  acme-hippo: {provider: storehippo, client_id: id, client_secret: s, store: acme}
  eu-simple: {provider: simplestore, client_id: id, client_secret: s}
  de-scayle: {provider: scayle, client_id: id, client_secret: s, tenant_space: acme, shop_id: "1001", idp_key: google, shop_secret: ss}
  other-api: {provider: oauth2, client_id: id, client_secret: s, token_url: "https://auth.example.com/token?x=1", api_url: https://api.example.com, client_auth: body, token_params: {audience: a}}
  public-client: {provider: oauth2, grant: refresh_token, refresh_token: rt, client_id: id, token_url: https://a.example.com/t, api_url: https://api.example.com}
  code-flow: {provider: oauth2, grant: authorization_code, client_id: id, client_secret: s, auth_url: https://a.example.com/auth, token_url: https://a.example.com/t, api_url: https://api.example.com, client_auth: header}
  scayle-admin: {provider: static, token: k, token_header: X-Access-Token, api_url: https://acme.admin.api.scayle.cloud/api/admin/v1, headers: {User-Agent: sidekey, Company-Id: "7"}}
  v1.2_x-y: {provider: static, token: k, api_url: http://127.0.0.1:9000}
`

func TestValidate(t *testing.T) {
	tests := []struct {
		name  string // what the case checks
		src   string // the file
		wants []want // problems, sorted by key
	}{
		{name: "every provider valid", src: validTenants},
		{name: "empty file", src: ""},
		{name: "loopback forms", src: "listen: localhost:80"},
		{name: "ipv6 loopback", src: "listen: '[::1]:80'"},
		{name: "port zero", src: "listen: 127.0.0.1:0"},
		{name: "open with callers", src: "listen: 0.0.0.0:8080\ncallers: {c: {key_sha256: " + strings.Repeat("ab", 32) + "}}"},
		{name: "open by choice", src: "listen: ':8080'\nallow_unauthenticated: true"},
		{name: "redis", src: "storage: {type: redis, key_file: /run/key, redis: {addr: 'redis_1.svc:6379', db: 2}}"},
		{name: "memory", src: "storage: {type: memory}"},

		{name: "listen without port", src: "listen: localhost",
			wants: []want{{"listen", "must be host:port"}}},
		{name: "listen named port", src: "listen: 127.0.0.1:http",
			wants: []want{{"listen", "port must be a number"}}},
		{name: "listen port range", src: "listen: 127.0.0.1:70000",
			wants: []want{{"listen", "port must be a number"}}},
		{name: "listen bad host", src: "listen: 'bad host!:80'\nallow_unauthenticated: true",
			wants: []want{{"listen", "invalid host"}}},
		{name: "open without callers", src: "listen: 0.0.0.0:8080",
			wants: []want{{"listen", "not a loopback address: configure callers"}}},
		{name: "all interfaces without callers", src: "listen: ':8080'",
			wants: []want{{"listen", "not a loopback address"}}},

		{name: "public_url scheme", src: "public_url: ftp://x",
			wants: []want{{"public_url", "must be an absolute http or https url"}}},
		{name: "public_url relative", src: "public_url: /x",
			wants: []want{{"public_url", "must be an absolute"}}},
		{name: "public_url query", src: "public_url: http://x/?a=1",
			wants: []want{{"public_url", "must not have a query"}}},
		{name: "public_url fragment", src: "public_url: 'http://x/#f'",
			wants: []want{{"public_url", "must not have a fragment"}}},
		{name: "public_url credentials", src: "public_url: http://u:p@x",
			wants: []want{{"public_url", "must not contain credentials"}}},
		{name: "allowed hosts", src: "allowed_hosts: [sidekey.shop.svc, SIDEKEY, 10.0.0.5, '::1', sidekey_1]\ntenants: {t: {provider: static, token: k, api_url: 'http://x', allow_upgrade: true}}"},
		{name: "allowed hosts not bare names", src: "allowed_hosts: ['http://a.example', 'a.example:8080', 'a.example/x', 'a.example.', '[::1]:80', 'bad host', '']",
			wants: []want{{"allowed_hosts[0]", "without scheme"}, {"allowed_hosts[1]", "without port"}, {"allowed_hosts[2]", "without path"},
				{"allowed_hosts[3]", "trailing dot"}, {"allowed_hosts[4]", "without port"}, {"allowed_hosts[5]", "not a valid host"}, {"allowed_hosts[6]", "not a valid host"}}},

		{name: "storage type", src: "storage: {type: s3}",
			wants: []want{{"storage.type", `must be one of file, memory, redis; got "s3"`}}},
		{name: "redis addr", src: "storage: {type: redis, key_file: /run/key, redis: {addr: redis, db: -1}}",
			wants: []want{{"storage.redis.addr", "must be host:port"}, {"storage.redis.db", "must not be negative"}}},
		{name: "redis port zero", src: "storage: {type: redis, key_file: /run/key, redis: {addr: 'r:0'}}",
			wants: []want{{"storage.redis.addr", "port must be a number from 1"}}},
		{name: "redis not checked unless used", src: "storage: {redis: {addr: nonsense}}"},
		{name: "log", src: "log: {level: verbose, format: text}",
			wants: []want{{"log.format", "must be one of json, console"}, {"log.level", "must be one of debug, info, warn, error"}}},
		{name: "negative limits", src: "engine: {max_active: -1}\nupstream: {max_idle_conns_per_host: -2}",
			wants: []want{{"engine.max_active", "must be positive"}, {"upstream.max_idle_conns_per_host", "must be positive"}}},

		{name: "tenant name case", src: "tenants: {Acme: {provider: static, token: k, api_url: 'http://x'}}",
			wants: []want{{"tenants.Acme", "invalid name"}}},
		{name: "tenant name reserved", src: "tenants: {_sidekey: {provider: static, token: k, api_url: 'http://x'}}",
			wants: []want{{"tenants._sidekey", "reserved name"}}},
		{name: "tenant name leading dash", src: "tenants: {-x: {provider: static, token: k, api_url: 'http://x'}}",
			wants: []want{{"tenants.-x", "invalid name"}}},
		{name: "tenant name slash", src: "tenants: {a/b: {provider: static, token: k, api_url: 'http://x'}}",
			wants: []want{{"tenants.a/b", "invalid name"}}},
		// What each provider requires is package providers' to check (providers.Check).
		{name: "grant and client_auth", src: "tenants: {a: {provider: static, token: k, api_url: 'http://a', grant: password, client_auth: jwt}}",
			wants: []want{{"tenants.a.client_auth", "must be one of header, body"}, {"tenants.a.grant", "must be one of client_credentials, refresh_token, authorization_code"}}},

		// Endpoints, token_header, token_format and headers are package
		// providers' to check (providers.Check); its tests hold their cases.
		{name: "identifiers", src: "tenants: {a: {provider: scayle, client_id: \"id\\r\\n\", client_secret: s, tenant_space: 'acme.evil.com', shop_id: \"1\\n\", idp_key: \"g\\0\", shop_secret: s}, b: {provider: storehippo, client_id: x, client_secret: y, store: 'a b'}, c: {provider: storehippo, client_id: x, client_secret: y, store: -acme}}",
			wants: []want{
				{"tenants.a.client_id", "must not contain control characters"},
				{"tenants.a.idp_key", "must not contain control characters"},
				{"tenants.a.shop_id", "must not contain control characters"},
				{"tenants.a.tenant_space", "must be a dns label"},
				{"tenants.b.store", "must be a dns label"},
				{"tenants.c.store", "must be a dns label"},
			}},
		{name: "scopes", src: "tenants: {a: {provider: istores, client_id: x, client_secret: y, scopes: [ok, 'a b', '']}}",
			wants: []want{{"tenants.a.scopes[1]", "without spaces"}, {"tenants.a.scopes[2]", "must be non-empty"}}},

		{name: "callers", src: validTenants + `
callers:
  billing: {key_sha256: "` + strings.Repeat("0f", 32) + `", tenants: [eu-simple, x]}
  copy: {key_sha256: "` + strings.Repeat("0F", 32) + `"}
  short: {key_sha256: abc}
  nokey: {tenants: [eu-simple]}
  nohex: {key_sha256: "` + strings.Repeat("zz", 32) + `"}
  empty:
`,
			wants: []want{
				{"callers.billing.tenants[1]", `unknown tenant "x"`},
				{"callers.copy.key_sha256", "same key as callers.billing"},
				{"callers.empty", "key_sha256, key_file or cert_subject is required"},
				{"callers.nohex.key_sha256", "must be 64 hex characters"},
				{"callers.nokey", "key_sha256, key_file or cert_subject is required"},
				{"callers.short.key_sha256", "must be 64 hex characters"},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := parse(t, tt.src, nil)
			checkProblems(t, problemsOf(t, c.Validate()), tt.wants...)
		})
	}
}

func TestValidateInCode(t *testing.T) {
	c := &Config{
		Tenants: map[string]*Tenant{"a": nil, "b": {Provider: "static", Token: "k", APIURL: "http://b"}},
		Callers: map[string]*Caller{"c": nil, "": {KeySHA256: strings.Repeat("a", 64)}},
	}
	c.SetDefaults()
	c.Engine.FetchTimeout = -1
	c.Upstream.DialTimeout = 0
	c.ShutdownTimeout = -5
	c.Listen = "bad"
	c.PublicURL = ""
	checkProblems(t, problemsOf(t, c.Validate()),
		want{"callers", "caller names must not be empty"},
		want{"callers.c", "must not be empty"},
		want{"engine.fetch_timeout", "must be positive"},
		want{"listen", "must be host:port"},
		want{"shutdown_timeout", "must be positive"},
		want{"tenants.a", "must not be empty"},
		want{"upstream.dial_timeout", "must be positive"},
	)
}

func TestValidateNeverRevealsSecrets(t *testing.T) {
	src := `
tenants:
  a: {provider: oauth2, client_secret: "sek\r\nret-1", token_url: "sek\nret-2", refresh_token: "sek ret-3"}
  b: {provider: static, token: "sek ret-4", api_url: x, headers: {X-Key: "sek\nret-5"}, scopes: ["sek ret-6"]}
`
	err := parse(t, src, nil).Validate()
	if err == nil {
		t.Fatal("Validate: got nil; want problems")
	}
	if strings.Contains(err.Error(), "sek") {
		t.Errorf("problems reveal a value: %v", err)
	}
}

func TestIsLoopback(t *testing.T) {
	tests := []struct {
		listen string // address
		want   bool
	}{
		{"127.0.0.1:8080", true},
		{"127.5.6.7:1", true},
		{"[::1]:8080", true},
		{"localhost:8080", true},
		{"LOCALHOST:1", true},
		{"[::ffff:127.0.0.1]:80", true},
		{"127.0.0.1", true},
		{"::1", true},
		{"[::1]", true},
		{":8080", false},
		{"0.0.0.0:8080", false},
		{"[::]:8080", false},
		{"10.0.0.1:80", false},
		{"example.com:80", false},
		{"localhost.example.com:80", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := IsLoopback(tt.listen); got != tt.want {
			t.Errorf("IsLoopback(%q): got %v; want %v", tt.listen, got, tt.want)
		}
	}
}

func TestValidTenantName(t *testing.T) {
	for name, want := range map[string]bool{
		"acme": true, "eu-simple": true, "a.b_c-1": true, "0": true,
		"": false, "_sidekey": false, "Acme": false, ".x": false, "a b": false, "a/b": false, "ä": false,
	} {
		if got := ValidTenantName(name); got != want {
			t.Errorf("ValidTenantName(%q): got %v; want %v", name, got, want)
		}
	}
}

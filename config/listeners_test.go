package config

import (
	"strings"
	"testing"
)

// sfTenant is a static tenant's required settings, for listener cases.
const sfTenant = "provider: static, token: k, api_url: 'http://127.0.0.1:9'"

func TestValidateListeners(t *testing.T) {
	key := strings.Repeat("ab", 32)
	tests := []struct {
		name  string // what the case checks
		src   string // the file
		wants []want // problems, sorted by key
	}{
		{name: "tenant listener with local tls",
			src: "tenants: {sf: {" + sfTenant + ", listen: '127.0.0.1:9001', tls: local}}"},
		{name: "forward proxy with intercepted hosts",
			src: "forward_proxy: {listen: '127.0.0.1:3128'}\ntenants: {sf: {" + sfTenant + ", intercept_hosts: [API.SimpleStore.io.]}}"},
		{name: "memory store with a provided ca",
			src: "storage: {type: memory}\nlocal_ca: {cert_file: /ca.crt, key_file: /ca.key}\ntenants: {sf: {" + sfTenant + ", listen: '127.0.0.1:9001', tls: local}}"},
		{name: "memory store with plain listeners",
			src: "storage: {type: memory}\ntenants: {sf: {" + sfTenant + ", listen: '127.0.0.1:9001'}}"},
		{name: "open tenant listener with callers",
			src: "callers: {c: {key_sha256: " + key + ", tenants: [sf]}}\ntenants: {sf: {" + sfTenant + ", listen: '0.0.0.0:9001'}}"},
		{name: "port zero never collides",
			src: "listen: 127.0.0.1:0\nforward_proxy: {listen: '127.0.0.1:0'}\ntenants: {sf: {" + sfTenant + ", listen: '127.0.0.1:0'}}"},

		{name: "tenant listener collides with the main listener",
			src:   "tenants: {sf: {" + sfTenant + ", listen: '127.0.0.1:8080'}}",
			wants: []want{{"tenants.sf.listen", "127.0.0.1:8080 is already used by listen"}}},
		{name: "two tenants on one port, one on every address",
			src:   "allow_unauthenticated: true\ntenants: {a: {" + sfTenant + ", listen: '127.0.0.1:9001'}, b: {" + sfTenant + ", listen: ':9001'}}",
			wants: []want{{"tenants.b.listen", "is already used by tenants.a.listen"}}},
		{name: "forward proxy collides with a tenant",
			src:   "forward_proxy: {listen: 'localhost:9001'}\ntenants: {a: {" + sfTenant + ", listen: 'LOCALHOST:9001'}}",
			wants: []want{{"forward_proxy.listen", "is already used by tenants.a.listen"}}},
		{name: "open tenant listener without callers",
			src:   "tenants: {sf: {" + sfTenant + ", listen: '0.0.0.0:9001'}}",
			wants: []want{{"tenants.sf.listen", "not a loopback address: configure callers"}}},
		{name: "open forward proxy without callers",
			src:   "forward_proxy: {listen: ':3128'}",
			wants: []want{{"forward_proxy.listen", "Proxy-Authorization"}}},
		{name: "forward proxy without listen",
			src:   "forward_proxy: {}",
			wants: []want{{"forward_proxy.listen", "required"}}},
		{name: "bad listen",
			src:   "tenants: {sf: {" + sfTenant + ", listen: '9001'}}",
			wants: []want{{"tenants.sf.listen", "must be host:port"}}},
		{name: "unknown tls",
			src:   "tenants: {sf: {" + sfTenant + ", listen: '127.0.0.1:9001', tls: acme}}",
			wants: []want{{"tenants.sf.tls", `must be one of off, local; got "acme"`}}},
		{name: "tls without a listener",
			src:   "tenants: {sf: {" + sfTenant + ", tls: local}}",
			wants: []want{{"tenants.sf.tls", "needs tenants.sf.listen"}}},
		{name: "memory store cannot keep a generated ca",
			src:   "storage: {type: memory}\ntenants: {sf: {" + sfTenant + ", listen: '127.0.0.1:9001', tls: local}}",
			wants: []want{{"tenants.sf.tls", "storage type memory cannot keep one"}}},
		{name: "memory store and the forward proxy",
			src:   "storage: {type: memory}\nforward_proxy: {listen: '127.0.0.1:3128'}",
			wants: []want{{"forward_proxy", "set local_ca.cert_file and local_ca.key_file"}}},
		{name: "half a local ca",
			src:   "local_ca: {cert_file: /ca.crt}",
			wants: []want{{"local_ca.key_file", "required with local_ca.cert_file"}}},
		{name: "host claimed twice",
			src: "forward_proxy: {listen: '127.0.0.1:3128'}\ntenants: {a: {" + sfTenant + ", intercept_hosts: [api.simplestore.io]}, " +
				"b: {" + sfTenant + ", intercept_hosts: [API.simplestore.io]}}",
			wants: []want{{"tenants.b.intercept_hosts[0]", "already intercepted by tenants.a"}}},
		{name: "hosts that are not host names",
			src: "forward_proxy: {listen: '127.0.0.1:3128'}\ntenants: {a: {" + sfTenant +
				", intercept_hosts: ['10.0.0.1', 'api.example.com:443', 'https://x.example.com', '*.example.com', localhost, '']}}",
			wants: []want{
				{"tenants.a.intercept_hosts[0]", "not a host name"},
				{"tenants.a.intercept_hosts[1]", "not a host name"},
				{"tenants.a.intercept_hosts[2]", "not a host name"},
				{"tenants.a.intercept_hosts[3]", "not a host name"},
				{"tenants.a.intercept_hosts[4]", "not a host name"},
				{"tenants.a.intercept_hosts[5]", "not a host name"},
			}},
		{name: "intercepted hosts without a forward proxy",
			src:   "tenants: {a: {" + sfTenant + ", intercept_hosts: [api.example.com]}}",
			wants: []want{{"tenants.a.intercept_hosts", "needs forward_proxy.listen"}}},
		{name: "an app cannot have a listener",
			src:   "apps: {shop: {provider: simplestore, listen: '127.0.0.1:9001'}}",
			wants: []want{{"apps.shop", "belong to a tenant"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := parse(t, tt.src, nil)
			checkProblems(t, problemsOf(t, c.Validate()), tt.wants...)
		})
	}
}

func TestLocalCAPathsAreRelativeToTheFile(t *testing.T) {
	c, err := Parse([]byte("local_ca: {cert_file: ca/tls.crt, key_file: /abs/tls.key}"), ParseOptions{Dir: "/etc/sidekey", ReadFile: files(nil)})
	if err != nil {
		t.Fatal(err)
	}
	if c.LocalCA.CertFile != "/etc/sidekey/ca/tls.crt" || c.LocalCA.KeyFile != "/abs/tls.key" {
		t.Errorf("local_ca = %+v; want cert_file /etc/sidekey/ca/tls.crt, key_file /abs/tls.key", c.LocalCA)
	}
}

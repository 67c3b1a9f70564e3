package proxy_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sidekey/sidekey/config"
	"github.com/sidekey/sidekey/proxy"
)

var forTenantTests = []struct {
	base   string // tenant's api_url path
	in     string // request target at the tenant's listener
	want   string // request target the upstream must see ("" when refused)
	status int    // status the caller gets
}{
	{"", "/v1/cart/42?x=1&y=%20z", "/v1/cart/42?x=1&y=%20z", 200},
	{"/api", "/v1/customers/me", "/api/v1/customers/me", 200},
	{"", "/", "/", 200},
	{"", "/a%2Fb/c", "/a%2Fb/c", 200},                 // escaped slash stays escaped
	{"", "//evil.example/x", "//evil.example/x", 200}, // a path, not a host
	{"", "/v1/../../admin", "", 400},                  // dot segments refused, as on the path route
	{"", "/v1/%2e%2e/admin", "", 400},
	{"", "http://evil.example/x", "", 400}, // absolute-form: the listener is not a proxy
}

func TestForTenantRoutesTheWholePath(t *testing.T) {
	for _, tt := range forTenantTests {
		t.Run(tt.in, func(t *testing.T) {
			upstream, seen := recordingUpstream(t)
			rt := staticRoute(t, "sf", upstream.URL+tt.base, config.Tenant{})
			p := proxy.New(proxy.Options{Lookup: func(name string) (*proxy.Route, bool) { return rt, name == "sf" }})
			srv := httptest.NewServer(p.ForTenant("sf"))
			t.Cleanup(srv.Close)
			resp := rawRequest(t, strings.TrimPrefix(srv.URL, "http://"),
				"GET "+tt.in+" HTTP/1.1\r\nHost: 127.0.0.1:9001\r\nAuthorization: Bearer caller-own\r\nConnection: close\r\n\r\n")
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d; want %d", resp.StatusCode, tt.status)
			}
			if tt.want == "" {
				return
			}
			r, uri := seen.last(t)
			if uri != tt.want {
				t.Errorf("upstream target = %q; want %q", uri, tt.want)
			}
			if got := r.Header.Get("Authorization"); got != "Bearer "+testToken {
				t.Errorf("upstream Authorization = %q; want the tenant's token", got)
			}
		})
	}
}

func TestForTenantUnknownTenant(t *testing.T) {
	p := proxy.New(proxy.Options{Lookup: func(string) (*proxy.Route, bool) { return nil, false }})
	srv := httptest.NewServer(p.ForTenant("gone"))
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL + "/v1/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || resp.Header.Get("X-Sidekey-Error") != proxy.CodeUnknownTenant {
		t.Errorf("got %d %q; want 404 unknown_tenant", resp.StatusCode, resp.Header.Get("X-Sidekey-Error"))
	}
}

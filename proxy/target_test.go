package proxy

import (
	"net/url"
	"strings"
	"testing"

	"github.com/sidekey/sidekey/config"
)

// FuzzParseTarget checks that no request target, however odd, routes a
// request outside the tenant's API base: the joined URL keeps the base's
// scheme and host, starts with the base path, and has no dot segment.
func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{
		"/acme/v1/cart/42?x=1", "/acme/../x", "/acme/%2e%2e/x", "/acme//evil/x", "/acme/a%2Fb",
		"/acme/user@host", "http://evil/acme", "/acme\\..\\x", "/acme/%zz", "/a/b?c#d", "//x", "/acme", "/0?#%", "/0?\x00",
	} {
		f.Add(s)
	}
	base, _ := url.Parse("https://api.example.com/api/1.1")
	f.Fuzz(func(t *testing.T, in string) {
		tg, err := parseTarget(in)
		if err != nil {
			return
		}
		if !config.ValidTenantName(tg.tenant) {
			t.Fatalf("accepted tenant %q", tg.tenant)
		}
		u, err := joinURL(base, basePath(base), tg.rest, tg.rawQuery)
		if err != nil {
			return
		}
		if u.Scheme != "https" || u.Host != "api.example.com" || u.User != nil {
			t.Fatalf("%q left the tenant: %s", in, u.String())
		}
		if !strings.HasPrefix(u.Path, "/api/1.1") {
			t.Fatalf("%q left the base path: %q", in, u.Path)
		}
		for _, seg := range strings.FieldsFunc(u.Path, func(r rune) bool { return r == '/' || r == '\\' }) {
			if seg == ".." {
				t.Fatalf("%q kept a dot segment: %q", in, u.Path)
			}
		}
		// What goes on the wire must parse back to the same host.
		back, err := url.Parse(u.String())
		if err != nil || back.Host != "api.example.com" {
			t.Fatalf("%q: wire form %q reparses to host %v (%v)", in, u.String(), back, err)
		}
	})
}

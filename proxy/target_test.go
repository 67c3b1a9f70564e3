package proxy

import (
	"net/url"
	"strings"
	"testing"

	"github.com/sidekey/sidekey/config"
)

// FuzzParseTarget checks that no request target, however odd, routes a
// request outside the tenant's API base: the joined URL keeps the base's
// scheme and host, starts with the base path, and has no dot segment or
// control character — not even to an upstream that decodes UTF-8 leniently
// (overlong forms) and folds Unicode dots and slashes into ASCII ones.
func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{
		"/acme/v1/cart/42?x=1", "/acme/../x", "/acme/%2e%2e/x", "/acme//evil/x", "/acme/a%2Fb",
		"/acme/user@host", "http://evil/acme", "/acme\\..\\x", "/acme/%zz", "/a/b?c#d", "//x", "/acme", "/0?#%", "/0?\x00",
		// Refused since issue 10: escaped control characters, "..;",
		// look-alike dots and slashes, overlong UTF-8.
		"/t/a%00b", "/acme/a%0d%0aX:1", "/acme/a%7Fb", "/acme/a%1f", "/acme/..;/x", "/acme/%2e%2e;x/y", "/acme/.;",
		"/acme/%EF%BC%8E%EF%BC%8E/x", "/acme/\uff0e\uff0e/x", "/acme/%E2%80%A5", "/acme/%E2%80%A4.", "/acme/%EF%B9%92%E3%80%82",
		"/acme/a%EF%BC%8F..", "/acme/%EF%BC%BC%EF%BD%A1.", "/acme/%C0%AE%C0%AE/x", "/acme/%C0%AF..", "/acme/%E0%80%AE.",
		"/acme/%F0%80%80%AE%F0%80%80%AE", "/acme/%F0%8F%BC%8E.",
		// Accepted: UTF-8 text, Latin-1 bytes, parameters, odd queries.
		"/acme/caf%C3%A9", "/acme/%E0b%C0", "/acme/a;b/x..;", "/acme/q?x=%00%0A",
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
		for _, r := range u.Path {
			if r < 0x20 || r == 0x7f {
				t.Fatalf("%q: path %q holds control character %U", in, u.Path, r)
			}
		}
		for _, seg := range strings.FieldsFunc(lenientlyNormalised(u.Path), func(r rune) bool { return r == '/' || r == '\\' }) {
			seg, _, _ = strings.Cut(seg, ";")
			if seg == "." || seg == ".." {
				t.Fatalf("%q: an upstream normalising %q sees a dot segment", in, u.Path)
			}
			if strings.ContainsFunc(seg, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
				t.Fatalf("%q: an upstream normalising %q sees a control character", in, u.Path)
			}
		}
		// What goes on the wire must parse back to the same host.
		back, err := url.Parse(u.String())
		if err != nil || back.Host != "api.example.com" {
			t.Fatalf("%q: wire form %q reparses to host %v (%v)", in, u.String(), back, err)
		}
	})
}

// lenientlyNormalised reads path as a careless upstream might: UTF-8
// decoded leniently (overlong forms accepted, stray bytes as Latin-1), then
// Unicode's dot and slash look-alikes folded into ASCII as NFKC or IDNA
// would.
func lenientlyNormalised(path string) string {
	var b strings.Builder
	for i := 0; i < len(path); {
		c, n := rune(path[i]), 1
		cont := func(k int) bool { return i+k < len(path) && path[i+k]&0xc0 == 0x80 }
		switch {
		case path[i]&0xe0 == 0xc0 && cont(1):
			c, n = rune(path[i]&0x1f)<<6|rune(path[i+1]&0x3f), 2
		case path[i]&0xf0 == 0xe0 && cont(1) && cont(2):
			c, n = rune(path[i]&0x0f)<<12|rune(path[i+1]&0x3f)<<6|rune(path[i+2]&0x3f), 3
		case path[i]&0xf8 == 0xf0 && cont(1) && cont(2) && cont(3):
			c, n = rune(path[i]&0x07)<<18|rune(path[i+1]&0x3f)<<12|rune(path[i+2]&0x3f)<<6|rune(path[i+3]&0x3f), 4
		}
		switch c {
		case '\u2024', '\ufe52', '\uff0e', '\u3002', '\uff61':
			b.WriteByte('.')
		case '\u2025':
			b.WriteString("..")
		case '\uff0f':
			b.WriteByte('/')
		case '\uff3c':
			b.WriteByte('\\')
		default:
			b.WriteRune(c)
		}
		i += n
	}
	return b.String()
}

package forwardproxy

import (
	"encoding/base64"
	"strings"
	"testing"
)

// FuzzOriginForm: whatever absolute-form target a client sends, the path
// served is an origin-form target taken byte for byte from the part after
// the authority — never a host, never empty.
func FuzzOriginForm(f *testing.F) {
	for _, seed := range []string{
		"http://api.simplestore.io/v1/cart/42?x=1", "http://h", "http://h?q", "http://h:80/a%2Fb",
		"http://user:pw@h/x", "HTTP://H//evil.example/x", "/already/origin", "http://h/?#frag", "",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, target string) {
		got := originForm(target)
		_, rest, abs := strings.Cut(target, "://")
		switch {
		case !abs:
			if got != target {
				t.Fatalf("originForm(%q) = %q; want it unchanged", target, got)
			}
		case !strings.HasPrefix(got, "/"):
			t.Fatalf("originForm(%q) = %q; want a path", target, got)
		default:
			authority := rest
			if i := strings.IndexAny(rest, "/?"); i >= 0 {
				authority = rest[:i]
			}
			tail := strings.TrimPrefix(got, "/")
			if !strings.HasSuffix(rest, tail) || len(tail) > len(rest)-len(authority) {
				t.Fatalf("originForm(%q) = %q; want the bytes after the authority %q", target, got, authority)
			}
		}
	})
}

// FuzzBasicPassword: a Basic credential yields its password, or nothing;
// never a panic, never a password for another scheme.
func FuzzBasicPassword(f *testing.F) {
	f.Add("Basic " + base64.StdEncoding.EncodeToString([]byte("app:key")))
	f.Add("Bearer key")
	f.Add("basic !!!")
	f.Add("Basic " + base64.StdEncoding.EncodeToString([]byte("nocolon")))
	f.Fuzz(func(t *testing.T, v string) {
		pass, ok := basicPassword(v)
		if ok && (pass == "" || !strings.HasPrefix(strings.ToLower(v), "basic ")) {
			t.Fatalf("basicPassword(%q) = %q, true", v, pass)
		}
	})
}

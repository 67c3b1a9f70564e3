package config

import (
	"net/url"
	"strings"
	"testing"
)

var returnToTests = []struct {
	prefix string // the configured sessions.return_to entry
	target string // the login's return_to
	want   bool   // whether it may be redirected to
}{
	{"https://shop.example/account", "https://shop.example/account", true},
	{"https://shop.example/account", "https://shop.example/account/orders?x=1", true},
	{"https://shop.example/account", "https://SHOP.example/account", true},
	{"https://shop.example/account/", "https://shop.example/account/x", true},
	{"https://shop.example", "https://shop.example/anything", true},
	{"https://shop.example/", "https://shop.example", true},
	{"http://127.0.0.1:3000/cb", "http://127.0.0.1:3000/cb", true},
	// Another host that merely starts like ours.
	{"https://shop.example/account", "https://shop.example.evil/account", false},
	{"https://shop.example", "https://shop.example.evil/", false},
	{"https://shop.example", "https://shop.exampleevil/", false},
	// A path that merely starts like ours.
	{"https://shop.example/account", "https://shop.example/accountX", false},
	{"https://shop.example/account", "https://shop.example/account.evil", false},
	{"https://shop.example/account/", "https://shop.example/account", false},
	// Scheme, port, credentials.
	{"https://shop.example/account", "http://shop.example/account", false},
	{"https://shop.example/account", "https://shop.example:8443/account", false},
	{"https://shop.example/account", "https://shop.example@evil.example/account", false},
	{"https://shop.example/account", "https://user:pw@shop.example/account", false},
	// Relative, scheme-relative and odd forms browsers read their own way.
	{"https://shop.example/account", "//evil.example/account", false},
	{"https://shop.example/account", "/account", false},
	{"https://shop.example/account", "https:/shop.example/account", false},
	{"https://shop.example/account", "https:shop.example/account", false},
	{"https://shop.example/account", `https://shop.example\@evil.example/account`, false},
	{"https://shop.example/account", "https://shop.example/account\\..\\admin", false},
	{"https://shop.example/account", "https://shop.example/account/../admin", false},
	{"https://shop.example/account", "https://shop.example/account/%2e%2e/admin", false},
	{"https://shop.example/account", "https://shop.example/account%2f..%2fadmin", false},
	{"https://shop.example/account", "https://shop.example/account/\tx", false},
	{"https://shop.example/account", "https://shop.example/account#frag", false},
	{"https://shop.example/account", "javascript:alert(1)//shop.example/account", false},
	{"https://shop.example/account", "", false},
	// A prefix that is itself not allowed admits nothing.
	{"http://shop.example/account", "http://shop.example/account", false},
}

func TestReturnAllowed(t *testing.T) {
	for _, tt := range returnToTests {
		s := &Sessions{ReturnTo: []string{tt.prefix}}
		if got := s.ReturnAllowed(tt.target); got != tt.want {
			t.Errorf("prefix %q, target %q: got %v; want %v", tt.prefix, tt.target, got, tt.want)
		}
	}
	var none *Sessions
	if none.ReturnAllowed("https://shop.example/account") {
		t.Error("a tenant without sessions allowed a return_to")
	}
}

func TestValidateSessions(t *testing.T) {
	tests := []struct {
		s    *Sessions
		keys []string // problem keys expected
	}{
		{&Sessions{ReturnTo: []string{"https://shop.example/account", "http://localhost:3000/"}}, nil},
		{&Sessions{}, []string{"t.sessions.return_to"}},
		{&Sessions{ReturnTo: []string{"http://shop.example/", "https://shop.example/?q=1", "shop.example", "https://u@shop.example/"},
			IdleTTL: -1, MaxActive: -1},
			[]string{"t.sessions.return_to[0]", "t.sessions.return_to[1]", "t.sessions.return_to[2]", "t.sessions.return_to[3]",
				"t.sessions.idle_ttl", "t.sessions.max_active"}},
	}
	for _, tt := range tests {
		var ps Problems
		validateSessions(&ps, "t", tt.s)
		var got []string
		for _, p := range ps {
			got = append(got, p.Key)
		}
		if strings.Join(got, ",") != strings.Join(tt.keys, ",") {
			t.Errorf("%+v: problems at %v; want %v (%v)", tt.s, got, tt.keys, ps)
		}
	}
}

// FuzzReturnAllowed: whatever the target, an allowed one has the prefix's
// scheme and host, a path at or below the prefix's at a segment boundary,
// and none of the characters browsers read their own way.
func FuzzReturnAllowed(f *testing.F) {
	for _, tt := range returnToTests {
		f.Add(tt.target)
	}
	f.Add("https://shop.example/account/%2E%2E/x")
	f.Add("https://shop.example:443/account")
	f.Add("https://shop.example/account?next=https://evil.example")
	s := &Sessions{ReturnTo: []string{"https://shop.example/account"}}
	f.Fuzz(func(t *testing.T, target string) {
		if !s.ReturnAllowed(target) {
			return
		}
		u, err := url.Parse(target)
		if err != nil {
			t.Fatalf("allowed %q, which does not parse: %v", target, err)
		}
		if u.Scheme != "https" || !strings.EqualFold(u.Host, "shop.example") || u.User != nil || u.Fragment != "" {
			t.Fatalf("allowed %q: scheme %q host %q", target, u.Scheme, u.Host)
		}
		p := u.EscapedPath()
		if p != "/account" && !strings.HasPrefix(p, "/account/") {
			t.Fatalf("allowed %q with path %q", target, p)
		}
		if strings.ContainsAny(target, "\\ \t\r\n#") || strings.Contains(p, "/../") || strings.HasSuffix(p, "/..") {
			t.Fatalf("allowed %q", target)
		}
		if !strings.HasPrefix(strings.ToLower(target), "https://shop.example/account") {
			t.Fatalf("allowed %q, which does not start with the prefix", target)
		}
	})
}

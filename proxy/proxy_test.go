package proxy_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sidekey/sidekey/config"
	"github.com/sidekey/sidekey/providers"
	"github.com/sidekey/sidekey/proxy"
	"github.com/sidekey/sidekey/tokensource"
)

const testToken = "tok-static-0123456789"

// seen is what the test upstream received.
type seen struct {
	mu   sync.Mutex
	reqs []*http.Request
	uris []string
}

func (s *seen) last(t *testing.T) (*http.Request, string) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.reqs) == 0 {
		t.Fatal("upstream saw no request")
	}
	return s.reqs[len(s.reqs)-1], s.uris[len(s.uris)-1]
}

// recordingUpstream is an API stand-in that records each request and
// answers 200 with a small JSON body.
func recordingUpstream(t *testing.T) (*httptest.Server, *seen) {
	t.Helper()
	s := &seen{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.reqs = append(s.reqs, r)
		s.uris = append(s.uris, r.RequestURI)
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"ok":true}`)
	}))
	t.Cleanup(srv.Close)
	return srv, s
}

// staticRoute builds a real static-provider tenant and its engine; edit,
// when given, adjusts the route's options.
func staticRoute(t *testing.T, name, apiURL string, ct config.Tenant, edit ...func(*proxy.RouteOptions)) *proxy.Route {
	t.Helper()
	ct.Provider = "static"
	ct.APIURL = apiURL
	if ct.Token == "" {
		ct.Token = testToken
	}
	spec, err := providers.Build(name, &ct, providers.Options{})
	if err != nil {
		t.Fatalf("providers.Build: %v", err)
	}
	engine := tokensource.RefreshAhead(spec.Source, tokensource.Options{Name: name})
	t.Cleanup(engine.Close)
	opts := proxy.RouteOptions{
		Name: name, Upstream: spec.APIURL, Tokens: engine,
		Header: spec.Inject.Header, Prefix: spec.Inject.Prefix, Suffix: spec.Inject.Suffix,
		Headers: spec.Headers,
	}
	for _, e := range edit {
		e(&opts)
	}
	return proxy.NewRoute(opts)
}

// frontend serves a Proxy over routes on a real loopback listener.
func frontend(t *testing.T, opts proxy.Options, routes ...*proxy.Route) *httptest.Server {
	t.Helper()
	byName := map[string]*proxy.Route{}
	for _, rt := range routes {
		byName[rt.Name()] = rt
	}
	opts.Lookup = func(name string) (*proxy.Route, bool) { rt, ok := byName[name]; return rt, ok }
	srv := httptest.NewServer(proxy.New(opts))
	t.Cleanup(srv.Close)
	return srv
}

// rawRequest sends exactly line+headers on a fresh connection and returns
// the response, so tests can send targets a Go client would clean up.
func rawRequest(t *testing.T, addr, raw string) *http.Response {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading response to %q: %v", raw, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

var routeTests = []struct {
	base string // tenant's api_url path
	in   string // request target at the proxy
	want string // request target the upstream must see
}{
	{"", "/acme/v1/cart/42", "/v1/cart/42"},
	{"", "/acme/v1/cart/42?x=1&y=%20z", "/v1/cart/42?x=1&y=%20z"},
	{"/api/1.1", "/acme/entity/ms.products?limit=5", "/api/1.1/entity/ms.products?limit=5"},
	{"/api/1.1/", "/acme/entity", "/api/1.1/entity"},
	{"/api", "/acme", "/api"},
	{"/api", "/acme/", "/api/"},
	{"", "/acme", "/"},
	{"", "/acme/a%2Fb/c", "/a%2Fb/c"},                 // escaped slash stays escaped
	{"", "/acme/a%20b", "/a%20b"},                     // escapes byte-exact
	{"", "/acme/%7Euser", "/%7Euser"},                 // even needless ones
	{"", "/acme/v1//double", "/v1//double"},           // empty segments kept
	{"", "/acme//evil.example/x", "//evil.example/x"}, // a path, not a host
	{"", "/acme/user@evil.example/x", "/user@evil.example/x"},
	{"", "/acme/q?a=b?c&d=%zz", "/q?a=b?c&d=%zz"}, // query bytes untouched
	{"", "/acme/file.json", "/file.json"},
	{"", "/acme/.well-known/x", "/.well-known/x"},
	{"", "/acme/caf%C3%A9/%E6%97%A5%E3%80%82", "/caf%C3%A9/%E6%97%A5%E3%80%82"}, // UTF-8, an ideographic full stop inside a segment
	{"", "/acme/latin%E0b%C0", "/latin%E0b%C0"},                                 // Latin-1 bytes are no overlong UTF-8
	{"", "/acme/a;b/..x;/x..;", "/a;b/..x;/x..;"},                               // parameters and dots that make no dot segment
	{"", "/acme/q?text=line%0Aline%00", "/q?text=line%0Aline%00"},               // the query is the API's business
}

func TestRoutesPathAndQueryExactly(t *testing.T) {
	for _, tt := range routeTests {
		up, got := recordingUpstream(t)
		rt := staticRoute(t, "acme", up.URL+tt.base, config.Tenant{})
		fe := frontend(t, proxy.Options{}, rt)
		resp := rawRequest(t, fe.Listener.Addr().String(),
			"GET "+tt.in+" HTTP/1.1\r\nHost: sidekey\r\nConnection: close\r\n\r\n")
		if resp.StatusCode != 200 {
			t.Errorf("%s: status %d; want 200", tt.in, resp.StatusCode)
			continue
		}
		r, uri := got.last(t)
		if uri != tt.want {
			t.Errorf("%s (base %q): upstream got %q; want %q", tt.in, tt.base, uri, tt.want)
		}
		if want := strings.TrimPrefix(up.URL, "http://"); r.Host != want {
			t.Errorf("%s: upstream Host %q; want %q", tt.in, r.Host, want)
		}
	}
}

var refuseTests = []struct {
	in     string // request target
	status int    // status sidekey answers itself
	code   string // X-Sidekey-Error
}{
	{"/acme/../secret", 400, "bad_request"},
	{"/acme/v1/../../x", 400, "bad_request"},
	{"/acme/%2e%2e/x", 400, "bad_request"},
	{"/acme/%2E%2E/x", 400, "bad_request"},
	{"/acme/a/..%2f..%2fx", 400, "bad_request"},
	{"/acme/a%2f..%2fb", 400, "bad_request"},
	{"/acme/..%5cx", 400, "bad_request"},
	{"/acme/a\\..\\b", 400, "bad_request"},
	{"/acme/./x", 400, "bad_request"},
	{"/Acme/x", 400, "bad_request"},
	{"/%61cme/x", 400, "bad_request"},
	{"/_sidekey/x", 400, "bad_request"},
	{"/", 400, "bad_request"},
	{"http://evil.example/acme/x", 400, "bad_request"},
	{"/nope/x", 404, "unknown_tenant"},
	{"/acme/a%00b", 400, "bad_request"},                        // escaped NUL
	{"/acme/a%0d%0aX-Injected:%201", 400, "bad_request"},       // escaped CR LF
	{"/acme/a%1Fb", 400, "bad_request"},                        // escaped unit separator
	{"/acme/a%7fb", 400, "bad_request"},                        // escaped DEL
	{"/acme/a%09b", 400, "bad_request"},                        // escaped tab
	{"/acme/..;/secret", 400, "bad_request"},                   // ".." to servlet containers
	{"/acme/v1/..;jsessionid=1/x", 400, "bad_request"},         // with a parameter
	{"/acme/%2e%2e;x/y", 400, "bad_request"},                   // escaped
	{"/acme/.;/x", 400, "bad_request"},                         // "." too
	{"/acme/%EF%BC%8E%EF%BC%8E/x", 400, "bad_request"},         // full-width dots U+FF0E
	{"/acme/\xef\xbc\x8e\xef\xbc\x8e/x", 400, "bad_request"},   // the same, raw UTF-8
	{"/acme/.%EF%BC%8E/x", 400, "bad_request"},                 // mixed
	{"/acme/%E2%80%A5/x", 400, "bad_request"},                  // U+2025 TWO DOT LEADER
	{"/acme/%E2%80%A4%EF%B9%92/x", 400, "bad_request"},         // U+2024 U+FE52
	{"/acme/%E3%80%82%EF%BD%A1/x", 400, "bad_request"},         // U+3002 U+FF61 (IDNA dots)
	{"/acme/a%EF%BC%8F..%EF%BC%8Fx", 400, "bad_request"},       // full-width solidus U+FF0F around ..
	{"/acme/a%EF%BC%BC%EF%BC%8E%EF%BC%8E", 400, "bad_request"}, // full-width reverse solidus U+FF3C
	{"/acme/%C0%AE%C0%AE/x", 400, "bad_request"},               // overlong '.'
	{"/acme/%C0%AF", 400, "bad_request"},                       // overlong '/'
	{"/acme/%E0%80%AE%E0%80%AE/x", 400, "bad_request"},         // 3-byte overlong '.'
	{"/acme/%F0%80%80%AE", 400, "bad_request"},                 // 4-byte overlong '.'
}

func TestRefusesTargetsThatLeaveTheTenant(t *testing.T) {
	up, got := recordingUpstream(t)
	fe := frontend(t, proxy.Options{}, staticRoute(t, "acme", up.URL, config.Tenant{}))
	for _, tt := range refuseTests {
		resp := rawRequest(t, fe.Listener.Addr().String(),
			"GET "+tt.in+" HTTP/1.1\r\nHost: sidekey\r\nConnection: close\r\n\r\n")
		if resp.StatusCode != tt.status || resp.Header.Get(proxy.ErrorHeader) != tt.code {
			t.Errorf("%s: got %d %q; want %d %q", tt.in, resp.StatusCode, resp.Header.Get(proxy.ErrorHeader), tt.status, tt.code)
		}
		var body struct{ Error, Message string }
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.Error != tt.code || body.Message == "" {
			t.Errorf("%s: body %+v (%v); want error %q with a message", tt.in, body, err, tt.code)
		}
	}
	got.mu.Lock()
	defer got.mu.Unlock()
	if len(got.reqs) != 0 {
		t.Errorf("upstream saw %d requests (first %q); want none", len(got.reqs), got.uris[0])
	}
}

func TestRefusesConnect(t *testing.T) {
	up, _ := recordingUpstream(t)
	fe := frontend(t, proxy.Options{}, staticRoute(t, "acme", up.URL, config.Tenant{}))
	resp := rawRequest(t, fe.Listener.Addr().String(), "CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n")
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get(proxy.ErrorHeader) != proxy.CodeMethodNotAllowed {
		t.Errorf("CONNECT: got %d %q; want 405 method_not_allowed", resp.StatusCode, resp.Header.Get(proxy.ErrorHeader))
	}
}

func TestInjectsTokenAndStripsCallerCredentials(t *testing.T) {
	tests := []struct {
		name    string
		tenant  config.Tenant
		header  string // where the token must arrive
		value   string // its exact value
		absent  []string
		present map[string]string
	}{
		{
			name:   "bearer default",
			header: "Authorization", value: "Bearer " + testToken,
			absent: []string{"Proxy-Authorization", "X-Caller-Secret"},
		},
		{
			name:   "x-token header with static headers",
			tenant: config.Tenant{TokenHeader: "x-token", TokenFormat: "{token}", Headers: map[string]string{"Company-Id": "77", "User-Agent": "sidekey-test/1"}},
			header: "X-Token", value: testToken,
			absent:  []string{"Authorization", "Proxy-Authorization"},
			present: map[string]string{"Company-Id": "77", "User-Agent": "sidekey-test/1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up, got := recordingUpstream(t)
			fe := frontend(t, proxy.Options{}, staticRoute(t, "acme", up.URL, tt.tenant))
			// The caller tries every trick to send its own credentials, and to
			// make the proxy strip the injected one as hop-by-hop.
			resp := rawRequest(t, fe.Listener.Addr().String(), "GET /acme/v1/x HTTP/1.1\r\nHost: sidekey\r\n"+
				"Authorization: Bearer caller-own\r\nX-Token: caller-own\r\nProxy-Authorization: Bearer caller-key\r\n"+
				"Connection: close, Authorization, X-Token, Company-Id, X-Caller-Secret\r\nX-Caller-Secret: s\r\nCompany-Id: 1\r\n\r\n")
			if resp.StatusCode != 200 {
				t.Fatalf("status %d; want 200", resp.StatusCode)
			}
			r, _ := got.last(t)
			if v := r.Header.Values(tt.header); len(v) != 1 || v[0] != tt.value {
				t.Errorf("%s = %q; want exactly [%q]", tt.header, v, tt.value)
			}
			for _, h := range tt.absent {
				if v, ok := r.Header[h]; ok {
					t.Errorf("%s reached the upstream: %q", h, v)
				}
			}
			for h, want := range tt.present {
				if v := r.Header.Values(h); len(v) != 1 || v[0] != want {
					t.Errorf("%s = %q; want [%q]", h, v, want)
				}
			}
			for h, v := range r.Header {
				for _, s := range v {
					if strings.Contains(s, "caller-own") || strings.Contains(s, "caller-key") {
						t.Errorf("caller credential reached the upstream in %s: %q", h, s)
					}
				}
			}
		})
	}
}

func TestStripsConfiguredCallerKeyHeader(t *testing.T) {
	up, got := recordingUpstream(t)
	fe := frontend(t, proxy.Options{CallerKeyHeader: "x-sidekey-key"}, staticRoute(t, "acme", up.URL, config.Tenant{}))
	resp := rawRequest(t, fe.Listener.Addr().String(), "GET /acme/v1/x HTTP/1.1\r\nHost: sidekey\r\n"+
		"X-SIDEKEY-KEY: caller-key\r\nX-Sidekey-Key: second\r\nX-Other: kept\r\nConnection: close\r\n\r\n")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d; want 200", resp.StatusCode)
	}
	r, _ := got.last(t)
	if v, ok := r.Header["X-Sidekey-Key"]; ok {
		t.Errorf("the caller key header reached the upstream: %q", v)
	}
	if got, want := r.Header.Get("X-Other"), "kept"; got != want {
		t.Errorf("X-Other: got %q; want %q", got, want)
	}
	if got, want := r.Header.Get("Authorization"), "Bearer "+testToken; got != want {
		t.Errorf("Authorization: got %q; want %q", got, want)
	}
}

func TestStreamsResponsesAsTheyCome(t *testing.T) {
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "first\n")
		w.(http.Flusher).Flush()
		<-release
		fmt.Fprint(w, "second\n")
	}))
	defer up.Close()
	defer close(release)
	fe := frontend(t, proxy.Options{}, staticRoute(t, "acme", up.URL, config.Tenant{}))
	resp, err := http.Get(fe.URL + "/acme/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "first\n" {
		t.Fatalf("first chunk %q, %v; want it before the upstream finishes", line, err)
	}
}

func TestUpstreamFailures(t *testing.T) {
	t.Run("unreachable", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close() // nothing listens there now
		fe := frontend(t, proxy.Options{}, staticRoute(t, "acme", "http://"+addr, config.Tenant{}))
		resp, err := http.Get(fe.URL + "/acme/x")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 502 || resp.Header.Get(proxy.ErrorHeader) != proxy.CodeUpstreamUnreachable {
			t.Errorf("got %d %q; want 502 upstream_unreachable", resp.StatusCode, resp.Header.Get(proxy.ErrorHeader))
		}
	})
	t.Run("timeout", func(t *testing.T) {
		block := make(chan struct{})
		up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-block }))
		defer up.Close()
		defer close(block)
		tr := proxy.NewTransport(proxy.TransportOptions{ResponseHeaderTimeout: 50 * time.Millisecond})
		fe := frontend(t, proxy.Options{Transport: tr}, staticRoute(t, "acme", up.URL, config.Tenant{}))
		resp, err := http.Get(fe.URL + "/acme/x")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 504 || resp.Header.Get(proxy.ErrorHeader) != proxy.CodeUpstreamTimeout {
			t.Errorf("got %d %q; want 504 upstream_timeout", resp.StatusCode, resp.Header.Get(proxy.ErrorHeader))
		}
	})
}

func TestUnknownTenantBody(t *testing.T) {
	fe := frontend(t, proxy.Options{})
	resp, err := http.Get(fe.URL + "/ghost/v1/x")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]string
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"error": "unknown_tenant", "tenant": "ghost", "message": "no tenant named ghost"}
	for k, v := range want {
		if body[k] != v {
			t.Errorf("body[%q] = %q; want %q", k, body[k], v)
		}
	}
	if resp.StatusCode != 404 || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("got %d %q; want 404 application/json", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

package server_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sidekey/sidekey/config"
	"github.com/sidekey/sidekey/proxy"
	"github.com/sidekey/sidekey/server"
)

// rawReply is one response read off a hand-written request.
type rawReply struct {
	status int
	header http.Header
	body   string
}

// sendOne writes raw on a fresh connection and reads the one response.
func sendOne(t *testing.T, addr, raw string) rawReply {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the answer to %q: %v", raw, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return rawReply{resp.StatusCode, resp.Header, string(b)}
}

// browserRequest writes an HTTP/1.1 request with headers in the order given
// (name, value, name, value…), as a browser would put them on the wire.
func browserRequest(method, target, host string, body string, headers ...string) string {
	var b strings.Builder
	b.WriteString(method + " " + target + " HTTP/1.1\r\nHost: " + host + "\r\n")
	for i := 0; i+1 < len(headers); i += 2 {
		b.WriteString(headers[i] + ": " + headers[i+1] + "\r\n")
	}
	if body != "" || method == "POST" {
		b.WriteString("Content-Length: " + strconv.Itoa(len(body)) + "\r\n")
	}
	b.WriteString("Connection: close\r\n\r\n" + body)
	return b.String()
}

// wantRefused checks that got is sidekey's own JSON error code with status.
func wantRefused(t *testing.T, what string, got rawReply, status int, code string) {
	t.Helper()
	if got.status != status || got.header.Get(proxy.ErrorHeader) != code {
		t.Errorf("%s: got %d %q; want %d %s", what, got.status, got.header.Get(proxy.ErrorHeader), status, code)
		return
	}
	var body struct{ Error, Message string }
	if err := json.Unmarshal([]byte(got.body), &body); err != nil || body.Error != code || body.Message == "" {
		t.Errorf("%s: body %q; want JSON error %q with a message", what, got.body, code)
	}
}

// chromeFetch are the headers Chromium sends with a page's
// fetch(url, {method: "POST", body: "…"}) to another site: a "simple"
// text/plain request that needs no CORS preflight.
func chromeFetch(origin string) []string {
	return []string{
		"sec-ch-ua-platform", `"Linux"`,
		"User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
		"Content-Type", "text/plain;charset=UTF-8",
		"Accept", "*/*",
		"Origin", origin,
		"Sec-Fetch-Site", "cross-site",
		"Sec-Fetch-Mode", "no-cors",
		"Sec-Fetch-Dest", "empty",
		"Accept-Encoding", "gzip, deflate, br, zstd",
		"Accept-Language", "en-US,en;q=0.9",
	}
}

// chromeNavigation are the headers Chromium sends when the user follows a
// link from site (a cross-site top-level navigation).
var chromeNavigation = []string{
	"Upgrade-Insecure-Requests", "1",
	"User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
	"Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8",
	"Sec-Fetch-Site", "cross-site",
	"Sec-Fetch-Mode", "navigate",
	"Sec-Fetch-User", "?1",
	"Sec-Fetch-Dest", "document",
	"Accept-Encoding", "gzip, deflate, br, zstd",
}

// TestDNSRebindingIsRefusedOnLoopback plays a page on attacker.example whose
// name now resolves to 127.0.0.1: the browser sends its requests to the
// loopback listener, same-origin as far as it knows, with the attacker's
// name as Host. None may read status or reach the platform with the token.
func TestDNSRebindingIsRefusedOnLoopback(t *testing.T) {
	sim := newSimpleStore(t, time.Hour)
	r := start(t, &config.Config{
		PublicURL:    "http://sidekey.test:8080",
		AllowedHosts: []string{"sidekey.shop.svc", "10.9.8.7"},
		Tenants:      map[string]*config.Tenant{"shop": simpleTenant(sim, clientSecret)},
	}, nil)
	addr := strings.TrimPrefix(r.base, "http://")
	// What Chromium sends for fetch("/…") from a page of the rebound origin.
	sameOrigin := []string{"Accept", "*/*", "Sec-Fetch-Site", "same-origin", "Sec-Fetch-Mode", "cors", "Sec-Fetch-Dest", "empty"}
	targets := []string{"/shop/v1/echo/a", "/_sidekey/status", "/_sidekey/healthz", "/_sidekey/admin/connections"}
	refused := []string{
		"attacker.example", "attacker.example:" + strings.Split(addr, ":")[1], "ATTACKER.EXAMPLE:80",
		"10.0.0.1", "192.168.1.20:8080", "[fe80::1]", "[::ffff:10.0.0.1]", "0.0.0.0",
		"localhost.", "127.0.0.1.", "sidekey.shop.svc.", "sidekey.test.", // trailing dots
		"127.1", "0x7f.0.0.1", "2130706433", // other spellings of 127.0.0.1 that resolvers accept
		"localhost.attacker.example", "evil-localhost", "sidekey.shop.svc.attacker.example",
		"localhost:", "[::1]x",
	}
	for _, host := range refused {
		for _, target := range targets {
			before := sim.APIRequests()
			got := sendOne(t, addr, browserRequest("GET", target, host, "", sameOrigin...))
			if got.status == http.StatusBadRequest && got.header.Get(proxy.ErrorHeader) == "" {
				continue // net/http refused the Host itself: nothing was served either
			}
			wantRefused(t, "Host "+host+" "+target, got, http.StatusMisdirectedRequest, proxy.CodeHostNotAllowed)
			if strings.Contains(got.body, "shop") || sim.APIRequests() != before {
				t.Errorf("Host %s %s: leaked %q or reached the platform", host, target, got.body)
			}
		}
	}

	// A Host header net/http lets through: empty on HTTP/1.1, absent on
	// HTTP/1.0, and an absolute-form target naming another host.
	for what, raw := range map[string]string{
		"empty Host":    "GET /_sidekey/status HTTP/1.1\r\nHost: \r\nConnection: close\r\n\r\n",
		"HTTP/1.0":      "GET /_sidekey/status HTTP/1.0\r\n\r\n",
		"absolute-form": "GET http://attacker.example/_sidekey/status HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
	} {
		wantRefused(t, what, sendOne(t, addr, raw), http.StatusMisdirectedRequest, proxy.CodeHostNotAllowed)
	}
	if n := sim.APIRequests(); n != 0 {
		t.Errorf("the platform saw %d requests; want none", n)
	}

	allowed := []string{
		addr, "127.0.0.1", "127.8.9.10:1", "localhost", "LocalHost:8080", "app.localhost:3000", "[::1]:8080", "[::1]",
		"sidekey.test", "sidekey.test:9999", "SIDEKEY.shop.svc", "sidekey.shop.svc:443", "10.9.8.7:8080",
	}
	for _, host := range allowed {
		got := sendOne(t, addr, browserRequest("GET", "/shop/v1/echo/a", host, "", sameOrigin...))
		if got.status != http.StatusOK {
			t.Errorf("Host %s: got %d %s; want 200", host, got.status, got.body)
		}
	}
}

// TestForeignHostsAreServedOffLoopback: a listener beyond loopback answers
// whatever Host its clients use (a kubelet probes the pod IP); there,
// callers authenticate instead.
func TestForeignHostsAreServedOffLoopback(t *testing.T) {
	sim := newSimpleStore(t, time.Hour)
	r := start(t, &config.Config{
		Listen: "10.1.2.3:8080", AllowUnauthenticated: true,
		Tenants: map[string]*config.Tenant{"shop": simpleTenant(sim, clientSecret)},
	}, nil)
	addr := strings.TrimPrefix(r.base, "http://")
	for _, target := range []string{"/_sidekey/healthz", "/_sidekey/readyz", "/shop/v1/echo/a"} {
		got := sendOne(t, addr, "GET "+target+" HTTP/1.1\r\nHost: 10.1.2.3:8080\r\nUser-Agent: kube-probe/1.31\r\nConnection: close\r\n\r\n")
		if got.status != http.StatusOK {
			t.Errorf("%s with Host = pod IP: got %d %s; want 200", target, got.status, got.body)
		}
	}
}

// TestCrossSiteRequestsAreRefused plays pages the operator visits on other
// sites, sending what Chromium sends. The token must not reach the platform
// and no connection may be created; top-level navigations of the consent
// flow, same-origin requests and programs still work.
func TestCrossSiteRequestsAreRefused(t *testing.T) {
	sim := newSimpleStore(t, time.Hour)
	cfg := &config.Config{
		Apps:    map[string]*config.Tenant{"simple-app": simpleTenant(sim, clientSecret)},
		Tenants: map[string]*config.Tenant{"shop": simpleTenant(sim, clientSecret)},
	}
	r := start(t, cfg, nil)
	addr := strings.TrimPrefix(r.base, "http://")
	create := `{"tenant":"evil","app":"simple-app","params":{}}`

	refused := []struct {
		what    string   // the attack
		method  string   // request method
		target  string   // request target
		body    string   // request body
		headers []string // as Chromium sends them
	}{
		{"fetch POST text/plain to a tenant", "POST", "/shop/v1/echo/a", "x=1", chromeFetch("https://evil.example")},
		{"fetch POST text/plain to the admin API", "POST", "/_sidekey/admin/connections", create, chromeFetch("https://evil.example")},
		{"fetch from a sandboxed frame (Origin null)", "POST", "/shop/v1/echo/a", "x=1", chromeFetch("null")},
		{"fetch from another port of localhost (same-site)", "POST", "/_sidekey/admin/connections", create,
			append(chromeFetch("http://localhost:3000"), "Sec-Fetch-Site", "same-site")},
		{"Origin without Sec-Fetch (older browsers)", "POST", "/shop/v1/echo/a", "x=1",
			[]string{"Content-Type", "text/plain", "Origin", "https://evil.example"}},
		{"Origin with another port of ours", "POST", "/shop/v1/echo/a", "x=1",
			[]string{"Origin", "http://127.0.0.1:1", "Sec-Fetch-Site", "same-origin"}},
		{"img GET of a tenant path", "GET", "/shop/v1/echo/a", "",
			[]string{"Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "no-cors", "Sec-Fetch-Dest", "image"}},
		{"link to status", "GET", "/_sidekey/status", "", chromeNavigation},
		{"link to a tenant", "GET", "/shop/v1/echo/a", "", chromeNavigation},
		{"form POST navigation to the callback", "POST", "/_sidekey/oauth/callback", "code=x",
			append([]string{"Origin", "https://evil.example", "Content-Type", "application/x-www-form-urlencoded"}, chromeNavigation...)},
		{"consent start in an iframe", "GET", "/_sidekey/oauth/connect/simple-app?tenant=evil", "",
			[]string{"Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "navigate", "Sec-Fetch-Dest", "iframe"}},
		{"navigation to a dot path", "GET", "/_sidekey/oauth/connect/../admin/connections", "", chromeNavigation},
	}
	for _, tt := range refused {
		before := sim.APIRequests()
		got := sendOne(t, addr, browserRequest(tt.method, tt.target, addr, tt.body, tt.headers...))
		wantRefused(t, tt.what, got, http.StatusForbidden, proxy.CodeCrossSiteRefused)
		if sim.APIRequests() != before {
			t.Errorf("%s: the request reached the platform", tt.what)
		}
	}
	if list := get(t, r.base+"/_sidekey/admin/connections/evil"); list.status != http.StatusNotFound {
		t.Errorf("a cross-site page created connection evil: %d %s", list.status, list.body)
	}

	served := []struct {
		what    string
		method  string
		target  string
		body    string
		headers []string
		status  int // the route's own answer
	}{
		{"program (no browser headers)", "POST", "/shop/v1/echo/a", "x=1", nil, http.StatusOK},
		{"address bar (Sec-Fetch-Site none)", "GET", "/shop/v1/echo/a", "",
			[]string{"Sec-Fetch-Site", "none", "Sec-Fetch-Mode", "navigate", "Sec-Fetch-User", "?1", "Sec-Fetch-Dest", "document"}, http.StatusOK},
		{"the console's own fetch", "POST", "/_sidekey/admin/connections", `{"tenant":"mine","app":"simple-app","params":{}}`,
			[]string{"Content-Type", "application/json", "Origin", r.base, "Sec-Fetch-Site", "same-origin", "Sec-Fetch-Mode", "cors", "Sec-Fetch-Dest", "empty"}, http.StatusCreated},
		{"consent start from the platform's page", "GET", "/_sidekey/oauth/connect/simple-app?tenant=other", "", chromeNavigation, -1},
		{"the platform redirecting back", "GET", "/_sidekey/oauth/callback?code=c&state=s", "", chromeNavigation, -1},
		{"a customer's login link", "GET", "/_sidekey/login/shop?return_to=https://shop.example/", "", chromeNavigation, -1},
		{"HEAD navigation of the callback", "HEAD", "/_sidekey/oauth/callback?code=c&state=s", "", chromeNavigation, -1},
	}
	for _, tt := range served {
		got := sendOne(t, addr, browserRequest(tt.method, tt.target, addr, tt.body, tt.headers...))
		if got.header.Get(proxy.ErrorHeader) == proxy.CodeCrossSiteRefused || tt.status > 0 && got.status != tt.status {
			t.Errorf("%s: got %d %q %s; want it served (%d)", tt.what, got.status, got.header.Get(proxy.ErrorHeader), got.body, tt.status)
		}
	}
}

// TestPublicURLIsOwnOrigin: behind a TLS-terminating ingress the browser's
// Origin is public_url's, not the plain-HTTP request's own.
func TestPublicURLIsOwnOrigin(t *testing.T) {
	sim := newSimpleStore(t, time.Hour)
	r := start(t, &config.Config{
		PublicURL: "https://sidekey.example",
		Tenants:   map[string]*config.Tenant{"shop": simpleTenant(sim, clientSecret)},
	}, nil)
	addr := strings.TrimPrefix(r.base, "http://")
	for origin, want := range map[string]int{
		"https://sidekey.example":     http.StatusOK,
		"https://SIDEKEY.example:443": http.StatusOK,
		"https://evil.example":        http.StatusForbidden,
		"https://sidekey.example:444": http.StatusForbidden,
	} {
		got := sendOne(t, addr, browserRequest("POST", "/shop/v1/echo/a", "sidekey.example", "x", "Origin", origin, "Sec-Fetch-Site", "same-origin"))
		if got.status != want {
			t.Errorf("Origin %s: got %d %s; want %d", origin, got.status, got.body, want)
		}
	}
}

// TestGuardWrapsAnyHandler: the Guard stands alone in front of any
// listener's handler (per-tenant listeners, the forward proxy), and a
// refused request never reaches that handler.
func TestGuardWrapsAnyHandler(t *testing.T) {
	var calls atomic.Int64
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls.Add(1) })
	srv := httptest.NewServer(server.Guard(server.GuardOptions{Loopback: true, AllowedHosts: []string{"sf.internal"}})(h))
	t.Cleanup(srv.Close)
	addr := srv.Listener.Addr().String()
	for host, want := range map[string]int{"sf.internal:9001": 200, "127.0.0.1": 200, "sf.internal.": 421, "api.example.com": 421} {
		if got := sendOne(t, addr, browserRequest("GET", "/x", host, "")); got.status != want {
			t.Errorf("Host %s: got %d; want %d", host, got.status, want)
		}
	}
	got := sendOne(t, addr, browserRequest("POST", "/x", "127.0.0.1", "x", chromeFetch("https://evil.example")...))
	wantRefused(t, "cross-site POST", got, http.StatusForbidden, proxy.CodeCrossSiteRefused)
	if n := calls.Load(); n != 2 {
		t.Errorf("the handler ran %d times; want 2 (the served Hosts only)", n)
	}
}

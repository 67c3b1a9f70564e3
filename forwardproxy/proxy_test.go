package forwardproxy_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sidekey/sidekey/config"
	"github.com/sidekey/sidekey/forwardproxy"
	"github.com/sidekey/sidekey/localca"
	"github.com/sidekey/sidekey/providers"
	"github.com/sidekey/sidekey/proxy"
	"github.com/sidekey/sidekey/store"
	"github.com/sidekey/sidekey/tokensource"
)

const (
	tenantToken = "tok-intercepted-5e1f"
	callerKey   = "caller-key-0b7d"
	interceptMe = "api.simplestore.io"
)

// upstream is the tenant's API: it records the request targets it sees
// with the token they carry.
type upstream struct {
	*httptest.Server
	mu   sync.Mutex
	seen []string // "target token"
}

func (u *upstream) last() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.seen) == 0 {
		return ""
	}
	return u.seen[len(u.seen)-1]
}

func newUpstream(t *testing.T) *upstream {
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.seen = append(u.seen, r.RequestURI+" "+r.Header.Get("Authorization"))
		u.mu.Unlock()
		json.NewEncoder(w).Encode(map[string]string{"path": r.URL.Path})
	}))
	t.Cleanup(u.Close)
	return u
}

// fixture is a forward proxy intercepting api.simplestore.io for tenant
// "simple", whose API is up.
type fixture struct {
	addr  string // the proxy's listener
	roots *x509.CertPool
	up    *upstream
	fp    *forwardproxy.Proxy
}

func newFixture(t *testing.T, admit func(http.ResponseWriter, *http.Request, string) bool) *fixture {
	t.Helper()
	up := newUpstream(t)
	spec, err := providers.Build("simple", &config.Tenant{Provider: "static", Token: tenantToken, APIURL: up.URL, TokenHeader: "Authorization", TokenFormat: "Bearer {token}"}, providers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	engine := tokensource.RefreshAhead(spec.Source, tokensource.Options{Name: "simple"})
	t.Cleanup(engine.Close)
	route := proxy.NewRoute(proxy.RouteOptions{Name: "simple", Upstream: spec.APIURL, Tokens: engine, Prefix: "Bearer "})
	p := proxy.New(proxy.Options{Lookup: func(n string) (*proxy.Route, bool) { return route, n == "simple" }})

	key := make([]byte, store.KeySize)
	rand.Read(key)
	st, _ := store.Seal(store.NewMemory(), key)
	ca, err := localca.Open(context.Background(), localca.Options{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	fp := forwardproxy.New(forwardproxy.Options{
		Hosts:       map[string]string{interceptMe: "simple"},
		Serve:       p.ForTenant,
		Certificate: func(host string) func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return ca.GetCertificate(host) },
		Admit:       admit,
	})
	srv := httptest.NewServer(fp)
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		fp.Shutdown(ctx)
	})
	roots := x509.NewCertPool()
	roots.AddCert(ca.Certificate())
	return &fixture{addr: strings.TrimPrefix(srv.URL, "http://"), roots: roots, up: up, fp: fp}
}

// client is Go's net/http configured as an app with HTTPS_PROXY set and the
// local CA trusted.
func (f *fixture) client(userinfo *url.Userinfo) *http.Client {
	proxyURL := &url.URL{Scheme: "http", Host: f.addr, User: userinfo}
	return &http.Client{Transport: &http.Transport{
		Proxy:           http.ProxyURL(proxyURL),
		TLSClientConfig: &tls.Config{RootCAs: f.roots},
	}}
}

func TestInterceptedHostGoesToTheTenant(t *testing.T) {
	f := newFixture(t, nil)
	for _, target := range []string{
		"https://" + interceptMe + "/v1/cart/42?x=1",
		"https://API.SimpleStore.io/v1/cart/43",
		"http://" + interceptMe + "/v1/cart/44",
	} {
		resp, err := f.client(nil).Get(target)
		if err != nil {
			t.Fatalf("GET %s through the proxy: %v", target, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("GET %s: status %d; want 200", target, resp.StatusCode)
		}
		u, _ := url.Parse(target)
		if want := u.RequestURI() + " Bearer " + tenantToken; f.up.last() != want {
			t.Errorf("GET %s: upstream saw %q; want %q", target, f.up.last(), want)
		}
	}
}

// rawConnect sends a CONNECT for authority on a new connection and returns
// the response and the connection (open when the CONNECT succeeded).
func rawConnect(t *testing.T, addr, authority string, header string) (*http.Response, net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n%s\r\n", authority, authority, header)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		t.Fatalf("CONNECT %s: %v", authority, err)
	}
	return resp, conn, br
}

func TestNotAnOpenProxy(t *testing.T) {
	f := newFixture(t, nil)
	for _, authority := range []string{
		"evil.example:443",            // a host no tenant intercepts
		"api.simplestore.io.evil:443", // a look-alike
		"127.0.0.1:443",               // an address
		"[::1]:443",
		"10.0.0.1:8080",
		interceptMe + ":8443", // an intercepted host on another port
		interceptMe + ":22",
	} {
		resp, _, _ := rawConnect(t, f.addr, authority, "")
		if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-Sidekey-Error") != proxy.CodeHostNotIntercepted {
			t.Errorf("CONNECT %s: %d %q; want 403 %s", authority, resp.StatusCode, resp.Header.Get("X-Sidekey-Error"), proxy.CodeHostNotIntercepted)
		}
	}
	for _, target := range []string{"http://evil.example/", "http://127.0.0.1:9/x", "http://" + interceptMe + ":8080/v1/x"} {
		resp, err := f.client(nil).Get(target)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("GET %s through the proxy: %d; want 403", target, resp.StatusCode)
		}
	}
	if got := f.up.last(); got != "" {
		t.Errorf("the tenant's API was called (%q) for a refused host", got)
	}
}

func TestTunnelServesOnlyItsHost(t *testing.T) {
	f := newFixture(t, nil)
	// A ClientHello for another name inside an intercepted tunnel gets no
	// certificate.
	resp, conn, _ := rawConnect(t, f.addr, interceptMe+":443", "")
	if resp.StatusCode != 200 {
		t.Fatalf("CONNECT: %d; want 200", resp.StatusCode)
	}
	tc := tls.Client(conn, &tls.Config{ServerName: "evil.example", RootCAs: f.roots})
	if err := tc.Handshake(); err == nil {
		t.Error("TLS for evil.example inside a tunnel to " + interceptMe + " succeeded; want no certificate")
	}
	// A request naming another host inside a good tunnel is misdirected.
	_, conn, _ = rawConnect(t, f.addr, interceptMe+":443", "")
	tc = tls.Client(conn, &tls.Config{ServerName: interceptMe, RootCAs: f.roots})
	fmt.Fprintf(tc, "GET /v1/x HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(tc), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusMisdirectedRequest {
		t.Errorf("Host evil.example inside a tunnel to %s: %d; want 421", interceptMe, resp.StatusCode)
	}
}

func TestCallersAuthenticateOnConnect(t *testing.T) {
	admit := func(w http.ResponseWriter, r *http.Request, tenant string) bool {
		if r.Header.Get("Proxy-Authorization") == "Bearer "+callerKey && tenant == "simple" {
			return true
		}
		proxy.WriteError(w, http.StatusUnauthorized, proxy.CodeCallerUnauthorized, "", "present your caller key", 0)
		return false
	}
	f := newFixture(t, admit)
	resp, _, _ := rawConnect(t, f.addr, interceptMe+":443", "")
	if resp.StatusCode != http.StatusProxyAuthRequired || resp.Header.Get("Proxy-Authenticate") == "" {
		t.Errorf("CONNECT without a key: %d, Proxy-Authenticate %q; want 407 asking for credentials", resp.StatusCode, resp.Header.Get("Proxy-Authenticate"))
	}
	if _, err := f.client(url.UserPassword("app", "wrong")).Get("https://" + interceptMe + "/v1/x"); err == nil {
		t.Error("a wrong key in the proxy URL was let through")
	}
	for _, user := range []*url.Userinfo{url.UserPassword("billing-app", callerKey)} {
		resp, err := f.client(user).Get("https://" + interceptMe + "/v1/x")
		if err != nil {
			t.Fatalf("with the key in the proxy URL: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("with the key in the proxy URL: %d; want 200", resp.StatusCode)
		}
	}
	resp, _, _ = rawConnect(t, f.addr, interceptMe+":443", "Proxy-Authorization: Bearer "+callerKey+"\r\n")
	if resp.StatusCode != 200 {
		t.Errorf("CONNECT with Proxy-Authorization: Bearer: %d; want 200", resp.StatusCode)
	}
}

func TestNotAServer(t *testing.T) {
	f := newFixture(t, nil)
	resp, err := http.Get("http://" + f.addr + "/v1/cart/42")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("an origin-form request to the proxy: %d; want 400", resp.StatusCode)
	}
}

func TestShutdownEndsTunnels(t *testing.T) {
	f := newFixture(t, nil)
	resp, conn, _ := rawConnect(t, f.addr, interceptMe+":443", "")
	if resp.StatusCode != 200 {
		t.Fatalf("CONNECT: %d", resp.StatusCode)
	}
	tc := tls.Client(conn, &tls.Config{ServerName: interceptMe, RootCAs: f.roots})
	fmt.Fprintf(tc, "GET /v1/x HTTP/1.1\r\nHost: %s\r\n\r\n", interceptMe)
	br := bufio.NewReader(tc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body) // the tunnel is now idle, kept alive
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := f.fp.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	tc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := br.ReadByte(); err == nil {
		t.Error("an idle tunnel stayed open after Shutdown")
	}
}

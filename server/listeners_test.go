package server_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/sidekey/sidekey/config"
	"github.com/sidekey/sidekey/internal/testwait"
	"github.com/sidekey/sidekey/localca"
	"github.com/sidekey/sidekey/providers/providertest"
	"github.com/sidekey/sidekey/server"
	"github.com/sidekey/sidekey/store"
)

// interceptedHost is SimpleStore's real API host name: the forward proxy
// intercepts it, so nothing here ever resolves or dials it.
const interceptedHost = "api.simplestore.io"

// legacyServer is a running sidekey with tenant listeners and a forward
// proxy, each on a 127.0.0.1 port the test opened.
type legacyServer struct {
	*running
	addr  map[string]string // by config key (server.TenantListenKey, server.ForwardProxyKey)
	caPEM []byte            // the local CA certificate
	roots *x509.CertPool    // trusting it
}

// startLegacy runs a Server for cfg with a loopback listener opened for
// each of keys; cfg keeps the addresses it names (so a test can make the
// server believe a listener is not on loopback) unless they are empty.
func startLegacy(t testing.TB, cfg *config.Config, log *zap.Logger, keys ...string) *legacyServer {
	t.Helper()
	lns := map[string]net.Listener{}
	addr := map[string]string{}
	for _, key := range append([]string{"listen"}, keys...) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns[key], addr[key] = ln, ln.Addr().String()
		set := func(s *string) {
			if *s == "" {
				*s = ln.Addr().String()
			}
		}
		switch {
		case key == "listen":
			set(&cfg.Listen)
		case key == server.ForwardProxyKey:
			set(&cfg.ForwardProxy.Listen)
		default:
			set(&cfg.Tenants[strings.TrimSuffix(strings.TrimPrefix(key, "tenants."), ".listen")].Listen)
		}
	}
	if cfg.Storage.Type == "" {
		cfg.Storage = config.Storage{Type: "file", Path: t.TempDir()}
	}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	if log == nil {
		log = zap.NewNop()
	}
	main := lns["listen"]
	delete(lns, "listen")
	r := serve(t, server.Options{Config: cfg, Logger: log, Version: "test", Listeners: lns}, main)
	srv := r.srv
	ls := &legacyServer{
		running: r,
		addr:    addr,
		caPEM:   srv.LocalCACertificate(),
		roots:   x509.NewCertPool(),
	}
	if !ls.roots.AppendCertsFromPEM(ls.caPEM) {
		t.Fatal("LocalCACertificate is not a PEM certificate")
	}
	return ls
}

// legacyConfig has tenant "simple" (SimpleStore through sim) with its own
// TLS listener and the forward proxy intercepting api.simplestore.io for it.
func legacyConfig(sim *providertest.SimpleStore) *config.Config {
	simple := simpleTenant(sim, clientSecret)
	simple.TLS = config.TLSLocal
	simple.InterceptHosts = []string{interceptedHost}
	return &config.Config{
		Tenants:      map[string]*config.Tenant{"simple": simple},
		ForwardProxy: &config.ForwardProxy{},
	}
}

// cart is the SimpleStore simulator's cart answer.
type cart struct {
	ID string `json:"id"`
}

func decodeCart(t *testing.T, resp *http.Response) cart {
	t.Helper()
	defer resp.Body.Close()
	var c cart
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || json.Unmarshal(body, &c) != nil {
		t.Fatalf("status %d, body %s; want a cart", resp.StatusCode, body)
	}
	return c
}

func TestTenantTLSListenerServesTheWholePath(t *testing.T) {
	sim := newSimpleStore(t, time.Hour)
	s := startLegacy(t, legacyConfig(sim), nil, server.TenantListenKey("simple"), server.ForwardProxyKey)
	port := strings.TrimPrefix(s.addr[server.TenantListenKey("simple")], "127.0.0.1:")
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.roots}}}
	for _, host := range []string{"127.0.0.1", "localhost"} {
		resp, err := client.Get("https://" + net.JoinHostPort(host, port) + "/v1/cart/42")
		if err != nil {
			t.Fatalf("GET by %s: %v", host, err)
		}
		if c := decodeCart(t, resp); c.ID != "42" {
			t.Errorf("by %s: cart %q; want 42", host, c.ID)
		}
		if got := sim.LastAPIRequest().RequestURI; got != "/v1/cart/42" {
			t.Errorf("by %s: the API saw %q; want /v1/cart/42", host, got)
		}
	}
	// No leaf for a name the listener was not configured with.
	conn, err := tls.Dial("tcp", s.addr[server.TenantListenKey("simple")], &tls.Config{ServerName: interceptedHost, RootCAs: s.roots})
	if err == nil {
		conn.Close()
		t.Errorf("a TLS handshake for %s on the tenant listener succeeded; want no certificate", interceptedHost)
	}
	// The path route still works beside it.
	if got := get(t, s.base+"/simple/v1/cart/7"); got.status != 200 {
		t.Errorf("path route: %d; want 200", got.status)
	}
}

func TestForwardProxyWithGoNetHTTP(t *testing.T) {
	sim := newSimpleStore(t, time.Hour)
	s := startLegacy(t, legacyConfig(sim), nil, server.TenantListenKey("simple"), server.ForwardProxyKey)
	client := &http.Client{Transport: &http.Transport{
		Proxy:           http.ProxyURL(&url.URL{Scheme: "http", Host: s.addr[server.ForwardProxyKey]}),
		TLSClientConfig: &tls.Config{RootCAs: s.roots},
	}}
	resp, err := client.Get("https://" + interceptedHost + "/v1/cart/42?currency=EUR")
	if err != nil {
		t.Fatal(err)
	}
	if c := decodeCart(t, resp); c.ID != "42" {
		t.Errorf("cart %q; want 42", c.ID)
	}
	if got := sim.LastAPIRequest().RequestURI; got != "/v1/cart/42?currency=EUR" {
		t.Errorf("the API saw %q; want /v1/cart/42?currency=EUR", got)
	}
	resp, err = client.Get("https://evil.example/v1/cart/42")
	if err == nil {
		resp.Body.Close()
		t.Error("a CONNECT to a host no tenant intercepts was let through")
	}
}

func TestForwardProxyOffLoopbackNeedsACallerKey(t *testing.T) {
	sim := newSimpleStore(t, time.Hour)
	cfg := legacyConfig(sim)
	const key = "billing-key-7c1e"
	cfg.Callers = map[string]*config.Caller{"billing": {KeySHA256: sha256Hex(key), Tenants: []string{"simple"}}}
	cfg.ForwardProxy.Listen = "192.0.2.10:3128" // what the server believes; the test listens on loopback
	cfg.Tenants["simple"].TLS, cfg.Tenants["simple"].Listen = "", ""
	s := startLegacy(t, cfg, nil, server.ForwardProxyKey)
	through := func(user *url.Userinfo) (int, error) {
		client := &http.Client{Transport: &http.Transport{
			Proxy:           http.ProxyURL(&url.URL{Scheme: "http", Host: s.addr[server.ForwardProxyKey], User: user}),
			TLSClientConfig: &tls.Config{RootCAs: s.roots},
		}}
		resp, err := client.Get("https://" + interceptedHost + "/v1/cart/1")
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	if _, err := through(nil); err == nil || !strings.Contains(err.Error(), "Proxy Authentication Required") {
		t.Errorf("without a key: %v; want the CONNECT refused with 407", err)
	}
	if _, err := through(url.UserPassword("billing", "wrong")); err == nil {
		t.Error("a wrong key was let through")
	}
	if code, err := through(url.UserPassword("billing", key)); err != nil || code != 200 {
		t.Errorf("with the key: %d, %v; want 200", code, err)
	}
	if got := sim.LastAPIRequest().Header.Get("Proxy-Authorization"); got != "" {
		t.Errorf("the API received Proxy-Authorization %q", got)
	}
}

func TestForwardProxyKeyWithACustomCallerKeyHeader(t *testing.T) {
	sim := newSimpleStore(t, time.Hour)
	cfg := legacyConfig(sim)
	const key = "cron-key-2f9a"
	cfg.CallerKeyHeader = "X-Sidekey-Key"
	cfg.Callers = map[string]*config.Caller{"cron": {KeySHA256: sha256Hex(key), Tenants: []string{"simple"}}}
	cfg.Tenants["simple"].TLS, cfg.Tenants["simple"].Listen = "", ""
	s := startLegacy(t, cfg, nil, server.ForwardProxyKey)
	client := &http.Client{Transport: &http.Transport{
		Proxy:           http.ProxyURL(&url.URL{Scheme: "http", Host: s.addr[server.ForwardProxyKey], User: url.UserPassword("cron", key)}),
		TLSClientConfig: &tls.Config{RootCAs: s.roots},
	}}
	decodeCart(t, mustGet(t, client, "https://"+interceptedHost+"/v1/cart/9"))
	if got := sim.LastAPIRequest().Header.Get("Proxy-Authorization"); got != "" {
		t.Errorf("the API received Proxy-Authorization %q", got)
	}
}

func TestLocalCAKeyNeverLeaks(t *testing.T) {
	sim := newSimpleStore(t, time.Hour)
	var logs bytes.Buffer
	var logMu sync.Mutex
	cfg := legacyConfig(sim)
	dir := t.TempDir()
	cfg.Storage = config.Storage{Type: "file", Path: dir}
	cfg.Log.Level = "debug"
	s := startLegacy(t, cfg, zap.New(zapCore(&logs, &logMu)), server.TenantListenKey("simple"), server.ForwardProxyKey)
	client := &http.Client{Transport: &http.Transport{
		Proxy:           http.ProxyURL(&url.URL{Scheme: "http", Host: s.addr[server.ForwardProxyKey]}),
		TLSClientConfig: &tls.Config{RootCAs: s.roots},
	}}
	if resp, err := client.Get("https://" + interceptedHost + "/v1/cart/1"); err == nil {
		resp.Body.Close()
	}
	status := get(t, s.base+"/_sidekey/status").body
	metrics := get(t, s.base+"/_sidekey/metrics").body
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	// Read the CA key back the only way there is: through the sealed store.
	st, err := store.Open(cfg.Storage, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := st.Load(context.Background(), localca.StoreKey)
	st.Close()
	if err != nil {
		t.Fatalf("the generated CA is not in the store: %v", err)
	}
	var rec struct{ Key []byte }
	if err := json.Unmarshal(raw, &rec); err != nil || len(rec.Key) == 0 {
		t.Fatalf("stored CA: %v", err)
	}
	var files []byte
	filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			b, _ := os.ReadFile(path)
			files = append(files, b...)
		}
		return nil
	})
	logMu.Lock()
	defer logMu.Unlock()
	forms := map[string][]byte{
		"DER":    rec.Key[len(rec.Key)-40:],
		"base64": []byte(base64.StdEncoding.EncodeToString(rec.Key)[40:100]),
	}
	for form, secret := range forms {
		for where, h := range map[string][]byte{"log": logs.Bytes(), "status": []byte(status), "metrics": []byte(metrics), "store files": files} {
			if bytes.Contains(h, secret) {
				t.Errorf("the CA key (%s) is in the %s", form, where)
			}
		}
	}
	if !strings.Contains(logs.String(), "generated the local CA") {
		t.Error("the log does not say a CA was generated")
	}
}

func TestLegacyListenersDrainOnShutdown(t *testing.T) {
	sim := newSimpleStore(t, time.Hour)
	s := startLegacy(t, legacyConfig(sim), nil, server.TenantListenKey("simple"), server.ForwardProxyKey)
	tenantURL := "https://" + s.addr[server.TenantListenKey("simple")] + "/v1/cart/"
	tenantClient := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.roots}}}
	proxyClient := &http.Client{Transport: &http.Transport{
		Proxy:           http.ProxyURL(&url.URL{Scheme: "http", Host: s.addr[server.ForwardProxyKey]}),
		TLSClientConfig: &tls.Config{RootCAs: s.roots},
	}}
	decodeCart(t, mustGet(t, tenantClient, tenantURL+"1")) // warm: a token, a leaf
	sim.SetAPILatency(300 * time.Millisecond)
	type result struct {
		via    string
		status int
		err    error
	}
	results := make(chan result, 2)
	for via, call := range map[string]func() (*http.Response, error){
		"tenant listener": func() (*http.Response, error) { return tenantClient.Get(tenantURL + "2") },
		"forward proxy":   func() (*http.Response, error) { return proxyClient.Get("https://" + interceptedHost + "/v1/cart/3") },
	} {
		go func() {
			resp, err := call()
			if err != nil {
				results <- result{via, 0, err}
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			results <- result{via, resp.StatusCode, nil}
		}()
	}
	testwait.For(t, "both requests to reach the API", func() bool { return sim.APIRequests() >= 3 })
	if err := s.stop(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	for range 2 {
		if r := <-results; r.err != nil || r.status != 200 {
			t.Errorf("in-flight request through the %s during shutdown: %d, %v; want 200", r.via, r.status, r.err)
		}
	}
	for key, addr := range s.addr {
		if conn, err := net.Dial("tcp", addr); err == nil {
			conn.Close()
			t.Errorf("%s still accepts connections after shutdown", key)
		}
	}
}

func TestTenantListenerThatCannotBindStopsTheStart(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	sim := newSimpleStore(t, time.Hour)
	cfg := legacyConfig(sim)
	cfg.Tenants["simple"].Listen = taken.Addr().String()
	cfg.Listen, cfg.Storage = "127.0.0.1:0", config.Storage{Type: "file", Path: t.TempDir()}
	cfg.ForwardProxy.Listen = "127.0.0.1:0"
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Options{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	err = srv.RunListener(context.Background(), ln)
	if err == nil || !strings.Contains(err.Error(), "tenants.simple.listen") {
		t.Fatalf("RunListener = %v; want an error naming tenants.simple.listen", err)
	}
	if conn, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		conn.Close()
		t.Error("the main listener is still open after a failed start")
	}
}

// mustGet GETs url with client.
func mustGet(t *testing.T, client *http.Client, url string) *http.Response {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestReloadLeavesLegacyListenersAsStarted(t *testing.T) {
	sim := newSimpleStore(t, time.Hour)
	var logs bytes.Buffer
	var logMu sync.Mutex
	cfg := legacyConfig(sim)
	s := startLegacy(t, cfg, zap.New(zapCore(&logs, &logMu)), server.TenantListenKey("simple"), server.ForwardProxyKey)
	next := legacyConfig(sim)
	next.Listen, next.PublicURL, next.Storage = cfg.Listen, cfg.PublicURL, cfg.Storage
	next.Tenants["simple"].Listen = "127.0.0.1:1" // moved: takes a restart
	next.Tenants["simple"].InterceptHosts = []string{"api.other.example"}
	next.ForwardProxy.Listen = cfg.ForwardProxy.Listen
	next.SetDefaults()
	if err := s.srv.Reload(next); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	logMu.Lock()
	logged := logs.String()
	logMu.Unlock()
	if !strings.Contains(logged, "tenant listen/tls/intercept_hosts") || !strings.Contains(logged, "only changes on restart") {
		t.Errorf("the reload did not say the listeners change on restart; log:\n%s", logged)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.roots}}}
	decodeCart(t, mustGet(t, client, "https://"+s.addr[server.TenantListenKey("simple")]+"/v1/cart/5"))
}

// TestTenantListenerRefusesWebPages: a loopback tenant listener is guarded
// like the main one: a rebound Host name gets 421 and a cross-site request
// 403, and neither reaches the API.
func TestTenantListenerRefusesWebPages(t *testing.T) {
	sim := newSimpleStore(t, time.Hour)
	s := startLegacy(t, legacyConfig(sim), nil, server.TenantListenKey("simple"), server.ForwardProxyKey)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.roots}}}
	base := "https://" + s.addr[server.TenantListenKey("simple")]
	if resp := mustGet(t, client, base+"/v1/cart/1"); resp.StatusCode != 200 {
		t.Fatalf("warm-up: %d; want 200", resp.StatusCode)
	}
	before := sim.APIRequests()
	for _, tc := range []struct {
		name   string
		header map[string]string
		host   string
		want   int
		code   string
	}{
		{"rebound host", nil, "attacker.example", http.StatusMisdirectedRequest, "host_not_allowed"},
		{"cross-site fetch", map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://attacker.example"}, "", http.StatusForbidden, "cross_site_refused"},
	} {
		req, err := http.NewRequest("POST", base+"/v1/echo/orders", strings.NewReader("x"))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "text/plain")
		for k, v := range tc.header {
			req.Header.Set(k, v)
		}
		if tc.host != "" {
			req.Host = tc.host
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want || resp.Header.Get("X-Sidekey-Error") != tc.code {
			t.Errorf("%s: %d %q; want %d %q", tc.name, resp.StatusCode, resp.Header.Get("X-Sidekey-Error"), tc.want, tc.code)
		}
	}
	if got := sim.APIRequests(); got != before {
		t.Errorf("the API got %d requests from refused callers; want 0", got-before)
	}
}

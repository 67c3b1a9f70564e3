package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/sidekey/sidekey/config"
	"github.com/sidekey/sidekey/internal/testwait"
	"github.com/sidekey/sidekey/providers/providertest"
	"github.com/sidekey/sidekey/server"
)

const (
	clientID     = "sk-test-client"
	clientSecret = "sk-test-secret-do-not-leak-3f9a"
)

// running is a sidekey serving on a loopback listener.
type running struct {
	base string
	srv  *server.Server
	stop func() error // graceful shutdown; returns Run's error
}

// start runs a Server for cfg on 127.0.0.1:0 until the test ends. cfg.Listen
// decides what the server believes its listener is (loopback or not).
func start(t *testing.T, cfg *config.Config, log *zap.Logger) *running {
	t.Helper()
	return startServer(t, cfg, log, nil)
}

// startWithClock is start with the server's clock replaced.
func startWithClock(t *testing.T, cfg *config.Config, now func() time.Time) *running {
	t.Helper()
	return startServer(t, cfg, nil, now)
}

func startServer(t *testing.T, cfg *config.Config, log *zap.Logger, now func() time.Time) *running {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen == "" {
		cfg.Listen = ln.Addr().String()
	}
	if cfg.PublicURL == "" {
		cfg.PublicURL = "http://" + ln.Addr().String()
	}
	if cfg.Storage.Type == "" {
		cfg.Storage = config.Storage{Type: "memory"}
	}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	if log == nil {
		log = zap.NewNop()
	}
	return serve(t, server.Options{Config: cfg, Logger: log, Version: "test", Now: now}, ln)
}

// serve builds a Server from opts and runs it on ln until the test ends
// (or its stop is called).
func serve(t testing.TB, opts server.Options, ln net.Listener) *running {
	t.Helper()
	srv, err := server.New(opts)
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.RunListener(ctx, ln) }()
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() { cancel(); runErr = <-done })
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	return &running{base: "http://" + ln.Addr().String(), srv: srv, stop: stop}
}

// simpleTenant configures a SimpleStore tenant against sim.
func simpleTenant(sim *providertest.SimpleStore, secret string) *config.Tenant {
	return &config.Tenant{
		Provider: "simplestore", ClientID: clientID, ClientSecret: config.Secret(secret),
		TokenURL: sim.TokenURL(), APIURL: sim.APIURL(),
	}
}

func newSimpleStore(t *testing.T, lifetime time.Duration) *providertest.SimpleStore {
	t.Helper()
	sim := providertest.NewSimpleStore(providertest.SimOptions{ClientID: clientID, ClientSecret: clientSecret, TokenLifetime: lifetime})
	t.Cleanup(sim.Close)
	return sim
}

type reply struct {
	status int
	header http.Header
	body   string
}

func do(t *testing.T, method, url string, body io.Reader, header map[string]string) reply {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{resp.StatusCode, resp.Header, string(b)}
}

// fetchOK GETs url and reports whether it answered 200, draining the body
// so the connection is reused.
func fetchOK(client *http.Client, url string) bool {
	resp, err := client.Get(url)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func get(t *testing.T, url string) reply { t.Helper(); return do(t, "GET", url, nil, nil) }

func TestColdTenantHerdSharesOneTokenRequest(t *testing.T) {
	sim := newSimpleStore(t, time.Hour)
	sim.SetTokenLatency(500 * time.Millisecond)
	r := start(t, &config.Config{Tenants: map[string]*config.Tenant{"shop": simpleTenant(sim, clientSecret)}}, nil)

	const n = 200
	var wg sync.WaitGroup
	var ok atomic.Int64
	begin := make(chan struct{})
	for range n {
		wg.Go(func() {
			<-begin
			if fetchOK(http.DefaultClient, r.base+"/shop/v1/cart/42") {
				ok.Add(1)
			}
		})
	}
	close(begin)
	wg.Wait()
	if ok.Load() != n {
		t.Errorf("%d of %d requests succeeded; want all", ok.Load(), n)
	}
	if got := sim.TokenRequests(); got != 1 {
		t.Errorf("token requests = %d; want exactly 1", got)
	}
}

// TestRefreshAheadNeverBlocksTraffic: while a refresh ahead is held at the
// token endpoint, steady traffic is served by the still-valid token (none
// of it waits for the refresh, none fails); once released, the refresh
// completes and the new token is served.
func TestRefreshAheadNeverBlocksTraffic(t *testing.T) {
	// 60 s tokens refreshed 54 s before expiry: a refresh starts 6 s (the
	// engine's floor, a tenth of the lifetime) after each token is issued,
	// and the token it replaces stays valid for most of a minute.
	sim := newSimpleStore(t, time.Minute)
	tenant := simpleTenant(sim, clientSecret)
	tenant.RefreshBefore = config.Duration(54 * time.Second)
	r := start(t, &config.Config{Tenants: map[string]*config.Tenant{"shop": tenant}}, nil)
	if got := get(t, r.base+"/shop/v1/cart/1"); got.status != 200 { // the cold fetch
		t.Fatalf("warm-up: %d %s", got.status, got.body)
	}
	first := sim.LastAPIRequest().Header.Get("Authorization")
	release := sim.HoldTokenRequests()
	var releaseOnce sync.Once
	t.Cleanup(func() { releaseOnce.Do(release) })
	testwait.For(t, "the refresh ahead to reach the held token endpoint", func() bool { return sim.TokenRequestsHeld() > 0 })
	issued := sim.TokenRequests()

	var failures, total atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		var wg sync.WaitGroup
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
		for range 4 {
			wg.Go(func() {
				for range 50 {
					total.Add(1)
					if !fetchOK(client, r.base+"/shop/v1/cart/1") {
						failures.Add(1)
					}
				}
			})
		}
		wg.Wait()
	}()
	select {
	case <-done:
	case <-time.After(40 * time.Second): // well inside the old token's life
		t.Fatalf("traffic did not finish while the refresh was held (%d requests done): it waits for the refresh", total.Load())
	}
	if n := failures.Load(); n != 0 {
		t.Errorf("%d of %d requests failed while the refresh was held; want none", n, total.Load())
	}
	if got := sim.TokenRequests(); got != issued {
		t.Errorf("%d token requests were processed during the traffic; want 0 (the refresh was held)", got-issued)
	}
	if got := sim.LastAPIRequest().Header.Get("Authorization"); got != first {
		t.Errorf("the API saw a new token while the refresh was held")
	}

	releaseOnce.Do(release)
	testwait.For(t, "the released refresh to be served", func() bool {
		return fetchOK(http.DefaultClient, r.base+"/shop/v1/cart/1") && sim.LastAPIRequest().Header.Get("Authorization") != first
	})
}

func TestRevokedTokenIsRefetchedAndReplayed(t *testing.T) {
	sim := newSimpleStore(t, time.Hour)
	r := start(t, &config.Config{Tenants: map[string]*config.Tenant{"shop": simpleTenant(sim, clientSecret)}}, nil)
	if got := get(t, r.base+"/shop/v1/cart/1"); got.status != 200 {
		t.Fatalf("first request: %d %s", got.status, got.body)
	}
	first := sim.LastAPIRequest().Header.Get("Authorization")
	sim.RevokeAll()

	got := do(t, "POST", r.base+"/shop/v1/echo/orders?x=1", strings.NewReader(`{"qty":3}`), map[string]string{"Content-Type": "application/json"})
	if got.status != 200 {
		t.Fatalf("after revocation: %d %s; want 200 after replay", got.status, got.body)
	}
	last := sim.LastAPIRequest()
	if string(last.Body) != `{"qty":3}` {
		t.Errorf("upstream got body %q on replay; want the original", last.Body)
	}
	if a := last.Header.Get("Authorization"); a == first || !strings.HasPrefix(a, "Bearer ") {
		t.Errorf("replay used %q; want a new bearer token", a)
	}
	if n := sim.TokenRequests(); n != 2 {
		t.Errorf("token requests = %d; want 2 (initial + one after the 401)", n)
	}
}

func TestRejectedClientSecretIsTokenUnavailable(t *testing.T) {
	sim := newSimpleStore(t, time.Hour)
	const wrong = "wrong-secret-must-not-leak-77"
	r := start(t, &config.Config{Tenants: map[string]*config.Tenant{"shop": simpleTenant(sim, wrong)}}, nil)
	for i := range 3 {
		got := get(t, r.base+"/shop/v1/cart/1")
		if got.status != 503 || got.header.Get("X-Sidekey-Error") != "token_unavailable" || got.header.Get("Retry-After") == "" {
			t.Fatalf("request %d: %d %q Retry-After %q; want 503 token_unavailable with Retry-After",
				i, got.status, got.header.Get("X-Sidekey-Error"), got.header.Get("Retry-After"))
		}
		var body map[string]string
		if err := json.Unmarshal([]byte(got.body), &body); err != nil {
			t.Fatalf("body %q: %v", got.body, err)
		}
		if !strings.Contains(body["message"], "invalid_client") || body["tenant"] != "shop" {
			t.Errorf("body %v; want the platform's invalid_client code and the tenant", body)
		}
		if strings.Contains(got.body, wrong) {
			t.Errorf("client secret in the error body: %s", got.body)
		}
	}
	// Backoff: the three requests did not each ask the platform again.
	if n := sim.TokenRequests(); n != 1 {
		t.Errorf("token requests = %d; want 1 (later requests wait out the backoff)", n)
	}
}

func TestStatusAndMetrics(t *testing.T) {
	sim := newSimpleStore(t, time.Hour)
	r := start(t, &config.Config{Tenants: map[string]*config.Tenant{"shop": simpleTenant(sim, clientSecret)}}, nil)
	if got := get(t, r.base+"/shop/v1/cart/1"); got.status != 200 {
		t.Fatalf("request: %d %s", got.status, got.body)
	}
	st := get(t, r.base+"/_sidekey/status")
	var status struct {
		Tenants map[string]struct {
			Provider, State string
			Valid           bool
			Expiry          *time.Time
			Fetches         int
		}
	}
	if err := json.Unmarshal([]byte(st.body), &status); err != nil {
		t.Fatalf("status %q: %v", st.body, err)
	}
	shop := status.Tenants["shop"]
	if shop.Provider != "simplestore" || !shop.Valid || shop.Expiry == nil || shop.Fetches != 1 {
		t.Errorf("status of shop = %+v; want simplestore, valid, an expiry, 1 fetch", shop)
	}
	if until := time.Until(*shop.Expiry); until < 50*time.Minute || until > time.Hour {
		t.Errorf("expiry in %v; want about an hour", until)
	}
	m := get(t, r.base+"/_sidekey/metrics")
	for _, want := range []string{
		`sidekey_requests_total{code="200",tenant="shop"} 1`,
		`sidekey_token_fetches_total{result="ok",tenant="shop"} 1`,
		`sidekey_token_valid{tenant="shop"} 1`,
		`sidekey_request_duration_seconds_count 1`,
	} {
		if !strings.Contains(m.body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	for _, path := range []string{"/_sidekey/healthz", "/_sidekey/readyz"} {
		if got := get(t, r.base+path); got.status != 200 {
			t.Errorf("%s: %d", path, got.status)
		}
	}
	if got := get(t, r.base+"/_sidekey/nope"); got.status != 404 {
		t.Errorf("/_sidekey/nope: %d; want 404", got.status)
	}
}

// TestSecretsNeverLeak drives every path that logs or reports (success,
// revocation, rejected secret, unknown tenant) with debug logging and scans
// logs, status, metrics and error bodies for the client secret and for
// every token the platform issued.
func TestSecretsNeverLeak(t *testing.T) {
	sim := newSimpleStore(t, time.Hour)
	var logs bytes.Buffer
	var logMu sync.Mutex
	log := zap.New(zapCore(&logs, &logMu))
	badSim := newSimpleStore(t, time.Hour)
	r := start(t, &config.Config{
		Log: config.Log{Level: "debug"},
		Tenants: map[string]*config.Tenant{
			"shop": simpleTenant(sim, clientSecret),
			"bad":  simpleTenant(badSim, clientSecret+"-wrong"),
		},
	}, log)

	var bodies []string
	tokens := map[string]bool{}
	record := func(got reply) {
		bodies = append(bodies, got.body)
		for _, v := range got.header {
			bodies = append(bodies, strings.Join(v, ","))
		}
	}
	for range 2 {
		record(get(t, r.base+"/shop/v1/cart/1"))
		tokens[strings.TrimPrefix(sim.LastAPIRequest().Header.Get("Authorization"), "Bearer ")] = true
		sim.RevokeAll()
	}
	record(get(t, r.base+"/shop/v1/cart/1"))
	tokens[strings.TrimPrefix(sim.LastAPIRequest().Header.Get("Authorization"), "Bearer ")] = true
	record(get(t, r.base+"/bad/v1/cart/1"))
	record(get(t, r.base+"/ghost/v1/cart/1"))
	record(get(t, r.base+"/_sidekey/status"))
	record(get(t, r.base+"/_sidekey/metrics"))
	if err := r.stop(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if len(tokens) < 2 {
		t.Fatalf("collected %d tokens; the test needs the rotated ones too", len(tokens))
	}
	logMu.Lock()
	haystacks := append(bodies, logs.String())
	logMu.Unlock()
	secrets := []string{clientSecret}
	for tok := range tokens {
		secrets = append(secrets, tok)
	}
	for _, s := range secrets {
		for i, h := range haystacks {
			if strings.Contains(h, s) {
				t.Errorf("secret %.6s… found in output %d: %.200s", s, i, h)
			}
		}
	}
	if !strings.Contains(logs.String(), "invalid_client") {
		t.Errorf("logs do not explain the rejected secret; got:\n%s", logs.String())
	}
}

func TestCallersAndAdminOffLoopback(t *testing.T) {
	sim := newSimpleStore(t, time.Hour)
	sum := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	adminFile := filepath.Join(t.TempDir(), "admin")
	if err := os.WriteFile(adminFile, []byte("admin-token-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := start(t, &config.Config{
		Listen:         "0.0.0.0:0", // what the server believes; the test serves on 127.0.0.1
		AdminTokenFile: adminFile,
		Callers: map[string]*config.Caller{
			"billing": {KeySHA256: sum("billing-key"), Tenants: []string{"shop"}},
			"other":   {KeySHA256: sum("other-key"), Tenants: []string{"second"}},
		},
		Tenants: map[string]*config.Tenant{
			"shop":   simpleTenant(sim, clientSecret),
			"second": simpleTenant(sim, clientSecret),
		},
	}, nil)
	tests := []struct {
		path   string
		header map[string]string
		status int
		code   string
	}{
		{"/shop/v1/cart/1", nil, 401, "caller_unauthorized"},
		{"/shop/v1/cart/1", map[string]string{"Proxy-Authorization": "Bearer nope"}, 401, "caller_unauthorized"},
		{"/shop/v1/cart/1", map[string]string{"Proxy-Authorization": "Bearer other-key"}, 403, "caller_forbidden"},
		{"/shop/v1/cart/1", map[string]string{"Proxy-Authorization": "Bearer billing-key"}, 200, ""},
		{"/_sidekey/status", nil, 401, "caller_unauthorized"},
		{"/_sidekey/status", map[string]string{"Authorization": "Bearer wrong"}, 401, "caller_unauthorized"},
		{"/_sidekey/status", map[string]string{"Authorization": "Bearer admin-token-1"}, 200, ""},
		{"/_sidekey/healthz", nil, 200, ""},
		{"/_sidekey/metrics", nil, 200, ""},
	}
	for _, tt := range tests {
		got := do(t, "GET", r.base+tt.path, nil, tt.header)
		if got.status != tt.status || got.header.Get("X-Sidekey-Error") != tt.code {
			t.Errorf("%s with %v: got %d %q; want %d %q", tt.path, tt.header, got.status, got.header.Get("X-Sidekey-Error"), tt.status, tt.code)
		}
	}
	if h := sim.LastAPIRequest().Header; h.Get("Proxy-Authorization") != "" {
		t.Errorf("caller key reached the upstream: %q", h.Get("Proxy-Authorization"))
	}
}

func TestGracefulShutdownDrainsInFlight(t *testing.T) {
	sim := newSimpleStore(t, time.Hour)
	r := start(t, &config.Config{Tenants: map[string]*config.Tenant{"shop": simpleTenant(sim, clientSecret)}}, nil)
	if got := get(t, r.base+"/shop/v1/cart/1"); got.status != 200 {
		t.Fatalf("warm-up: %d", got.status)
	}
	sim.SetAPILatency(300 * time.Millisecond)
	result := make(chan reply, 1)
	go func() {
		resp, err := http.Get(r.base + "/shop/v1/cart/2")
		if err != nil {
			result <- reply{status: -1, body: err.Error()}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		result <- reply{status: resp.StatusCode, body: string(b)}
	}()
	// Wait until the request is at the upstream, then shut down.
	testwait.For(t, "the request to reach the upstream", func() bool { return sim.APIRequests() >= 2 })
	if err := r.stop(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	got := <-result
	if got.status != 200 {
		t.Errorf("in-flight request during shutdown: %d %s; want 200", got.status, got.body)
	}
	if _, err := http.Get(r.base + "/_sidekey/healthz"); err == nil {
		t.Error("server still accepts connections after shutdown")
	}
}

// zapCore writes JSON log lines at every level into buf.
func zapCore(buf *bytes.Buffer, mu *sync.Mutex) zapcore.Core {
	return zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()),
		zapcore.AddSync(lockedWriter{buf, mu}), zapcore.DebugLevel)
}

type lockedWriter struct {
	buf *bytes.Buffer
	mu  *sync.Mutex
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sidekey/sidekey/config"
	"github.com/sidekey/sidekey/providers/providertest"
	"github.com/sidekey/sidekey/store"
)

// connect runs an app's consent for a new connection through the
// simulator (which approves at once) and sidekey's callback.
func connect(t *testing.T, base, app, tenant, params string) {
	t.Helper()
	got := get(t, base+"/_sidekey/oauth/connect/"+app+"?tenant="+tenant+"&"+params)
	if got.status != 200 {
		t.Fatalf("connecting %s under %s: %d %s", tenant, app, got.status, got.body)
	}
}

func TestConnectionsUnderAppsSurviveRestartAndDelete(t *testing.T) {
	opts := providertest.SimOptions{ClientID: clientID, ClientSecret: clientSecret}
	hip := providertest.NewStoreHippo(opts)
	sc := providertest.NewSCAYLE(providertest.SCAYLEOptions{SimOptions: opts, ShopID: "1001", ShopSecret: "shop-secret", IdpKey: "google"})
	t.Cleanup(func() { hip.Close(); sc.Close() })
	storage := fileStore(t)
	cfg := func() *config.Config {
		return &config.Config{Storage: storage, Apps: map[string]*config.Tenant{
			"hippo-app": {Provider: "storehippo", ClientID: clientID, ClientSecret: clientSecret, Scopes: []string{"read_products"},
				AuthURL: hip.AuthURL(), TokenURL: hip.TokenURL(), APIURL: hip.APIURL(), RateLimit: &config.RateLimit{}},
			"scayle-app": {Provider: "scayle", ClientID: clientID, ClientSecret: clientSecret, ShopSecret: "shop-secret",
				AuthURL: sc.AuthURL(), TokenURL: sc.TokenURL(), APIURL: sc.APIURL()},
		}}
	}
	r := start(t, cfg(), nil)
	hippos := []string{"acme", "beta", "gamma"}
	for _, s := range hippos {
		connect(t, r.base, "hippo-app", "hippo-"+s, "store="+s)
	}
	for _, s := range []string{"eu", "us"} {
		connect(t, r.base, "scayle-app", "scayle-"+s, "tenant_space="+s+"&shop_id=1001&idp_key=google")
	}

	// Each connection answers with its own token.
	seen := map[string]string{}
	for _, name := range []string{"hippo-acme", "hippo-beta", "hippo-gamma"} {
		if got := get(t, r.base+"/"+name+"/entity/ms.products"); got.status != 200 {
			t.Fatalf("%s: %d %s", name, got.status, got.body)
		}
		seen[name] = hip.LastAPIRequest().Header.Get("Authorization")
	}
	for _, name := range []string{"scayle-eu", "scayle-us"} {
		if got := get(t, r.base+"/"+name+"/v1/echo/basket"); got.status != 200 {
			t.Fatalf("%s: %d %s", name, got.status, got.body)
		}
		seen[name] = sc.LastAPIRequest().Header.Get("Authorization")
	}
	distinct := map[string]bool{}
	for _, tok := range seen {
		distinct[tok] = true
	}
	if len(distinct) != 5 {
		t.Errorf("5 connections used %d distinct tokens; want 5", len(distinct))
	}
	if got := get(t, r.base+"/hippo-beta/entity/ms.products"); got.status != 200 || hip.LastAPIRequest().Header.Get("Authorization") != seen["hippo-beta"] {
		t.Error("hippo-beta did not use its own token")
	}

	// The admin API lists them, without secrets.
	list := get(t, r.base+"/_sidekey/admin/connections?state=connected")
	var page struct {
		Items []struct{ Name, App, Source, State string }
	}
	if err := json.Unmarshal([]byte(list.body), &page); err != nil || len(page.Items) != 5 {
		t.Fatalf("list: %d %s (%v); want 5 connected", list.status, list.body, err)
	}
	for _, tok := range seen {
		if strings.Contains(list.body, strings.TrimPrefix(tok, "Bearer ")) || strings.Contains(list.body, clientSecret) {
			t.Fatal("the admin API shows a token or secret")
		}
	}

	// Restart over the same store: all still connected, no new consent.
	before := hip.TokenRequests() + sc.TokenRequests()
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	r = start(t, cfg(), nil)
	for name := range seen {
		path := "/entity/ms.products"
		if strings.HasPrefix(name, "scayle") {
			path = "/v1/echo/basket"
		}
		if got := get(t, r.base+"/"+name+path); got.status != 200 {
			t.Errorf("%s after restart: %d %s", name, got.status, got.body)
		}
	}
	if after := hip.TokenRequests() + sc.TokenRequests(); after != before {
		t.Errorf("%d token requests after restart; want none", after-before)
	}

	// Delete one: it is unknown from then on and its token is gone.
	if got := do(t, "DELETE", r.base+"/_sidekey/admin/connections/scayle-eu", nil, nil); got.status != 200 {
		t.Fatalf("delete: %d %s", got.status, got.body)
	}
	if got := get(t, r.base+"/scayle-eu/v1/echo/basket"); got.status != 404 || got.header.Get("X-Sidekey-Error") != "unknown_tenant" {
		t.Errorf("deleted connection: %d %q; want 404 unknown_tenant", got.status, got.header.Get("X-Sidekey-Error"))
	}
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(storage, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, prefix := range []string{"tokens/", "connections/"} {
		keys, _ := st.List(context.Background(), prefix)
		for _, k := range keys {
			if strings.HasSuffix(k, "/scayle-eu") {
				t.Errorf("%s is still in the store", k)
			}
		}
		if len(keys) != 4 {
			t.Errorf("%s holds %d keys; want the 4 remaining connections", prefix, len(keys))
		}
	}
}

// TestManyConnectionsFewEngines: 1,000 connections with engine.max_active
// 100 and traffic spread over all of them — every request succeeds, memory
// holds at most 100 engines, and evictions show in the metrics.
func TestManyConnectionsFewEngines(t *testing.T) {
	sim := newSimpleStore(t, time.Hour)
	r := start(t, &config.Config{
		Engine: config.Engine{MaxActive: 100},
		Apps: map[string]*config.Tenant{"simple": {Provider: "simplestore", ClientID: clientID, ClientSecret: clientSecret,
			TokenURL: sim.TokenURL(), APIURL: sim.APIURL()}},
	}, nil)
	const n = 1000
	for i := range n {
		body := fmt.Sprintf(`{"tenant":"shop-%d","app":"simple"}`, i)
		if got := do(t, "POST", r.base+"/_sidekey/admin/connections", strings.NewReader(body), map[string]string{"Content-Type": "application/json"}); got.status != 201 {
			t.Fatalf("create shop-%d: %d %s", i, got.status, got.body)
		}
	}
	// Listing every connection reads the store; it loads no engine.
	page := get(t, r.base+"/_sidekey/admin/connections?limit=1000")
	if page.status != 200 || strings.Count(page.body, `"source": "connection"`) != 1000 {
		t.Fatalf("list: %d, %d connections", page.status, strings.Count(page.body, `"source": "connection"`))
	}
	if m := get(t, r.base+"/_sidekey/metrics").body; !strings.Contains(m, "sidekey_engines_active 0") {
		t.Error("listing connections loaded engines")
	}

	var failed, total atomic.Int64
	var wg sync.WaitGroup
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	for w := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for range 500 {
				total.Add(1)
				if !fetchOK(client, fmt.Sprintf("%s/shop-%d/v1/cart/1", r.base, rng.IntN(n))) {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if failed.Load() != 0 {
		t.Errorf("%d of %d requests failed", failed.Load(), total.Load())
	}
	m := get(t, r.base+"/_sidekey/metrics").body
	var active, retiring, evictions float64
	for _, line := range strings.Split(m, "\n") {
		fmt.Sscanf(line, "sidekey_engines_active %g", &active)
		fmt.Sscanf(line, "sidekey_engines_retiring %g", &retiring)
		fmt.Sscanf(line, "sidekey_engine_evictions_total %g", &evictions)
	}
	// Evicted engines serve their last requests for a grace period, but
	// no more of them than the bound: churn does not grow memory.
	if retiring < 1 || retiring > 64 {
		t.Errorf("sidekey_engines_retiring = %v after %v evictions; want between 1 and 64", retiring, evictions)
	}
	if active > 100 || active < 1 {
		t.Errorf("sidekey_engines_active = %v; want at most 100", active)
	}
	if evictions < 100 {
		t.Errorf("sidekey_engine_evictions_total = %v; want many (4,000 requests over 1,000 connections)", evictions)
	}
	// Evicted engines reload their token from the store, not the platform.
	if tr := sim.TokenRequests(); tr > n {
		t.Errorf("%d token requests for %d connections; want at most one each", tr, n)
	}
}

// TestIdleConnectionsAreRenewed: connections nobody uses are renewed by the
// sweep once their token is older than engine.idle_refresh, so a refresh
// token that lapses when unused never does; fresh ones are left alone.
func TestIdleConnectionsAreRenewed(t *testing.T) {
	hip := providertest.NewStoreHippo(providertest.SimOptions{ClientID: clientID, ClientSecret: clientSecret})
	t.Cleanup(hip.Close)
	storage := fileStore(t)
	cfg := func() *config.Config {
		return &config.Config{Storage: storage, Apps: map[string]*config.Tenant{
			"hippo-app": {Provider: "storehippo", ClientID: clientID, ClientSecret: clientSecret, Scopes: []string{"read_products"},
				AuthURL: hip.AuthURL(), TokenURL: hip.TokenURL(), APIURL: hip.APIURL()},
		}}
	}
	r := start(t, cfg(), nil)
	connect(t, r.base, "hippo-app", "idle-a", "store=a")
	connect(t, r.base, "hippo-app", "idle-b", "store=b")
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	r = start(t, cfg(), nil) // nothing loaded: both are idle
	ctx := context.Background()
	if n := r.srv.SweepIdle(ctx, time.Now().Add(-time.Hour)); n != 0 {
		t.Errorf("renewed %d fresh connections; want 0", n)
	}
	before := hip.RefreshRequests()
	if n := r.srv.SweepIdle(ctx, time.Now().Add(time.Minute)); n != 2 {
		t.Errorf("renewed %d idle connections; want 2", n)
	}
	if got := hip.RefreshRequests() - before; got != 2 {
		t.Errorf("%d refresh requests; want 2", got)
	}
	// The sweep left the active set alone: nothing it renewed was loaded.
	if m := get(t, r.base+"/_sidekey/metrics").body; !strings.Contains(m, "sidekey_engines_active 0") {
		t.Error("the idle sweep loaded the connections it renewed (sidekey_engines_active is not 0)")
	}
	for _, name := range []string{"idle-a", "idle-b"} {
		if got := get(t, r.base+"/"+name+"/entity/ms.products"); got.status != 200 {
			t.Errorf("%s after renewal: %d %s", name, got.status, got.body)
		}
	}
	m := get(t, r.base+"/_sidekey/metrics").body
	if !strings.Contains(m, "sidekey_idle_renewals_total 2") {
		t.Error("metrics lack sidekey_idle_renewals_total 2")
	}
}

package server_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sidekey/sidekey/config"
	"github.com/sidekey/sidekey/providers/providertest"
)

// platform is one consent-flow platform under test: its simulator and the
// tenant config that points at it.
type platform struct {
	name   string
	tenant *config.Tenant
	api    string // a path the simulated API answers 200 to
	tokens func() int64
	revoke func()
}

func platforms(t *testing.T) []platform {
	t.Helper()
	opts := providertest.SimOptions{ClientID: clientID, ClientSecret: clientSecret}
	ist := providertest.NewIstores(opts)
	hip := providertest.NewStoreHippo(opts)
	sc := providertest.NewSCAYLE(providertest.SCAYLEOptions{SimOptions: opts, ShopID: "1001", ShopSecret: "shop-secret-do-not-leak", IdpKey: "google"})
	gen := providertest.NewOAuth2(opts)
	t.Cleanup(func() { ist.Close(); hip.Close(); sc.Close(); gen.Close() })
	return []platform{
		{"istores", &config.Tenant{Provider: "istores", ClientID: clientID, ClientSecret: clientSecret,
			Scopes: []string{"products:read"}, AuthURL: ist.AuthURL(), TokenURL: ist.TokenURL(), APIURL: ist.APIURL(),
			RateLimit: &config.RateLimit{RPS: 0}}, "/products/10/1", ist.TokenRequests, ist.RevokeAll},
		{"storehippo", &config.Tenant{Provider: "storehippo", Store: "acme", ClientID: clientID, ClientSecret: clientSecret,
			Scopes: []string{"read_products"}, AuthURL: hip.AuthURL(), TokenURL: hip.TokenURL(), APIURL: hip.APIURL(),
			RateLimit: &config.RateLimit{RPS: 0}}, "/entity/ms.products", hip.TokenRequests, hip.RevokeAll},
		{"scayle", &config.Tenant{Provider: "scayle", TenantSpace: "acme", ShopID: "1001", IdpKey: "google",
			ClientID: clientID, ClientSecret: clientSecret, ShopSecret: "shop-secret-do-not-leak",
			AuthURL: sc.AuthURL(), TokenURL: sc.TokenURL(), APIURL: sc.APIURL()}, "/v1/echo/basket", sc.TokenRequests, sc.RevokeAll},
		{"oauth2", &config.Tenant{Provider: "oauth2", Grant: "authorization_code", ClientID: clientID, ClientSecret: clientSecret,
			AuthURL: gen.AuthURL(), TokenURL: gen.TokenURL(), APIURL: gen.APIURL()}, "/v1/items", gen.TokenRequests, gen.RevokeAll},
	}
}

// platformNamed returns the platform called name from platforms.
func platformNamed(t *testing.T, name string) platform {
	t.Helper()
	for _, p := range platforms(t) {
		if p.name == name {
			return p
		}
	}
	t.Fatalf("no platform %q", name)
	return platform{}
}

// consentClient follows redirects through the simulator's consent page but
// stops before sidekey's callback, so a test can inspect or replay it.
func callbackURL(t *testing.T, base, tenant string) string {
	t.Helper()
	c := &http.Client{CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if strings.HasSuffix(req.URL.Path, "/_sidekey/oauth/callback") {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	resp, err := c.Get(base + "/_sidekey/oauth/connect/" + tenant)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.Contains(loc, "/_sidekey/oauth/callback") {
		t.Fatalf("consent for %s ended with %d %q; want a redirect to the callback", tenant, resp.StatusCode, loc)
	}
	return loc
}

// fileStore is a file store config in a fresh directory, so a test can
// restart sidekey over the same tokens.
func fileStore(t *testing.T) config.Storage {
	dir := t.TempDir()
	return config.Storage{Type: "file", Path: dir, KeyFile: filepath.Join(dir, "key")}
}

func TestConsentFlowsEndToEndAndSurviveRestart(t *testing.T) {
	storage := fileStore(t)
	ps := platforms(t)
	tenants := func() map[string]*config.Tenant {
		m := map[string]*config.Tenant{}
		for _, p := range ps {
			c := *p.tenant
			m[p.name] = &c
		}
		return m
	}
	r := start(t, &config.Config{Storage: storage, Tenants: tenants()}, nil)
	for _, p := range ps {
		got := get(t, r.base+"/"+p.name+p.api)
		if got.status != 503 || got.header.Get("X-Sidekey-Error") != "consent_required" ||
			!strings.Contains(got.body, "/_sidekey/oauth/connect/"+p.name) {
			t.Errorf("%s before consent: %d %q %s; want 503 consent_required naming the connect URL",
				p.name, got.status, got.header.Get("X-Sidekey-Error"), got.body)
		}
		cb := callbackURL(t, r.base, p.name)
		done := do(t, "GET", cb, nil, map[string]string{"Accept": "application/json"})
		if done.status != 200 || !strings.Contains(done.body, `"connected"`) {
			t.Fatalf("%s callback: %d %s", p.name, done.status, done.body)
		}
		if got := get(t, r.base+"/"+p.name+p.api); got.status != 200 {
			t.Errorf("%s after consent: %d %s", p.name, got.status, got.body)
		}
		// The same callback again is a replay.
		if again := do(t, "GET", cb, nil, map[string]string{"Accept": "application/json"}); again.status != 400 {
			t.Errorf("%s replayed callback: %d %s; want 400", p.name, again.status, again.body)
		}
	}
	before := map[string]int64{}
	for _, p := range ps {
		before[p.name] = p.tokens()
	}
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}

	r2 := start(t, &config.Config{Storage: storage, Tenants: tenants()}, nil)
	for _, p := range ps {
		if got := get(t, r2.base+"/"+p.name+p.api); got.status != 200 {
			t.Errorf("%s after restart: %d %s; want 200 with no new consent", p.name, got.status, got.body)
		}
		if n := p.tokens(); n != before[p.name] {
			t.Errorf("%s: %d token requests after restart; want none (the stored token is valid)", p.name, n-before[p.name])
		}
	}
	st := get(t, r2.base+"/_sidekey/status")
	if strings.Contains(st.body, "shop-secret-do-not-leak") || strings.Contains(st.body, clientSecret) {
		t.Error("a secret reached /_sidekey/status")
	}
}

func TestForgedAndStaleCallbacksChangeNothing(t *testing.T) {
	sc := platformNamed(t, "scayle")
	now := atomic.Pointer[time.Time]{}
	t0 := time.Now()
	now.Store(&t0)
	r := startWithClock(t, &config.Config{Tenants: map[string]*config.Tenant{"scayle": sc.tenant}}, func() time.Time { return *now.Load() })

	cb := callbackURL(t, r.base, "scayle")
	u, _ := url.Parse(cb)
	q := u.Query()
	state := q.Get("state")
	payload, err := base64.StdEncoding.DecodeString(state)
	if err != nil {
		payload, _ = base64.RawURLEncoding.DecodeString(state)
	}
	var claims map[string]any
	_ = json.Unmarshal(payload, &claims)
	foreign := map[string]any{}
	for k, v := range claims {
		foreign[k] = v
	}
	foreign["clientId"] = "someone-else"
	fb, _ := json.Marshal(foreign)

	bad := []struct {
		name  string
		query url.Values
	}{
		{"no state", url.Values{"code": {q.Get("code")}}},
		{"forged state", url.Values{"code": {q.Get("code")}, "state": {"bm90LW91cnM"}}},
		{"random nonce", url.Values{"code": {q.Get("code")}, "state": {strings.Repeat("A", 43)}}},
		{"foreign client", url.Values{"code": {q.Get("code")}, "state": {base64.StdEncoding.EncodeToString(fb)}}},
		{"no code", url.Values{"state": {state}}},
		{"platform error", url.Values{"error": {"access_denied"}, "state": {state}}},
	}
	for _, b := range bad {
		got := get(t, r.base+"/_sidekey/oauth/callback?"+b.query.Encode())
		if got.status != 400 {
			t.Errorf("%s: %d %s; want 400", b.name, got.status, got.body)
		}
	}
	if got := get(t, r.base+"/scayle"+sc.api); got.header.Get("X-Sidekey-Error") != "consent_required" {
		t.Errorf("after rejected callbacks the tenant is %q; want still consent_required", got.header.Get("X-Sidekey-Error"))
	}

	// A fresh flow, answered after its 10 minutes ran out.
	cb2 := callbackURL(t, r.base, "scayle")
	later := t0.Add(11 * time.Minute)
	now.Store(&later)
	if got := get(t, cb2); got.status != 400 || !strings.Contains(got.body, "expired") {
		t.Errorf("expired consent: %d %s; want 400 expired", got.status, got.body)
	}
}

// TestSCAYLERotationUnderTraffic: 3-second tokens with rotating refresh
// tokens for 10 s of traffic: no failed request, no refresh token used twice.
func TestSCAYLERotationUnderTraffic(t *testing.T) {
	opts := providertest.SimOptions{ClientID: clientID, ClientSecret: clientSecret, TokenLifetime: 3 * time.Second}
	sc := providertest.NewSCAYLE(providertest.SCAYLEOptions{SimOptions: opts, ShopID: "1001", ShopSecret: "s", IdpKey: "google"})
	t.Cleanup(sc.Close)
	tenant := &config.Tenant{Provider: "scayle", TenantSpace: "acme", ShopID: "1001", IdpKey: "google",
		ClientID: clientID, ClientSecret: clientSecret, ShopSecret: "s",
		AuthURL: sc.AuthURL(), TokenURL: sc.TokenURL(), APIURL: sc.APIURL()}
	r := start(t, &config.Config{Tenants: map[string]*config.Tenant{"shop": tenant}}, nil)
	if got := get(t, callbackURL(t, r.base, "shop")); got.status != 200 {
		t.Fatalf("consent: %d %s", got.status, got.body)
	}
	var failures, total atomic.Int64
	deadline := time.Now().Add(10 * time.Second)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				total.Add(1)
				if !fetchOK(http.DefaultClient, r.base+"/shop/v1/echo/basket") {
					failures.Add(1)
				}
			}
		})
	}
	wg.Wait()
	t.Logf("%d requests, %d refreshes, %d refresh-token reuses", total.Load(), sc.RefreshRequests(), sc.RefreshReuse())
	if failures.Load() != 0 {
		t.Errorf("%d of %d requests failed", failures.Load(), total.Load())
	}
	if sc.RefreshReuse() != 0 {
		t.Errorf("refresh tokens reused %d times; want 0", sc.RefreshReuse())
	}
	if n := sc.RefreshRequests(); n < 4 || n > 10 {
		t.Errorf("%d refreshes in 10 s of 3-second tokens; want about 6", n)
	}
	if h := sc.LastAPIRequest().Header.Get("X-Shop-Id"); h != "1001" {
		t.Errorf("X-Shop-Id = %q; want 1001", h)
	}
}

func TestStoreHippoRefreshesOnRevocationThenNeedsConsent(t *testing.T) {
	hip := platformNamed(t, "storehippo")
	r := start(t, &config.Config{Tenants: map[string]*config.Tenant{"hippo": hip.tenant}}, nil)
	if got := get(t, callbackURL(t, r.base, "hippo")); got.status != 200 {
		t.Fatalf("consent: %d", got.status)
	}
	if got := get(t, r.base+"/hippo"+hip.api); got.status != 200 {
		t.Fatalf("first request: %d", got.status)
	}
	hip.revoke() // the permanent token dies: sidekey refreshes once and replays
	if got := get(t, r.base+"/hippo"+hip.api); got.status != 200 {
		t.Errorf("after revocation: %d %s; want 200 via the refresh token", got.status, got.body)
	}
}

func TestDisconnectForgetsTheTenant(t *testing.T) {
	sc := platformNamed(t, "scayle")
	r := start(t, &config.Config{Tenants: map[string]*config.Tenant{"shop": sc.tenant}}, nil)
	if got := get(t, callbackURL(t, r.base, "shop")); got.status != 200 {
		t.Fatalf("consent: %d", got.status)
	}
	if got := get(t, r.base+"/shop"+sc.api); got.status != 200 {
		t.Fatalf("request: %d", got.status)
	}
	got := do(t, "DELETE", r.base+"/_sidekey/admin/connections/shop", nil, nil)
	if got.status != 200 || !strings.Contains(got.body, `"revoked": true`) {
		t.Fatalf("disconnect: %d %s; want revoked", got.status, got.body)
	}
	if got := get(t, r.base+"/shop"+sc.api); got.header.Get("X-Sidekey-Error") != "consent_required" {
		t.Errorf("after disconnect: %d %q; want consent_required", got.status, got.header.Get("X-Sidekey-Error"))
	}
}

package server_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/sidekey/sidekey/config"
	"github.com/sidekey/sidekey/internal/testwait"
	"github.com/sidekey/sidekey/providers/providertest"
	"github.com/sidekey/sidekey/server"
	"github.com/sidekey/sidekey/store"
)

// shopReturn is the app page customers come back to; the browser stops
// there (nothing listens on it).
const shopReturn = "https://shop.example/account"

// newCustomerSCAYLE starts a SCAYLE simulator for client id with tokens of
// the given lifetime.
func newCustomerSCAYLE(t *testing.T, id string, lifetime time.Duration) *providertest.SCAYLE {
	t.Helper()
	sc := providertest.NewSCAYLE(providertest.SCAYLEOptions{
		SimOptions: providertest.SimOptions{ClientID: id, ClientSecret: clientSecret, TokenLifetime: lifetime},
		ShopID:     "1001", ShopSecret: "shop-secret-do-not-leak", IdpKey: "google",
	})
	t.Cleanup(sc.Close)
	return sc
}

// sessionsTenant is a SCAYLE tenant on sc holding customer sessions.
func sessionsTenant(sc *providertest.SCAYLE, id string) *config.Tenant {
	return &config.Tenant{Provider: "scayle", TenantSpace: "acme", ShopID: "1001", IdpKey: "google",
		ClientID: id, ClientSecret: clientSecret, ShopSecret: "shop-secret-do-not-leak",
		AuthURL: sc.AuthURL(), TokenURL: sc.TokenURL(), APIURL: sc.APIURL(),
		Sessions: &config.Sessions{ReturnTo: []string{shopReturn}}}
}

// customerBrowser is a customer's browser: it keeps cookies and follows redirects
// until it reaches an app (a host under .example) or stop says so.
func customerBrowser(stop func(*http.Request) bool) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		if strings.HasSuffix(req.URL.Hostname(), ".example") || (stop != nil && stop(req)) {
			return http.ErrUseLastResponse
		}
		return nil
	}}
}

// login runs one customer's login through sidekey and the simulator and
// returns the ticket the browser brought back to return_to.
func login(t *testing.T, base, tenant, returnTo string) string {
	t.Helper()
	resp, err := customerBrowser(nil).Get(base + "/_sidekey/login/" + tenant + "?return_to=" + url.QueryEscape(returnTo))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || err != nil || !strings.HasPrefix(loc.String(), returnTo) {
		t.Fatalf("login to %s ended with %d %q; want 302 to %s", tenant, resp.StatusCode, resp.Header.Get("Location"), returnTo)
	}
	ticket := loc.Query().Get("sidekey_ticket")
	if ticket == "" {
		t.Fatalf("the return_to %q carries no sidekey_ticket", loc)
	}
	return ticket
}

// redeem trades ticket for a session handle, with optional headers.
func redeem(t *testing.T, base, ticket string, header map[string]string) (reply, string) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"ticket": ticket})
	got := do(t, "POST", base+"/_sidekey/sessions/redeem", strings.NewReader(string(body)), header)
	var out struct {
		Session string    `json:"session"`
		Tenant  string    `json:"tenant"`
		Expiry  time.Time `json:"expiry"`
	}
	_ = json.Unmarshal([]byte(got.body), &out)
	return got, out.Session
}

// newSession logs a customer in and redeems the ticket.
func newSession(t *testing.T, base, tenant string) string {
	t.Helper()
	got, s := redeem(t, base, login(t, base, tenant, shopReturn+"/orders?x=1"), nil)
	if got.status != 200 || s == "" {
		t.Fatalf("redeem: %d %s", got.status, got.body)
	}
	return s
}

// whoAmI asks the simulated Checkout API whose token a session carries.
func whoAmI(t *testing.T, base, tenant, session string) (int, string) {
	t.Helper()
	got := do(t, "GET", base+"/"+tenant+"/v1/customers/me", nil, map[string]string{"Sidekey-Session": session})
	var me struct {
		Subject string `json:"subject"`
	}
	_ = json.Unmarshal([]byte(got.body), &me)
	return got.status, me.Subject
}

// TestSessionsTwoCustomersEndToEnd: two customers log in; each session
// reaches the API as its own customer; 2-second tokens rotate for both
// under traffic with no failure and no refresh token used twice; both
// sessions survive a restart on the same file store; logging one out
// revokes exactly its grant and the other goes on.
func TestSessionsTwoCustomersEndToEnd(t *testing.T) {
	sc := newCustomerSCAYLE(t, clientID, 2*time.Second)
	storage := fileStore(t)
	cfg := func() *config.Config {
		return &config.Config{Storage: storage, Tenants: map[string]*config.Tenant{"shop": sessionsTenant(sc, clientID)}}
	}
	r := start(t, cfg(), nil)
	alice, bob := newSession(t, r.base, "shop"), newSession(t, r.base, "shop")
	if alice == bob {
		t.Fatal("two logins got the same session handle")
	}
	for _, c := range []struct{ session, subject string }{{alice, "customer-1"}, {bob, "customer-2"}} {
		if status, sub := whoAmI(t, r.base, "shop", c.session); status != 200 || sub != c.subject {
			t.Errorf("session of %s: %d as %q; want 200 as %s", c.subject, status, sub, c.subject)
		}
	}
	last := sc.LastAPIRequest()
	if last.Header.Get("Sidekey-Session") != "" || last.Header.Get("X-Shop-Id") != "1001" {
		t.Errorf("upstream saw Sidekey-Session %q and X-Shop-Id %q; want none and 1001",
			last.Header.Get("Sidekey-Session"), last.Header.Get("X-Shop-Id"))
	}
	if got := get(t, r.base+"/shop/v1/customers/me"); got.status != 401 || got.header.Get("X-Sidekey-Error") != "session_required" {
		t.Errorf("no session header: %d %q; want 401 session_required", got.status, got.header.Get("X-Sidekey-Error"))
	}

	// Traffic over several 2-second token lifetimes, both customers at once.
	refreshesBefore := sc.RefreshRequests()
	var failures, total atomic.Int64
	deadline := time.Now().Add(7 * time.Second)
	var wg sync.WaitGroup
	for _, c := range []struct{ session, subject string }{{alice, "customer-1"}, {bob, "customer-2"}, {alice, "customer-1"}, {bob, "customer-2"}} {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				total.Add(1)
				if status, sub := whoAmI(t, r.base, "shop", c.session); status != 200 || sub != c.subject {
					failures.Add(1)
				}
			}
		})
	}
	wg.Wait()
	t.Logf("%d requests, %d refreshes, %d refresh-token reuses", total.Load(), sc.RefreshRequests()-refreshesBefore, sc.RefreshReuse())
	if failures.Load() != 0 {
		t.Errorf("%d of %d requests failed or reached the wrong customer", failures.Load(), total.Load())
	}
	if sc.RefreshReuse() != 0 {
		t.Errorf("refresh tokens reused %d times; want 0", sc.RefreshReuse())
	}
	if n := sc.RefreshRequests() - refreshesBefore; n < 4 {
		t.Errorf("%d refreshes for two customers over 7 s of 2-second tokens; want at least 4", n)
	}

	// Restart on the same store: both sessions still work.
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	r = start(t, cfg(), nil)
	for _, c := range []struct{ session, subject string }{{alice, "customer-1"}, {bob, "customer-2"}} {
		if status, sub := whoAmI(t, r.base, "shop", c.session); status != 200 || sub != c.subject {
			t.Errorf("after restart, session of %s: %d as %q; want 200", c.subject, status, sub)
		}
	}
	testwait.For(t, "the session count", func() bool { return strings.Contains(get(t, r.base+"/_sidekey/status").body, `"sessions": 2`) })
	// The tenant has no token of its own to connect: it is in state
	// sessions, never consent_required (no webhook, no console prompt).
	if body := get(t, r.base+"/_sidekey/status").body; !strings.Contains(body, `"state": "sessions"`) || strings.Contains(body, "consent_required") {
		t.Errorf("status of a sessions tenant: %s; want state sessions", body)
	}

	// Alice logs out: her grant is revoked at SCAYLE, Bob's is not.
	if sc.LiveRefreshTokensOf("customer-1") != 1 || sc.LiveRefreshTokensOf("customer-2") != 1 {
		t.Fatalf("live refresh tokens before logout: %d, %d; want 1 each", sc.LiveRefreshTokensOf("customer-1"), sc.LiveRefreshTokensOf("customer-2"))
	}
	out := do(t, "DELETE", r.base+"/_sidekey/sessions/"+alice, nil, nil)
	if out.status != 200 || !strings.Contains(out.body, `"revoked": true`) {
		t.Fatalf("logout: %d %s; want 200 revoked", out.status, out.body)
	}
	var ended struct {
		LogoutURL string `json:"logout_url"`
	}
	_ = json.Unmarshal([]byte(out.body), &ended)
	if !strings.HasPrefix(ended.LogoutURL, sc.URL()+"/v1/auth/logout/redirect?") {
		t.Errorf("logout_url %q; want SCAYLE's /v1/auth/logout/redirect", ended.LogoutURL)
	}
	resp, err := customerBrowser(nil).Get(ended.LogoutURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != shopReturn || sc.LogoutRedirects() != 1 {
		t.Errorf("browser logout: %d to %q (%d accepted); want 302 to %s", resp.StatusCode, resp.Header.Get("Location"), sc.LogoutRedirects(), shopReturn)
	}
	if a, b := sc.LiveRefreshTokensOf("customer-1"), sc.LiveRefreshTokensOf("customer-2"); a != 0 || b != 1 {
		t.Errorf("live refresh tokens after Alice's logout: %d, %d; want 0 and 1", a, b)
	}
	if got := do(t, "GET", r.base+"/shop/v1/customers/me", nil, map[string]string{"Sidekey-Session": alice}); got.status != 401 ||
		got.header.Get("X-Sidekey-Error") != "session_unknown" {
		t.Errorf("Alice's session after logout: %d %q; want 401 session_unknown", got.status, got.header.Get("X-Sidekey-Error"))
	}
	if again := do(t, "DELETE", r.base+"/_sidekey/sessions/"+alice, nil, nil); again.status != 401 {
		t.Errorf("second logout: %d; want 401 session_unknown", again.status)
	}
	for range 3 {
		if status, sub := whoAmI(t, r.base, "shop", bob); status != 200 || sub != "customer-2" {
			t.Errorf("Bob after Alice's logout: %d as %q; want 200", status, sub)
		}
	}
	if v := get(t, r.base+"/_sidekey/admin/connections/shop"); !strings.Contains(v.body, `"sessions": 1`) {
		t.Errorf("the admin API (sidekey tenants) shows no session count for shop: %s", v.body)
	}
	st := get(t, r.base+"/_sidekey/status").body
	metrics := get(t, r.base+"/_sidekey/metrics").body
	if !strings.Contains(st, `"sessions": 1`) || !strings.Contains(metrics, `sidekey_sessions{tenant="shop"} 1`) {
		t.Errorf("after one logout, status and metrics should count 1 session:\n%s\n%s", st, grepLines(metrics, "sidekey_sessions"))
	}
	for _, secret := range []string{alice, bob, clientSecret, "shop-secret-do-not-leak"} {
		if strings.Contains(st, secret) || strings.Contains(metrics, secret) {
			t.Error("a session handle or secret reached status or metrics")
		}
	}
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for line := range strings.Lines(s) {
		if strings.Contains(line, sub) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "")
}

// startOn runs a Server for cfg over st with clock now.
func startOn(t *testing.T, cfg *config.Config, st store.Store, now func() time.Time) string {
	t.Helper()
	base, _ := startServerOn(t, cfg, st, now)
	return base
}

// startServerOn is startOn, also returning the Server.
func startServerOn(t *testing.T, cfg *config.Config, st store.Store, now func() time.Time) (string, *server.Server) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listen, cfg.PublicURL = ln.Addr().String(), "http://"+ln.Addr().String()
	cfg.Storage = config.Storage{Type: "memory"}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	srv, err := server.New(server.Options{Config: cfg, Logger: zap.NewNop(), Store: st, Now: now})
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.RunListener(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	return "http://" + ln.Addr().String(), srv
}

// keysUnder lists st's keys below prefix.
func keysUnder(t *testing.T, st store.Store, prefix string) []string {
	t.Helper()
	keys, err := st.List(context.Background(), prefix)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func callerKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// TestSessionsRefuseBadInput: a return_to outside the list, forged,
// replayed and expired tickets, a handle of another tenant, a caller not
// allowed the tenant, and a callback whose state belongs to another
// tenant's login — each a clear 4xx that stores nothing.
func TestSessionsRefuseBadInput(t *testing.T) {
	shopSim, otherSim := newCustomerSCAYLE(t, clientID, time.Hour), newCustomerSCAYLE(t, "other-client", time.Hour)
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	st := store.NewMemory()
	cfg := &config.Config{
		Tenants: map[string]*config.Tenant{"shop": sessionsTenant(shopSim, clientID), "other": sessionsTenant(otherSim, "other-client")},
		Callers: map[string]*config.Caller{
			"shop-app":  {KeySHA256: callerKey("shop-app-key"), Tenants: []string{"shop"}},
			"other-app": {KeySHA256: callerKey("other-app-key"), Tenants: []string{"other"}},
		},
	}
	base := startOn(t, cfg, st, now)
	asShop := map[string]string{"Proxy-Authorization": "Bearer shop-app-key"}
	asOther := map[string]string{"Proxy-Authorization": "Bearer other-app-key"}

	// return_to outside the allow-list: 400, never a redirect, nothing stored.
	for _, bad := range []string{"https://shop.example.evil/account", "https://shop.example/accountX", "http://shop.example/account",
		"https://evil.example/account", "https://shop.example@evil.example/account", "//evil.example/account", "https://shop.example/account/../admin", ""} {
		got := do(t, "GET", base+"/_sidekey/login/shop?return_to="+url.QueryEscape(bad), nil, nil)
		if got.status != 400 || got.header.Get("Location") != "" || got.header.Get("X-Sidekey-Error") != "return_to_not_allowed" {
			t.Errorf("return_to %q: %d Location %q %q; want 400 return_to_not_allowed without Location", bad, got.status, got.header.Get("Location"), got.header.Get("X-Sidekey-Error"))
		}
	}
	if keys := keysUnder(t, st, "consent/"); len(keys) != 0 {
		t.Errorf("refused logins stored %d flows", len(keys))
	}

	// Forged and malformed tickets.
	for _, forged := range []string{"", "not-a-ticket", strings.Repeat("A", 43), "../../tokens/shop"} {
		if got, s := redeem(t, base, forged, asShop); got.status != 400 || s != "" {
			t.Errorf("forged ticket %q: %d %s; want 400", forged, got.status, got.body)
		}
	}

	// A caller not allowed the ticket's tenant is refused and the ticket stays usable.
	ticket := login(t, base, "shop", shopReturn)
	if got, s := redeem(t, base, ticket, asOther); got.status != 403 || s != "" {
		t.Errorf("redeem by another tenant's caller: %d %s; want 403 caller_forbidden", got.status, got.body)
	}
	if got, s := redeem(t, base, ticket, nil); got.status != 401 || s != "" {
		t.Errorf("redeem without a caller key: %d %s; want 401", got.status, got.body)
	}
	got, session := redeem(t, base, ticket, asShop)
	if got.status != 200 || session == "" {
		t.Fatalf("redeem by the tenant's caller: %d %s", got.status, got.body)
	}
	if again, s := redeem(t, base, ticket, asShop); again.status != 400 || s != "" || again.header.Get("X-Sidekey-Error") != "ticket_invalid" {
		t.Errorf("replayed ticket: %d %s; want 400 ticket_invalid", again.status, again.body)
	}

	// An expired ticket (61 s later) is refused, and creates no session.
	late := login(t, base, "shop", shopReturn)
	clock.Add(int64(61 * time.Second))
	if got, s := redeem(t, base, late, asShop); got.status != 400 || s != "" || !strings.Contains(got.body, "expired") {
		t.Errorf("expired ticket: %d %s; want 400 naming the expiry", got.status, got.body)
	}
	if a, b := shopSim.LiveRefreshTokensOf("customer-1"), shopSim.LiveRefreshTokensOf("customer-2"); a != 1 || b != 0 {
		t.Errorf("live refresh tokens: redeemed login %d, expired login %d; want 1 and 0 (the orphaned grant revoked)", a, b)
	}
	if n := len(keysUnder(t, st, "sessions/")); n != 1 {
		t.Errorf("%d sessions stored; want 1", n)
	}
	clock.Add(-int64(61 * time.Second)) // back in step with the simulator, which checks the consent JWT's iat

	// The session works on its tenant and is unknown on the other.
	hdr := map[string]string{"Sidekey-Session": session, "Proxy-Authorization": "Bearer shop-app-key"}
	if got := do(t, "GET", base+"/shop/v1/customers/me", nil, hdr); got.status != 200 {
		t.Errorf("session on its tenant: %d %s", got.status, got.body)
	}
	hdr["Proxy-Authorization"] = "Bearer other-app-key"
	if got := do(t, "GET", base+"/other/v1/customers/me", nil, hdr); got.status != 401 || got.header.Get("X-Sidekey-Error") != "session_unknown" {
		t.Errorf("session on another tenant: %d %q; want 401 session_unknown", got.status, got.header.Get("X-Sidekey-Error"))
	}
	if got := do(t, "DELETE", base+"/_sidekey/sessions/"+session, nil, asOther); got.status != 403 {
		t.Errorf("logout by another tenant's caller: %d %s; want 403", got.status, got.body)
	}
	if got := do(t, "DELETE", base+"/_sidekey/sessions/"+session+"?return_to="+url.QueryEscape("https://evil.example/"), nil, asShop); got.status != 400 {
		t.Errorf("logout returning to a foreign page: %d %s; want 400", got.status, got.body)
	}
	for _, bad := range []string{"nope", strings.Repeat("A", 43)} {
		hdr["Sidekey-Session"] = bad
		if got := do(t, "GET", base+"/other/v1/customers/me", nil, hdr); got.status != 401 || got.header.Get("X-Sidekey-Error") != "session_unknown" {
			t.Errorf("session %q: %d %q; want 401 session_unknown", bad, got.status, got.header.Get("X-Sidekey-Error"))
		}
	}

	// A callback carrying the shop login's code with the state of a login
	// of "other" is refused before any exchange.
	loginRedirect := func(tenant string) *url.URL {
		resp, err := customerBrowser(func(*http.Request) bool { return true }).Get(base + "/_sidekey/login/" + tenant + "?return_to=" + url.QueryEscape(shopReturn))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		u, _ := url.Parse(resp.Header.Get("Location"))
		return u
	}
	otherNonce := jwtNonce(t, loginRedirect("other").Query().Get("jwt"))
	resp, err := customerBrowser(func(req *http.Request) bool { return strings.HasSuffix(req.URL.Path, "/_sidekey/oauth/callback") }).
		Get(base + "/_sidekey/login/shop?return_to=" + url.QueryEscape(shopReturn))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cb, _ := url.Parse(resp.Header.Get("Location"))
	var payload map[string]any
	raw, err := base64.StdEncoding.DecodeString(cb.Query().Get("state"))
	if err != nil || json.Unmarshal(raw, &payload) != nil {
		t.Fatalf("shop login: %d, callback %q: state not base64 JSON", resp.StatusCode, cb)
	}
	payload["nonce"] = otherNonce
	forgedState, _ := json.Marshal(payload)
	q := cb.Query()
	q.Set("state", base64.StdEncoding.EncodeToString(forgedState))
	cb.RawQuery = q.Encode()
	ticketsBefore := len(keysUnder(t, st, "session-tickets/"))
	if got := do(t, "GET", cb.String(), nil, nil); got.status != 400 || got.header.Get("Location") != "" {
		t.Errorf("callback with another tenant's login state: %d %q; want 400 without redirect", got.status, got.header.Get("Location"))
	}
	if n := len(keysUnder(t, st, "session-tickets/")); n != ticketsBefore {
		t.Errorf("the refused callback stored %d tickets", n-ticketsBefore)
	}
	if n := len(keysUnder(t, st, "sessions/")); n != 1 {
		t.Errorf("%d sessions stored after the refused callback; want 1", n)
	}
}

// jwtNonce reads the nonce claim of a consent JWT (unverified).
func jwtNonce(t *testing.T, token string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", token)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Nonce string `json:"nonce"`
	}
	_ = json.Unmarshal(raw, &claims)
	return claims.Nonce
}

// TestSessionsOnReplicasSharingRedis: two replicas over one real Redis. A
// customer logs in through one and the app redeems on the other; 2-second
// tokens rotate under traffic spread over both replicas for two customers
// with no failure and no refresh token used twice (Redis lock and
// compare-and-swap: one refresh per session fleet-wide); a logout on one
// replica ends the session on both and leaves the other customer alone.
func TestSessionsOnReplicasSharingRedis(t *testing.T) {
	sc := newCustomerSCAYLE(t, clientID, 2*time.Second)
	rdb := startRedis(t)
	keyFile := filepath.Join(t.TempDir(), "store-key")
	storeKey := make([]byte, 32)
	_, _ = rand.Read(storeKey)
	writeAtomic(t, keyFile, []byte(hex.EncodeToString(storeKey)))
	replica := func() *running {
		return start(t, &config.Config{
			Storage: config.Storage{Type: "redis", KeyFile: keyFile, Redis: config.Redis{Addr: rdb.addr}},
			Tenants: map[string]*config.Tenant{"shop": sessionsTenant(sc, clientID)},
		}, nil)
	}
	a, b := replica(), replica()
	redeemOn := func(r *running, ticket string) string {
		got, s := redeem(t, r.base, ticket, nil)
		if got.status != 200 || s == "" {
			t.Fatalf("redeem: %d %s", got.status, got.body)
		}
		return s
	}
	alice := redeemOn(b, login(t, a.base, "shop", shopReturn))
	bob := redeemOn(a, login(t, b.base, "shop", shopReturn))

	var failures, total atomic.Int64
	deadline := time.Now().Add(7 * time.Second)
	var wg sync.WaitGroup
	for _, r := range []*running{a, b} {
		for _, c := range []struct{ session, subject string }{{alice, "customer-1"}, {bob, "customer-2"}} {
			wg.Go(func() {
				for time.Now().Before(deadline) {
					total.Add(1)
					if status, sub := whoAmI(t, r.base, "shop", c.session); status != 200 || sub != c.subject {
						failures.Add(1)
					}
				}
			})
		}
	}
	wg.Wait()
	t.Logf("%d requests over 2 replicas, %d refreshes, %d refresh-token reuses", total.Load(), sc.RefreshRequests(), sc.RefreshReuse())
	if failures.Load() != 0 {
		t.Errorf("%d of %d requests failed or reached the wrong customer", failures.Load(), total.Load())
	}
	if sc.RefreshReuse() != 0 {
		t.Errorf("refresh tokens reused %d times; want 0", sc.RefreshReuse())
	}
	// One refresh per session per token half-life (1 s), fleet-wide: 2
	// sessions × 7 s ≈ 14, not twice that.
	if n := sc.RefreshRequests(); n < 4 || n > 22 {
		t.Errorf("%d refreshes for 2 sessions over 7 s of 2-second tokens on 2 replicas; want about 14", n)
	}

	if out := do(t, "DELETE", b.base+"/_sidekey/sessions/"+alice, nil, nil); out.status != 200 || !strings.Contains(out.body, `"revoked": true`) {
		t.Fatalf("logout on replica b: %d %s", out.status, out.body)
	}
	if got := do(t, "GET", a.base+"/shop/v1/customers/me", nil, map[string]string{"Sidekey-Session": alice}); got.status != 401 ||
		got.header.Get("X-Sidekey-Error") != "session_unknown" {
		t.Errorf("Alice on replica a after logout on b: %d %q %s; want 401 session_unknown", got.status, got.header.Get("X-Sidekey-Error"), got.body)
	}
	if n := sc.LiveRefreshTokensOf("customer-2"); n != 1 {
		t.Errorf("Bob has %d live refresh tokens after Alice's logout; want 1", n)
	}
	for _, r := range []*running{a, b} {
		if status, sub := whoAmI(t, r.base, "shop", bob); status != 200 || sub != "customer-2" {
			t.Errorf("Bob after Alice's logout: %d as %q; want 200", status, sub)
		}
	}
}

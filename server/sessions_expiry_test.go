package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/sidekey/sidekey/config"
	"github.com/sidekey/sidekey/internal/testwait"
	"github.com/sidekey/sidekey/server"
	"github.com/sidekey/sidekey/store"
)

// TestSessionsEndIdleOrWithTheirGrant: the sweep deletes a session unused
// for idle_ttl and keeps one in use; a session whose refresh token the
// platform refuses answers 401 session_expired and is forgotten; the store
// holds no handle or ticket anywhere, in keys or values.
func TestSessionsEndIdleOrWithTheirGrant(t *testing.T) {
	sc := newCustomerSCAYLE(t, clientID, 24*time.Hour) // outlives the test's clock jumps
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	st := store.NewMemory()
	tenant := sessionsTenant(sc, clientID)
	tenant.Sessions.IdleTTL = config.Duration(time.Hour)
	base := startOn(t, &config.Config{Tenants: map[string]*config.Tenant{"shop": tenant}}, st, now)

	ticket := login(t, base, "shop", shopReturn)
	_, idle := redeem(t, base, ticket, nil)
	busy := newSession(t, base, "shop")
	if idle == "" {
		t.Fatal("no session")
	}
	for _, key := range keysUnder(t, st, "") {
		v, _ := st.Load(context.Background(), key)
		for _, secret := range []string{idle, busy, ticket} {
			if strings.Contains(key, secret) || strings.Contains(string(v), secret) {
				t.Errorf("the store holds a session handle or ticket in %s", key)
			}
		}
	}

	// 50 minutes on, the busy session is used: its last use is stored.
	clock.Add(int64(50 * time.Minute))
	if status, _ := whoAmI(t, base, "shop", busy); status != 200 {
		t.Fatalf("busy session: %d", status)
	}
	testwait.For(t, "the busy session's last use to be stored", func() bool {
		for _, key := range keysUnder(t, st, "sessions/shop/") {
			b, _ := st.Load(context.Background(), key)
			var rec struct {
				LastUsed time.Time `json:"last_used"`
			}
			if json.Unmarshal(b, &rec) == nil && rec.LastUsed.Equal(now().UTC().Truncate(0)) {
				return true
			}
		}
		return false
	})
	// 70 minutes after the login, the idle one is past idle_ttl.
	clock.Add(int64(20 * time.Minute))
	if got := do(t, "GET", base+"/shop/v1/customers/me", nil, map[string]string{"Sidekey-Session": idle}); got.status != 401 ||
		got.header.Get("X-Sidekey-Error") != "session_expired" {
		t.Errorf("idle session after idle_ttl: %d %q; want 401 session_expired", got.status, got.header.Get("X-Sidekey-Error"))
	}
	if n := len(keysUnder(t, st, "sessions/")); n != 1 {
		t.Errorf("%d sessions stored after the idle one ended; want 1", n)
	}
	if status, sub := whoAmI(t, base, "shop", busy); status != 200 || sub != "customer-2" {
		t.Errorf("busy session: %d as %q; want 200", status, sub)
	}

	// The platform refuses the busy session's refresh token: session_expired, and it is gone.
	sc.RevokeRefreshTokens()
	sc.ExpireAll()
	got := do(t, "GET", base+"/shop/v1/customers/me", nil, map[string]string{"Sidekey-Session": busy})
	if got.status != 401 || got.header.Get("X-Sidekey-Error") != "session_expired" {
		t.Errorf("session with a refused refresh token: %d %q %s; want 401 session_expired", got.status, got.header.Get("X-Sidekey-Error"), got.body)
	}
	if n := len(keysUnder(t, st, "sessions/")) + len(keysUnder(t, st, "session-tokens/")); n != 0 {
		t.Errorf("%d session keys left after the grant died; want 0", n)
	}
}

// TestSessionsSweepDeletesIdleSessionsAndStaleTickets drives the sweep
// directly.
func TestSessionsSweepDeletesIdleSessionsAndStaleTickets(t *testing.T) {
	sc := newCustomerSCAYLE(t, clientID, time.Hour)
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	st := store.NewMemory()
	tenant := sessionsTenant(sc, clientID)
	tenant.Sessions.IdleTTL = config.Duration(time.Hour)
	cfg := &config.Config{Tenants: map[string]*config.Tenant{"shop": tenant}}
	base, srv := startServerOn(t, cfg, st, now)
	newSession(t, base, "shop")
	login(t, base, "shop", shopReturn) // a ticket nobody redeems
	if n := len(keysUnder(t, st, "session-tickets/")); n != 1 {
		t.Fatalf("%d tickets stored; want 1", n)
	}
	if removed := srv.SweepSessions(context.Background()); removed != 0 {
		t.Errorf("a sweep of fresh sessions deleted %d", removed)
	}
	clock.Add(int64(2 * time.Hour))
	if removed := srv.SweepSessions(context.Background()); removed != 1 {
		t.Errorf("the sweep deleted %d idle sessions; want 1", removed)
	}
	if n := len(keysUnder(t, st, "sessions/")) + len(keysUnder(t, st, "session-tokens/")) + len(keysUnder(t, st, "session-tickets/")); n != 0 {
		t.Errorf("%d session keys left after the sweep; want 0", n)
	}
	if n := sc.LiveRefreshTokensOf("customer-2"); n != 0 {
		t.Errorf("the unredeemed login's grant has %d live refresh tokens after the sweep; want 0 (revoked)", n)
	}
	if got := get(t, base+"/_sidekey/metrics").body; !strings.Contains(got, `sidekey_sessions{tenant="shop"} 0`) {
		t.Errorf("metrics after the sweep:\n%s", grepLines(got, "sidekey_sessions"))
	}
}

// TestSessionsNeedAConsentFlow: sessions on a tenant whose token comes
// from client credentials is refused at start, naming the key.
func TestSessionsNeedAConsentFlow(t *testing.T) {
	sim := newSimpleStore(t, time.Hour)
	tenant := simpleTenant(sim, clientSecret)
	tenant.Sessions = &config.Sessions{ReturnTo: []string{shopReturn}}
	cfg := &config.Config{Listen: "127.0.0.1:0", Storage: config.Storage{Type: "memory"}, Tenants: map[string]*config.Tenant{"simple": tenant}}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	_, err := server.New(server.Options{Config: cfg, Logger: zap.NewNop()})
	if err == nil || !strings.Contains(err.Error(), "tenants.simple.sessions") {
		t.Fatalf("server.New: %v; want a problem at tenants.simple.sessions", err)
	}
}

// TestSessionsWithOAuth2AuthorizationCode: a generic OAuth 2.0 consent
// tenant holds customer sessions too.
func TestSessionsWithOAuth2AuthorizationCode(t *testing.T) {
	p := platformNamed(t, "oauth2")
	tenant := *p.tenant
	tenant.Sessions = &config.Sessions{ReturnTo: []string{shopReturn}}
	r := start(t, &config.Config{Tenants: map[string]*config.Tenant{"gen": &tenant}}, nil)
	s := newSession(t, r.base, "gen")
	if got := do(t, "GET", r.base+"/gen"+p.api, nil, map[string]string{"Sidekey-Session": s}); got.status != 200 {
		t.Errorf("oauth2 session: %d %s", got.status, got.body)
	}
	if got := get(t, r.base+"/gen"+p.api); got.status != 401 || got.header.Get("X-Sidekey-Error") != "session_required" {
		t.Errorf("oauth2 sessions tenant without a session: %d %q", got.status, got.header.Get("X-Sidekey-Error"))
	}
	if out := do(t, "DELETE", r.base+"/_sidekey/sessions/"+s, nil, nil); out.status != 200 || !strings.Contains(out.body, `"revoked": false`) {
		t.Errorf("logout on a platform without revocation: %d %s; want 200, revoked false", out.status, out.body)
	}
	if got := do(t, "GET", r.base+"/gen"+p.api, nil, map[string]string{"Sidekey-Session": s}); got.status != 401 {
		t.Errorf("oauth2 session after logout: %d; want 401", got.status)
	}
}

// TestSessionsKeepHandlesOutOfLogs: a whole session's life, logged at
// debug level, never writes a handle, a ticket or a secret.
func TestSessionsKeepHandlesOutOfLogs(t *testing.T) {
	sc := newCustomerSCAYLE(t, clientID, time.Hour)
	var buf bytes.Buffer
	var mu sync.Mutex
	r := start(t, &config.Config{Tenants: map[string]*config.Tenant{"shop": sessionsTenant(sc, clientID)}}, zap.New(zapCore(&buf, &mu)))
	ticket := login(t, r.base, "shop", shopReturn)
	_, s := redeem(t, r.base, ticket, nil)
	if status, _ := whoAmI(t, r.base, "shop", s); status != 200 {
		t.Fatalf("session: %d", status)
	}
	if out := do(t, "DELETE", r.base+"/_sidekey/sessions/"+s, nil, nil); out.status != 200 {
		t.Fatalf("logout: %d %s", out.status, out.body)
	}
	mu.Lock()
	logs := buf.String()
	mu.Unlock()
	if !strings.Contains(logs, "customer session ended") {
		t.Fatalf("the log has no line for the logout:\n%s", logs)
	}
	for _, secret := range []string{s, ticket, clientSecret, "shop-secret-do-not-leak"} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log holds a session handle, ticket or secret")
		}
	}
}

// TestSessionsSurviveAReload: a reload that changes a sessions tenant
// (another return_to) keeps its sessions working and applies the new
// allow-list.
func TestSessionsSurviveAReload(t *testing.T) {
	sc := newCustomerSCAYLE(t, clientID, time.Hour)
	st := store.NewMemory()
	cfg := &config.Config{Tenants: map[string]*config.Tenant{"shop": sessionsTenant(sc, clientID)}}
	base, srv := startServerOn(t, cfg, st, nil)
	s := newSession(t, base, "shop")
	other := "https://other.example/back"
	if got := get(t, base+"/_sidekey/login/shop?return_to="+other); got.status != 400 {
		t.Fatalf("return_to before the reload: %d; want 400", got.status)
	}
	next := *cfg
	tenant := sessionsTenant(sc, clientID)
	tenant.Sessions.ReturnTo = append(tenant.Sessions.ReturnTo, other)
	next.Tenants = map[string]*config.Tenant{"shop": tenant}
	if err := srv.Reload(&next); err != nil {
		t.Fatal(err)
	}
	if got, s2 := redeem(t, base, login(t, base, "shop", other), nil); got.status != 200 || s2 == "" {
		t.Errorf("a login returning to the newly allowed page: %d %s", got.status, got.body)
	}
	if status, sub := whoAmI(t, base, "shop", s); status != 200 || sub != "customer-1" {
		t.Errorf("session after the reload: %d as %q; want 200", status, sub)
	}
}

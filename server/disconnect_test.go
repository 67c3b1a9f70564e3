package server_test

import (
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sidekey/sidekey/config"
	"github.com/sidekey/sidekey/providers/providertest"
)

// TestDisconnectRevokesTheWholeGrant disconnects a SCAYLE tenant whose
// access token is dead — expired by the clock, or refused by the platform
// while sidekey still believed it valid: sidekey refreshes first, then logs
// out, and no refresh token of the grant works at the platform afterwards.
func TestDisconnectRevokesTheWholeGrant(t *testing.T) {
	var deadTests = []struct {
		name    string
		advance time.Duration // how far sidekey's clock jumps after the consent
	}{
		{"expired by the clock", 2 * time.Hour},
		{"refused by the platform only", 0},
	}
	for _, tt := range deadTests {
		t.Run(tt.name, func(t *testing.T) {
			sc := providertest.NewSCAYLE(providertest.SCAYLEOptions{
				SimOptions: providertest.SimOptions{ClientID: clientID, ClientSecret: clientSecret},
				ShopID:     "1001", ShopSecret: "shop-secret-do-not-leak", IdpKey: "google"})
			t.Cleanup(sc.Close)
			var skew atomic.Int64
			now := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
			r := startWithClock(t, &config.Config{Tenants: map[string]*config.Tenant{"shop": {
				Provider: "scayle", TenantSpace: "acme", ShopID: "1001", IdpKey: "google",
				ClientID: clientID, ClientSecret: clientSecret, ShopSecret: "shop-secret-do-not-leak",
				AuthURL: sc.AuthURL(), TokenURL: sc.TokenURL(), APIURL: sc.APIURL()}}}, now)
			if got := get(t, callbackURL(t, r.base, "shop")); got.status != 200 {
				t.Fatalf("consent: %d %s", got.status, got.body)
			}
			if n := sc.LiveRefreshTokens(); n != 1 {
				t.Fatalf("%d live refresh tokens after the consent; want 1", n)
			}
			sc.ExpireAll()
			skew.Store(int64(tt.advance))

			got := do(t, "DELETE", r.base+"/_sidekey/admin/connections/shop", nil, nil)
			var out struct {
				Revoked    bool   `json:"revoked"`
				NotRevoked string `json:"not_revoked"`
			}
			if err := json.Unmarshal([]byte(got.body), &out); err != nil || got.status != 200 || !out.Revoked || out.NotRevoked != "" {
				t.Fatalf("disconnect: %d %s; want revoked with nothing left", got.status, got.body)
			}
			if n := sc.LiveRefreshTokens(); n != 0 {
				t.Errorf("%d refresh tokens still work at the platform after disconnect; want 0", n)
			}
			if sc.RefreshRequests() != 1 || sc.RefreshReuse() != 0 || sc.Logouts() != 1 {
				t.Errorf("refreshes %d, reuses %d, logouts %d; want 1, 0, 1", sc.RefreshRequests(), sc.RefreshReuse(), sc.Logouts())
			}
		})
	}
}

// TestDisconnectReportsWhatStaysAlive: a platform without revocation
// (StoreHippo) says so in the answer.
func TestDisconnectReportsWhatStaysAlive(t *testing.T) {
	hip := platformNamed(t, "storehippo")
	r := start(t, &config.Config{Tenants: map[string]*config.Tenant{"hippo": hip.tenant}}, nil)
	if got := get(t, callbackURL(t, r.base, "hippo")); got.status != 200 {
		t.Fatalf("consent: %d", got.status)
	}
	got := do(t, "DELETE", r.base+"/_sidekey/admin/connections/hippo", nil, nil)
	var out struct {
		Revoked    bool   `json:"revoked"`
		NotRevoked string `json:"not_revoked"`
	}
	if err := json.Unmarshal([]byte(got.body), &out); err != nil || got.status != 200 || out.Revoked || out.NotRevoked == "" {
		t.Errorf("disconnect: %d %s; want not revoked, with the reason", got.status, got.body)
	}
}

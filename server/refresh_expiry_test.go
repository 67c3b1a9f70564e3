package server_test

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sidekey/sidekey/config"
	"github.com/sidekey/sidekey/providers/providertest"
)

// TestRefreshTokenExpiryIsShownAndHonoured: a platform that states when its
// refresh token expires (refresh_expires_in) gets that date on
// /_sidekey/status and in sidekey_refresh_token_expiry_seconds, the tenant
// shows consent_needed_soon within 14 days of it, a rotated refresh token
// keeps it, and past it sidekey asks for consent without trying the dead
// refresh token.
func TestRefreshTokenExpiryIsShownAndHonoured(t *testing.T) {
	sim := providertest.NewOAuth2(providertest.SimOptions{ClientID: clientID, ClientSecret: clientSecret,
		TokenLifetime: 2 * time.Second, RotateRefreshTokens: true, RefreshLifetime: 10 * 24 * time.Hour})
	defer sim.Close()
	var skew atomic.Int64 // the server's clock runs this far ahead
	t0 := time.Now()
	tenant := &config.Tenant{Provider: "oauth2", Grant: "authorization_code", ClientID: clientID, ClientSecret: clientSecret,
		AuthURL: sim.AuthURL(), TokenURL: sim.TokenURL(), APIURL: sim.APIURL()}
	r := startWithClock(t, &config.Config{Tenants: map[string]*config.Tenant{"gen": tenant}}, func() time.Time { return time.Now().Add(time.Duration(skew.Load())) })
	if got := get(t, callbackURL(t, r.base, "gen")); got.status != 200 {
		t.Fatalf("consent: %d %s", got.status, got.body)
	}
	if got := get(t, r.base+"/gen/v1/items"); got.status != 200 {
		t.Fatalf("first request: %d %s", got.status, got.body)
	}

	type status struct {
		Tenants map[string]struct {
			State         string     `json:"state"`
			RefreshExpiry *time.Time `json:"refresh_expiry"`
		} `json:"tenants"`
	}
	read := func() (string, time.Time) {
		t.Helper()
		var st status
		got := get(t, r.base+"/_sidekey/status")
		if err := json.Unmarshal([]byte(got.body), &st); err != nil {
			t.Fatalf("status: %v\n%s", err, got.body)
		}
		gen := st.Tenants["gen"]
		if gen.RefreshExpiry == nil {
			t.Fatalf("status shows no refresh_expiry:\n%s", got.body)
		}
		return gen.State, *gen.RefreshExpiry
	}
	state, exp := read()
	if d := exp.Sub(t0); d < 10*24*time.Hour-time.Minute || d > 10*24*time.Hour+time.Minute {
		t.Errorf("refresh_expiry %v is %v after the consent; want 10 days", exp, d)
	}
	if state != "consent_needed_soon" {
		t.Errorf("state %q 10 days before the refresh token expires; want consent_needed_soon", state)
	}
	m := regexp.MustCompile(`sidekey_refresh_token_expiry_seconds\{tenant="gen"\} (\S+)`).FindStringSubmatch(get(t, r.base+"/_sidekey/metrics").body)
	if secs, err := strconv.ParseFloat(m[len(m)-1], 64); len(m) != 2 || err != nil || secs < 863000 || secs > 864000 {
		t.Errorf("sidekey_refresh_token_expiry_seconds for gen: %q; want about 864000 (10 days)", m)
	}

	// Traffic goes on past the 2 s token's half-life: the refresh ahead
	// rotates the refresh token, which keeps the consent's expiry.
	deadline := time.Now().Add(10 * time.Second)
	for sim.RefreshRequests() == 0 || !sim.LatestTokenUsed() {
		if time.Now().After(deadline) {
			t.Fatal("no refreshed token in use within 10 s")
		}
		if got := get(t, r.base+"/gen/v1/items"); got.status != 200 {
			t.Fatalf("while refreshing: %d %s", got.status, got.body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, again := read(); again.Sub(exp).Abs() > 2*time.Second {
		t.Errorf("refresh_expiry after rotation %v; want the consent's %v", again, exp)
	}

	// Past the refresh token's expiry: consent, and no refresh attempt.
	skew.Store(int64(11 * 24 * time.Hour))
	before := sim.RefreshRequests()
	got := get(t, r.base+"/gen/v1/items")
	if got.status != 503 || got.header.Get("X-Sidekey-Error") != "consent_required" {
		t.Errorf("past the refresh token's expiry: %d %s; want 503 consent_required", got.status, got.body)
	}
	if sim.RefreshRequests() != before {
		t.Errorf("sidekey presented a refresh token it knew had expired")
	}
	if st := get(t, r.base+"/_sidekey/status").body; !strings.Contains(st, "refresh token expired at") {
		t.Errorf("status does not say the refresh token expired:\n%s", st)
	}
}

// TestConfiguredRefreshTokenLifetime: for a platform that does not state
// it (SCAYLE), refresh_token_lifetime dates the consent's refresh token.
func TestConfiguredRefreshTokenLifetime(t *testing.T) {
	sc := platformNamed(t, "scayle")
	tenant := *sc.tenant
	tenant.RefreshTokenLifetime = config.Duration(10 * 24 * time.Hour)
	r := start(t, &config.Config{Tenants: map[string]*config.Tenant{"scayle": &tenant}}, nil)
	connected := time.Now()
	if got := get(t, callbackURL(t, r.base, "scayle")); got.status != 200 {
		t.Fatalf("consent: %d %s", got.status, got.body)
	}
	if got := get(t, r.base+"/scayle"+sc.api); got.status != 200 {
		t.Fatalf("request: %d %s", got.status, got.body)
	}
	var st struct {
		Tenants map[string]struct {
			State         string     `json:"state"`
			RefreshExpiry *time.Time `json:"refresh_expiry"`
		} `json:"tenants"`
	}
	body := get(t, r.base+"/_sidekey/status").body
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	got := st.Tenants["scayle"]
	if got.RefreshExpiry == nil || got.RefreshExpiry.Sub(connected).Round(time.Hour) != 240*time.Hour || got.State != "consent_needed_soon" {
		t.Errorf("status: %+v; want refresh_expiry 10 days after the consent and consent_needed_soon\n%s", got, body)
	}
}

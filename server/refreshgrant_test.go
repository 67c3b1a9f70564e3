package server_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/sidekey/sidekey/config"
	"github.com/sidekey/sidekey/internal/testwait"
	"github.com/sidekey/sidekey/providers/providertest"
)

// rotatingOAuth2 is a generic OAuth 2.0 platform that rotates its refresh
// tokens on every refresh, refuses a reused one and counts the reuse, and a
// tenant using its refresh_token grant with the configured seed.
func rotatingOAuth2(t *testing.T) (*providertest.OAuth2, *config.Tenant) {
	t.Helper()
	const seed = "seed-refresh-token-do-not-leak-0e1"
	sim := providertest.NewOAuth2(providertest.SimOptions{ClientID: clientID, ClientSecret: clientSecret,
		TokenLifetime: 2 * time.Second, RefreshToken: seed, RotateRefreshTokens: true})
	t.Cleanup(sim.Close)
	return sim, &config.Tenant{Provider: "oauth2", Grant: "refresh_token", ClientID: clientID, ClientSecret: clientSecret,
		RefreshToken: seed, TokenURL: sim.TokenURL(), APIURL: sim.APIURL()}
}

// rotateThrough sends requests through base until the platform has
// rotated the refresh token n more times and the newest token is in use.
func rotateThrough(t *testing.T, sim *providertest.OAuth2, n int64, bases ...string) {
	t.Helper()
	want := sim.RefreshRequests() + n
	i := 0
	testwait.For(t, "refresh token rotations", func() bool {
		i++
		if got := get(t, bases[i%len(bases)]+"/gen/v1/items"); got.status != 200 {
			t.Fatalf("request %d through %s: %d %s", i, bases[i%len(bases)], got.status, got.body)
		}
		return sim.RefreshRequests() >= want && sim.LatestTokenUsed()
	})
}

// TestRefreshTokenGrantSurvivesRestarts (issue 11): the refresh_token
// grant's rotated refresh token is stored before use, so a restart presents
// the newest one, never the configured seed the platform has retired.
func TestRefreshTokenGrantSurvivesRestarts(t *testing.T) {
	sim, tenant := rotatingOAuth2(t)
	storage := fileStore(t)
	for run := range 3 {
		r := start(t, &config.Config{Storage: storage, Tenants: map[string]*config.Tenant{"gen": tenant}}, nil)
		rotateThrough(t, sim, 2, r.base)
		if err := r.stop(); err != nil {
			t.Fatalf("run %d: stop: %v", run, err)
		}
		if n := sim.RefreshReuse(); n != 0 {
			t.Fatalf("after run %d: %d reused refresh tokens; want 0", run, n)
		}
	}
}

// TestRefreshTokenGrantSharedByReplicas (issue 11): two replicas on one
// Redis take turns refreshing the same refresh_token-grant tenant; neither
// ever presents a refresh token the other has rotated away.
func TestRefreshTokenGrantSharedByReplicas(t *testing.T) {
	sim, tenant := rotatingOAuth2(t)
	rdb := startRedis(t)
	keyFile := filepath.Join(t.TempDir(), "store-key")
	writeAtomic(t, keyFile, []byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"))
	replica := func() *running {
		storage := config.Storage{Type: "redis", KeyFile: keyFile, Redis: config.Redis{Addr: rdb.addr}}
		return start(t, &config.Config{Storage: storage, Tenants: map[string]*config.Tenant{"gen": tenant}}, nil)
	}
	a, b := replica(), replica()
	rotateThrough(t, sim, 6, a.base, b.base)
	if n := sim.RefreshReuse(); n != 0 {
		t.Errorf("%d reused refresh tokens across two replicas; want 0", n)
	}
}

package providers

import (
	"context"
	"errors"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/sidekey/sidekey/config"
	"github.com/sidekey/sidekey/providers/providertest"
)

// TestFetchPresentsTheStoredRefreshToken (issue 11): the refresh_token
// grant presents the stored token's refresh token, and the configured one
// only while nothing is stored; a platform that rotates and refuses reuse
// sees no reuse across a "restart" (a second Tenant built from the same
// config, as after a restart).
func TestFetchPresentsTheStoredRefreshToken(t *testing.T) {
	const seed = "seed-refresh-token-abcdef"
	sim := newOAuth2Sim(t, providertest.SimOptions{RefreshToken: seed, RotateRefreshTokens: true})
	build := func() *Tenant {
		return oauth2Tenant(t, sim, func(c *config.Tenant) { c.Grant, c.RefreshToken = "refresh_token", seed })
	}
	ctx := context.Background()
	stored, err := build().Fetch(ctx, nil) // nothing stored: the seed
	if err != nil || sim.LastTokenRequest().Form.Get("refresh_token") != seed {
		t.Fatalf("first fetch: %v, sent %q; want the seed", err, sim.LastTokenRequest().Form.Get("refresh_token"))
	}
	for i := range 3 {
		tenant := build() // a restart: only the store remembers the rotation
		next, err := tenant.Fetch(ctx, stored)
		if err != nil {
			t.Fatalf("fetch %d with the stored token: %v", i, err)
		}
		if sent := sim.LastTokenRequest().Form.Get("refresh_token"); sent != stored.RefreshToken {
			t.Fatalf("fetch %d presented a refresh token other than the stored one", i)
		}
		stored = next
	}
	if n := sim.RefreshReuse(); n != 0 {
		t.Errorf("%d reused refresh tokens; want 0", n)
	}
}

// TestCanRefreshAndNeedsPerson: Istores' token cannot be refreshed, and
// NeedsPerson says why a consent tenant cannot get a token without asking
// the platform.
func TestCanRefreshAndNeedsPerson(t *testing.T) {
	ist := providertest.NewIstores(providertest.SimOptions{ClientID: testClientID, ClientSecret: testSecret})
	defer ist.Close()
	istores := simTenant(t, "il", "istores", ist.TokenURL(), ist.APIURL(), func(c *config.Tenant) {
		c.AuthURL, c.Scopes = ist.AuthURL(), []string{"products:read"}
	})
	sim := newOAuth2Sim(t, providertest.SimOptions{})
	cc := oauth2Tenant(t, sim, nil)
	if istores.CanRefresh() || !cc.CanRefresh() {
		t.Errorf("CanRefresh: istores %v, client credentials %v; want false, true", istores.CanRefresh(), cc.CanRefresh())
	}
	now := time.Now()
	live := &oauth2.Token{AccessToken: "a", Expiry: now.Add(time.Hour)}
	for _, tt := range []struct {
		name   string
		tenant *Tenant
		prev   *oauth2.Token
		person bool // NeedsPerson returns an error
	}{
		{"istores never connected", istores, nil, true},
		{"istores connected", istores, live, true}, // whenever asked: it cannot be renewed
		{"client credentials, nothing stored", cc, nil, false},
	} {
		err := tt.tenant.NeedsPerson(tt.prev, now)
		if (err != nil) != tt.person || (err != nil && !errors.Is(err, ErrConsentRequired)) {
			t.Errorf("%s: NeedsPerson = %v; want an ErrConsentRequired: %v", tt.name, err, tt.person)
		}
	}
	if ist.TokenRequests() != 0 {
		t.Errorf("%d token requests; want none", ist.TokenRequests())
	}
}

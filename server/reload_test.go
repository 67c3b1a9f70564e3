package server_test

import (
	"testing"
	"time"

	"github.com/sidekey/sidekey/config"
)

func TestReloadKeepsUnchangedTenantsAndRejectsBadConfigs(t *testing.T) {
	simA, simB := newSimpleStore(t, time.Hour), newSimpleStore(t, time.Hour)
	cfg := &config.Config{Tenants: map[string]*config.Tenant{"a": simpleTenant(simA, clientSecret)}}
	r := start(t, cfg, nil)
	if got := get(t, r.base+"/a/v1/cart/1"); got.status != 200 {
		t.Fatalf("a before reload: %d", got.status)
	}

	next := &config.Config{Listen: cfg.Listen, Storage: cfg.Storage, Tenants: map[string]*config.Tenant{
		"a": simpleTenant(simA, clientSecret),
		"b": simpleTenant(simB, clientSecret),
	}}
	next.SetDefaults()
	if err := r.srv.Reload(next); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	for _, name := range []string{"a", "b"} {
		if got := get(t, r.base+"/"+name+"/v1/cart/1"); got.status != 200 {
			t.Errorf("%s after reload: %d %s", name, got.status, got.body)
		}
	}
	if n := simA.TokenRequests(); n != 1 {
		t.Errorf("a's token requests = %d; want 1 (its cached token survives the reload)", n)
	}

	bad := &config.Config{Listen: cfg.Listen, Storage: cfg.Storage, Tenants: map[string]*config.Tenant{
		"a": simpleTenant(simA, clientSecret),
		"c": {Provider: "oauth2", ClientID: "x", ClientSecret: "y"}, // no token_url, no api_url
	}}
	bad.SetDefaults()
	if err := r.srv.Reload(bad); err == nil {
		t.Fatal("a config with an unbuildable tenant was accepted")
	}
	if got := get(t, r.base+"/b/v1/cart/1"); got.status != 200 {
		t.Errorf("b after a rejected reload: %d; want the running config kept", got.status)
	}

	only := &config.Config{Listen: cfg.Listen, Storage: cfg.Storage, Tenants: map[string]*config.Tenant{"b": simpleTenant(simB, clientSecret)}}
	only.SetDefaults()
	if err := r.srv.Reload(only); err != nil {
		t.Fatal(err)
	}
	if got := get(t, r.base+"/a/v1/cart/1"); got.status != 404 || got.header.Get("X-Sidekey-Error") != "unknown_tenant" {
		t.Errorf("removed tenant a: %d %q; want 404 unknown_tenant", got.status, got.header.Get("X-Sidekey-Error"))
	}
}

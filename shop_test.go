package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sidekey/sidekey/providers/providertest"
)

// shop is a SCAYLE simulator that the process tests serve as tenant "shop".
type shop struct {
	sim                *providertest.SCAYLE
	clientID           string
	secret, shopSecret string // to scan logs and the store for
}

// newShop starts a SCAYLE simulator for client id (its secrets derive from
// id) issuing tokens that live lifetime.
func newShop(t *testing.T, id string, lifetime time.Duration) *shop {
	t.Helper()
	s := &shop{clientID: id, secret: id + "-client-secret", shopSecret: id + "-shop-secret"}
	s.sim = providertest.NewSCAYLE(providertest.SCAYLEOptions{
		SimOptions: providertest.SimOptions{ClientID: id, ClientSecret: s.secret, TokenLifetime: lifetime},
		ShopID:     "1001", ShopSecret: s.shopSecret, IdpKey: "google",
	})
	t.Cleanup(s.sim.Close)
	return s
}

// sidekeyConfig is a config file for a child sidekey serving a shop.
type sidekeyConfig struct {
	Listen  string // host:port
	Storage string // the storage section as a YAML flow mapping
	Top     string // more top-level YAML lines
	Tenants string // more tenants, as lines indented by two spaces
}

// write writes c, with tenant "shop" served from s, to dir/name and
// returns its path.
func (c sidekeyConfig) write(t *testing.T, dir, name string, s *shop) string {
	t.Helper()
	cfg := fmt.Sprintf(`listen: %s
storage: %s
%stenants:
  shop:
    provider: scayle
    tenant_space: acme
    shop_id: "1001"
    idp_key: google
    client_id: %s
    client_secret: %s
    shop_secret: %s
    auth_url: %s
    token_url: %s
    api_url: %s
%s`, c.Listen, c.Storage, c.Top, s.clientID, s.secret, s.shopSecret, s.sim.AuthURL(), s.sim.TokenURL(), s.sim.APIURL(), c.Tenants)
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// connectShop runs the consent for tenant shop through sidekey at base,
// the simulator approving at once.
func connectShop(t *testing.T, base string) {
	t.Helper()
	resp, err := http.Get(base + "/_sidekey/oauth/connect/shop") // follows the consent to the callback
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("consent through %s: %d", base, resp.StatusCode)
	}
}

// shopProcess is a child sidekey serving a shop from a file store, and
// what it takes to start it again over the same store.
type shopProcess struct {
	*child
	cfg, addr string      // its config file and listen address
	store     string      // the file store's directory
	logs      *syncBuffer // every start's output
}

// startShop starts a child sidekey serving s from a file store in a fresh
// directory — top adds top-level YAML lines, tenants more tenants — and
// connects the shop.
func startShop(t *testing.T, s *shop, top, tenants string) *shopProcess {
	t.Helper()
	dir := t.TempDir()
	p := &shopProcess{addr: freeAddr(t), store: filepath.Join(dir, "data"), logs: &syncBuffer{}}
	p.cfg = sidekeyConfig{Listen: p.addr, Storage: "{type: file, path: " + p.store + "}", Top: top, Tenants: tenants}.
		write(t, dir, "sidekey.yaml", s)
	p.restart(t)
	connectShop(t, p.base)
	return p
}

// restart starts the process again (after it was killed or stopped).
func (p *shopProcess) restart(t *testing.T) {
	t.Helper()
	p.child = startChild(t, p.cfg, p.addr, p.logs)
}

package server_test

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/sidekey/sidekey/config"
	"github.com/sidekey/sidekey/providers/providertest"
)

// TestCreateConnectionHintWorksAsPrinted: POSTing a connection under a
// consent app answers consent_required with a connect URL that carries the
// parameters sent; following that URL as printed connects the store.
func TestCreateConnectionHintWorksAsPrinted(t *testing.T) {
	hip := providertest.NewStoreHippo(providertest.SimOptions{ClientID: clientID, ClientSecret: clientSecret})
	t.Cleanup(hip.Close)
	r := start(t, &config.Config{Apps: map[string]*config.Tenant{
		"hippo-app": {Provider: "storehippo", ClientID: clientID, ClientSecret: clientSecret, Scopes: []string{"read_products"},
			AuthURL: hip.AuthURL(), TokenURL: hip.TokenURL(), APIURL: hip.APIURL()},
	}}, nil)
	got := do(t, "POST", r.base+"/_sidekey/admin/connections",
		strings.NewReader(`{"tenant": "hippo-acme", "app": "hippo-app", "params": {"store": "acme"}}`), nil)
	var body struct{ Error, Message string }
	if err := json.Unmarshal([]byte(got.body), &body); err != nil || got.status != 400 || body.Error != "consent_required" {
		t.Fatalf("POST: %d %s; want 400 consent_required", got.status, got.body)
	}
	hint := regexp.MustCompile(`open (\S+)`).FindStringSubmatch(body.Message)
	if hint == nil || !strings.Contains(hint[1], "store=acme") {
		t.Fatalf("hint %q carries no store=acme", body.Message)
	}
	if got := get(t, hint[1]); got.status != 200 { // the "browser": consent page → callback
		t.Fatalf("following the hint %s: %d %s", hint[1], got.status, got.body)
	}
	if got := get(t, r.base+"/hippo-acme/entity/ms.products"); got.status != 200 {
		t.Errorf("the connection made through the hint: %d %s; want 200", got.status, got.body)
	}
}

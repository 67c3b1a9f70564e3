package config

import (
	"strings"
	"testing"
)

func TestTenantsInheritTheirApp(t *testing.T) {
	c, err := Parse([]byte(`
apps:
  hippo:
    provider: storehippo
    client_id: app-id
    client_secret: app-secret
    scopes: [read_products]
    headers: {User-Agent: sync/1, Company-Id: "1"}
tenants:
  acme:
    app: hippo
    store: acme
    headers: {Company-Id: "2"}
  beta:
    app: hippo
    store: beta
    client_id: own-id
`), ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	acme, beta := c.Tenants["acme"], c.Tenants["beta"]
	for _, tt := range []struct{ got, want string }{
		{acme.Provider, "storehippo"},
		{acme.ClientID, "app-id"},
		{acme.ClientSecret.Value(), "app-secret"},
		{acme.Store, "acme"},
		{acme.App, "hippo"},
		{acme.Headers["User-Agent"], "sync/1"},
		{acme.Headers["Company-Id"], "2"},
		{beta.ClientID, "own-id"},
		{beta.Store, "beta"},
		{beta.Headers["Company-Id"], "1"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q; want %q", tt.got, tt.want)
		}
	}
	if c.Apps["hippo"].Headers["Company-Id"] != "1" {
		t.Error("merging changed the app itself")
	}
}

func TestAppProblemsNameTheKey(t *testing.T) {
	c, err := Parse([]byte(`
apps:
  hippo: {provider: nope}
  acme: {provider: storehippo}
tenants:
  acme: {app: hippo, store: acme}
  lost: {app: missing}
callers:
  billing: {key_sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08, apps: [ghost]}
`), ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	msg := c.Validate().Error() // the provider's name is providers.CheckApp's to check
	for _, want := range []string{
		`apps.acme: an app and a tenant cannot share a name`,
		`tenants.lost.app: unknown app "missing"`,
		`callers.billing.apps[0]: unknown app "ghost"`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("problems lack %q:\n%s", want, msg)
		}
	}
}

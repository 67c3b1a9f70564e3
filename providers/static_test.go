package providers

import (
	"testing"

	"github.com/sidekey/sidekey/config"
)

func TestStaticSource(t *testing.T) {
	tenant, err := Build("scayle-admin", &config.Tenant{
		Provider:    "static",
		Token:       "fixed-api-key-123",
		TokenHeader: "x-access-token",
		APIURL:      "https://acme.admin.api.scayle.cloud/api/admin/v1/",
	}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if tenant.TokenURL != nil {
		t.Errorf("TokenURL = %v; want nil for static", tenant.TokenURL)
	}
	want := Injection{Header: "X-Access-Token"}
	if tenant.Inject != want {
		t.Errorf("Inject = %+v; want %+v", tenant.Inject, want)
	}
	first, err := tenant.Source.Token()
	if err != nil {
		t.Fatal(err)
	}
	first.AccessToken = "mutated by a caller"
	second, err := tenant.Source.Token()
	if err != nil {
		t.Fatal(err)
	}
	if second.AccessToken != "fixed-api-key-123" || !second.Expiry.IsZero() || second.RefreshToken != "" {
		t.Errorf("Token() = %+v; want the fixed key with zero Expiry", second)
	}
	if v := tenant.Inject.Value(second.AccessToken); v != "fixed-api-key-123" {
		t.Errorf("injected %q; want the bare key", v)
	}
}

func TestStaticDefaultsToBearer(t *testing.T) {
	tenant, err := Build("s", &config.Tenant{Provider: "static", Token: "k", APIURL: "https://api.example.com"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := tenant.Inject.Header + ": " + tenant.Inject.Value("k"); got != "Authorization: Bearer k" {
		t.Errorf("injection = %q; want Authorization: Bearer k", got)
	}
}

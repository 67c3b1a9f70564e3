package providers

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/sidekey/sidekey/config"
	"github.com/sidekey/sidekey/providers/providertest"
)

func newStoreHippoSim(t *testing.T, opts providertest.SimOptions) *providertest.StoreHippo {
	t.Helper()
	if opts.ClientID == "" {
		opts.ClientID, opts.ClientSecret = testClientID, testSecret
	}
	sim := providertest.NewStoreHippo(opts)
	t.Cleanup(sim.Close)
	return sim
}

func storeHippoTenant(t *testing.T, sim *providertest.StoreHippo) *Tenant {
	t.Helper()
	return buildAuthCode(t, "acme-hippo", &config.Tenant{
		Provider:     "storehippo",
		Store:        "acme",
		ClientID:     testClientID,
		ClientSecret: testSecret,
		Scopes:       []string{"read_products", "write_orders"},
		AuthURL:      sim.AuthURL(),
		TokenURL:     sim.TokenURL(),
		APIURL:       sim.APIURL(),
	}, Options{})
}

func TestStoreHippoDefaultsAndConsentURL(t *testing.T) {
	tenant := buildAuthCode(t, "acme-hippo", &config.Tenant{Provider: "storehippo", Store: "Acme", ClientID: "cid",
		ClientSecret: "s", Scopes: []string{"write_orders", "read_customers"}}, Options{})
	for got, want := range map[string]string{
		tenant.AuthURL.String():  "https://acme.storehippo.com/admin/oauth/authorization",
		tenant.TokenURL.String(): "https://acme.storehippo.com/admin/oauth/token",
		tenant.APIURL.String():   "https://acme.storehippo.com/api/1.1",
	} {
		if got != want {
			t.Errorf("endpoint %q; want %q", got, want)
		}
	}
	u, err := tenant.AuthCode.ConsentURL(newConsent("nonce-7"))
	if err != nil {
		t.Fatal(err)
	}
	base, q := consentParams(t, u)
	want := url.Values{"client_id": {"cid"}, "scope": {"write_orders,read_customers"}, "redirect_uri": {testRedirect}, "state": {"nonce-7"}}
	if base != "https://acme.storehippo.com/admin/oauth/authorization" || !reflect.DeepEqual(q, want) {
		t.Errorf("consent URL %s; want the documented client_id, scope=a,b, redirect_uri, state", u)
	}
}

func TestStoreHippoConnect(t *testing.T) {
	sim := newStoreHippoSim(t, providertest.SimOptions{})
	tenant := storeHippoTenant(t, sim)
	tok, _ := connect(t, tenant, "nonce-1")

	req := sim.LastTokenRequest()
	if ct := req.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
		t.Errorf("token request Content-Type %q; want a form", ct)
	}
	for k, want := range map[string]string{"client_id": testClientID, "client_secret": testSecret,
		"grant_type": "authorization_code", "redirect_uri": testRedirect} {
		if got := req.Form.Get(k); got != want {
			t.Errorf("token request %s = %q; want %q", k, got, want)
		}
	}
	if tok.RefreshToken == "" || !tok.Expiry.IsZero() {
		t.Errorf("token: refresh %q, expiry %v; want a refresh token and a zero (permanent) expiry", tok.RefreshToken, tok.Expiry)
	}
	code, body := callAPI(t, tenant, "/entity/ms.products?limit=5", tok.AccessToken)
	var list struct {
		Data   []map[string]any
		Paging map[string]int
	}
	if code != http.StatusOK || json.Unmarshal([]byte(body), &list) != nil || len(list.Data) != 5 || list.Paging["total"] == 0 {
		t.Fatalf("ms.products: %d %s", code, body)
	}
}

func TestStoreHippoRedirectMustMatch(t *testing.T) {
	sim := newStoreHippoSim(t, providertest.SimOptions{})
	tenant := storeHippoTenant(t, sim)
	c := newConsent("n")
	u, err := tenant.AuthCode.ConsentURL(c)
	if err != nil {
		t.Fatal(err)
	}
	code := approve(t, u).Get("code")
	c.RedirectURL = "http://127.0.0.1:9999/elsewhere"
	_, err = tenant.AuthCode.Exchange(context.Background(), code, c)
	var te *TokenError
	if !errors.As(err, &te) || te.Code != "invalid_grant" || !strings.Contains(te.Description, "redirect_uri") {
		t.Errorf("exchange with another redirect_uri: %v; want invalid_grant naming redirect_uri", err)
	}
}

func TestStoreHippoRefresh(t *testing.T) {
	sim := newStoreHippoSim(t, providertest.SimOptions{})
	tenant := storeHippoTenant(t, sim)
	tok, _ := connect(t, tenant, "n")
	sim.RevokeAll()
	if code, _ := callAPI(t, tenant, "/entity/ms.products", tok.AccessToken); code != http.StatusUnauthorized {
		t.Fatalf("after RevokeAll: %d; want 401", code)
	}
	fresh, err := tenant.AuthCode.Refresh(context.Background(), tok.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	req := sim.LastTokenRequest()
	for k, want := range map[string]string{"grant_type": "refresh_token", "refresh_token": tok.RefreshToken,
		"client_id": testClientID, "client_secret": testSecret} {
		if got := req.Form.Get(k); got != want {
			t.Errorf("refresh request %s = %q; want %q", k, got, want)
		}
	}
	if fresh.AccessToken == tok.AccessToken || fresh.RefreshToken != tok.RefreshToken || !fresh.Expiry.IsZero() {
		t.Errorf("refresh gave access %v (new: %v), refresh token kept: %v, expiry %v",
			fresh.AccessToken != "", fresh.AccessToken != tok.AccessToken, fresh.RefreshToken == tok.RefreshToken, fresh.Expiry)
	}
	if code, body := callAPI(t, tenant, "/entity/ms.products", fresh.AccessToken); code != http.StatusOK {
		t.Errorf("refreshed token: %d %s", code, body)
	}
	if n := sim.RefreshRequests(); n != 1 {
		t.Errorf("RefreshRequests = %d; want 1", n)
	}
}

func TestStoreHippoRefreshRefused(t *testing.T) {
	sim := newStoreHippoSim(t, providertest.SimOptions{})
	tenant := storeHippoTenant(t, sim)
	tok, _ := connect(t, tenant, "n")
	sim.RevokeRefreshTokens()
	_, err := tenant.AuthCode.Refresh(context.Background(), tok.RefreshToken)
	var te *TokenError
	if !errors.Is(err, ErrConsentRequired) || !errors.As(err, &te) || te.Code != "invalid_grant" || te.Description != "Invalid refresh token" {
		t.Fatalf("refused refresh: %v; want invalid_grant (with StoreHippo's message) matching ErrConsentRequired", err)
	}
	if strings.Contains(err.Error(), tok.RefreshToken) || strings.Contains(err.Error(), testSecret) {
		t.Errorf("error %q leaks a secret", err)
	}
	if _, err := tenant.AuthCode.Refresh(context.Background(), ""); !errors.Is(err, ErrConsentRequired) {
		t.Errorf("Refresh without a refresh token: %v; want ErrConsentRequired", err)
	}
}

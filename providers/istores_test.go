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
	"time"

	"github.com/sidekey/sidekey/config"
	"github.com/sidekey/sidekey/providers/providertest"
)

func newIstoresSim(t *testing.T, opts providertest.SimOptions) *providertest.Istores {
	t.Helper()
	if opts.ClientID == "" {
		opts.ClientID, opts.ClientSecret = testClientID, testSecret
	}
	sim := providertest.NewIstores(opts)
	t.Cleanup(sim.Close)
	return sim
}

func istoresTenant(t *testing.T, sim *providertest.Istores, modify func(*config.Tenant)) *Tenant {
	t.Helper()
	c := &config.Tenant{
		Provider:     "istores",
		ClientID:     testClientID,
		ClientSecret: testSecret,
		Scopes:       []string{"products:read", "customers:read"},
		AuthURL:      sim.AuthURL(),
		TokenURL:     sim.TokenURL(),
		APIURL:       sim.APIURL(),
	}
	if modify != nil {
		modify(c)
	}
	return buildAuthCode(t, "il-shop", c, Options{})
}

func TestIstoresDefaults(t *testing.T) {
	tenant := buildAuthCode(t, "il-shop", &config.Tenant{Provider: "istores", ClientID: "id", ClientSecret: "s",
		Scopes: []string{"products:read"}}, Options{})
	for got, want := range map[string]string{
		tenant.AuthURL.String():  "https://nova.istores.co.il/oauth/authorize",
		tenant.TokenURL.String(): "https://nova.istores.co.il/oauth/token",
		tenant.APIURL.String():   "https://api.istores.co.il",
	} {
		if got != want {
			t.Errorf("endpoint %q; want %q", got, want)
		}
	}
	if tenant.Inject != (Injection{Header: "Authorization", Prefix: "Bearer "}) {
		t.Errorf("Inject = %+v; want Authorization: Bearer", tenant.Inject)
	}
}

func TestIstoresConsentURL(t *testing.T) {
	tenant := buildAuthCode(t, "il-shop", &config.Tenant{Provider: "istores", ClientID: "test_client_id", ClientSecret: "s",
		Scopes: []string{"products:read", "customers:read"}}, Options{})
	u, err := tenant.AuthCode.ConsentURL(newConsent("nonce-1"))
	if err != nil {
		t.Fatal(err)
	}
	base, q := consentParams(t, u)
	want := url.Values{
		"client_id":     {"test_client_id"},
		"redirect_uri":  {testRedirect},
		"response_type": {"code"},
		"scopes":        {"products:read customers:read"},
		"state":         {"nonce-1"},
	}
	if base != "https://nova.istores.co.il/oauth/authorize" || !reflect.DeepEqual(q, want) {
		t.Errorf("consent URL %s; want %s?%s", u, "https://nova.istores.co.il/oauth/authorize", want.Encode())
	}
}

func TestIstoresConnect(t *testing.T) {
	sim := newIstoresSim(t, providertest.SimOptions{})
	tenant := istoresTenant(t, sim, nil)
	before := time.Now()
	tok, _ := connect(t, tenant, "state-42")

	req := sim.LastTokenRequest()
	if ct := req.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("token request Content-Type %q; want application/json", ct)
	}
	for k, want := range map[string]string{"client_id": testClientID, "client_secret": testSecret,
		"grant_type": "authorization_code", "redirect_uri": testRedirect} {
		if got := req.Form.Get(k); got != want {
			t.Errorf("token request %s = %q; want %q", k, got, want)
		}
	}
	if req.Form.Get("code") == "" {
		t.Error("token request carries no code")
	}
	const documented = 36000000 * time.Second
	if tok.RefreshToken != "" || tok.ExpiresIn != 36000000 || !within(tok.Expiry, before.Add(documented), 3*time.Second) {
		t.Errorf("token: refresh %q, expires_in %d, expiry in %v; want no refresh token and the documented 36000000 s",
			tok.RefreshToken, tok.ExpiresIn, tok.Expiry.Sub(before))
	}
	if strings.Count(tok.AccessToken, ".") != 2 {
		t.Errorf("access token %q is not a JWT", tok.AccessToken)
	}

	code, body := callAPI(t, tenant, "/products/10/2", tok.AccessToken)
	var page struct {
		Success  bool
		Products []map[string]any
		Page     int
		PerPage  int `json:"per_page"`
	}
	if code != http.StatusOK || json.Unmarshal([]byte(body), &page) != nil || !page.Success || len(page.Products) != 10 || page.Page != 2 {
		t.Fatalf("products: %d %s", code, body)
	}
	sim.RevokeAll()
	if code, _ := callAPI(t, tenant, "/products/10/1", tok.AccessToken); code != http.StatusUnauthorized {
		t.Errorf("after RevokeAll: %d; want 401", code)
	}
}

func TestIstoresJWTExpSoonerThanExpiresIn(t *testing.T) {
	sim := newIstoresSim(t, providertest.SimOptions{})
	sim.SetJWTLifetime(10 * time.Minute)
	tenant := istoresTenant(t, sim, nil)
	before := time.Now()
	tok, _ := connect(t, tenant, "s")
	if tok.ExpiresIn != 36000000 {
		t.Errorf("expires_in %d; want 36000000", tok.ExpiresIn)
	}
	if !within(tok.Expiry, before.Add(10*time.Minute), 2*time.Second) {
		t.Errorf("Expiry in %v; want the JWT's exp, 10m", tok.Expiry.Sub(before))
	}
}

func TestIstoresShorterLifetime(t *testing.T) {
	sim := newIstoresSim(t, providertest.SimOptions{})
	sim.SetLifetime(90 * time.Second)
	tok, _ := connect(t, istoresTenant(t, sim, nil), "s")
	if tok.ExpiresIn != 90 || !within(tok.Expiry, time.Now().Add(90*time.Second), 2*time.Second) {
		t.Errorf("expires_in %d, Expiry in %v; want 90s", tok.ExpiresIn, time.Until(tok.Expiry))
	}
}

func TestIstoresRefreshNeedsConsent(t *testing.T) {
	sim := newIstoresSim(t, providertest.SimOptions{})
	tenant := istoresTenant(t, sim, nil)
	_, err := tenant.AuthCode.Refresh(context.Background(), "anything")
	var te *TokenError
	if !errors.Is(err, ErrConsentRequired) || !errors.As(err, &te) || te.Retryable() || te.Provider != "istores" {
		t.Fatalf("Refresh error %v; want a non-retryable istores TokenError matching ErrConsentRequired", err)
	}
	if n := sim.TokenRequests(); n != 0 {
		t.Errorf("Refresh made %d token requests; want none", n)
	}
}

func TestIstoresCallbackWithoutState(t *testing.T) {
	tenant := istoresTenant(t, newIstoresSim(t, providertest.SimOptions{}), nil)
	state, err := tenant.AuthCode.CallbackState(url.Values{"code": {"abc"}})
	if state != "" || err != nil {
		t.Errorf("CallbackState without state = %q, %v; want \"\", nil", state, err)
	}
}

func TestIstoresExchangeFailures(t *testing.T) {
	sim := newIstoresSim(t, providertest.SimOptions{})
	good := istoresTenant(t, sim, nil)
	c := newConsent("s")
	consentURL, err := good.AuthCode.ConsentURL(c)
	if err != nil {
		t.Fatal(err)
	}
	code := approve(t, consentURL).Get("code")

	bad := istoresTenant(t, sim, func(c *config.Tenant) { c.ClientSecret = "wrong-secret-value" })
	_, err = bad.AuthCode.Exchange(context.Background(), code, c)
	var te *TokenError
	if !errors.As(err, &te) || te.Status != 401 || te.Code != "invalid_client" {
		t.Fatalf("wrong secret: %v; want 401 invalid_client", err)
	}
	for _, leak := range []string{"wrong-secret-value", code} {
		if strings.Contains(err.Error(), leak) {
			t.Errorf("error %q leaks a secret", err)
		}
	}
	// The client is checked first, so the code still works once, and only
	// once.
	if _, err := good.AuthCode.Exchange(context.Background(), code, c); err != nil {
		t.Fatalf("Exchange after a rejected client: %v", err)
	}
	_, err = good.AuthCode.Exchange(context.Background(), code, c)
	if !errors.As(err, &te) || te.Code != "invalid_grant" {
		t.Errorf("reused code: %v; want invalid_grant", err)
	}
	if errors.Is(err, ErrConsentRequired) {
		t.Error("a failed Exchange matches ErrConsentRequired; only Refresh should")
	}
}

func TestCallbackMayOmitStateOnlyIstores(t *testing.T) {
	if !CallbackMayOmitState(buildAuthCode(t, "il-shop", &config.Tenant{Provider: "istores", ClientID: "id", ClientSecret: "s",
		Scopes: []string{"products:read"}}, Options{}).AuthCode) {
		t.Error("istores: false; want true (it documents no state)")
	}
	for _, c := range []*config.Tenant{scayleConfig(), {Provider: "storehippo", Store: "acme", ClientID: "id", ClientSecret: "s",
		Scopes: []string{"read"}}} {
		if CallbackMayOmitState(buildAuthCode(t, c.Provider, c, Options{}).AuthCode) {
			t.Errorf("%s: true; want false", c.Provider)
		}
	}
	if CallbackMayOmitState(nil) {
		t.Error("nil: true; want false")
	}
}

package providers

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"reflect"
	"testing"

	"golang.org/x/oauth2"

	"github.com/sidekey/sidekey/config"
	"github.com/sidekey/sidekey/providers/providertest"
)

func oauth2CodeTenant(t *testing.T, sim *providertest.OAuth2, modify func(*config.Tenant)) *Tenant {
	t.Helper()
	c := &config.Tenant{
		Provider:     "oauth2",
		Grant:        "authorization_code",
		ClientID:     testClientID,
		ClientSecret: testSecret,
		Scopes:       []string{"orders:read", "orders:write"},
		AuthURL:      sim.AuthURL(),
		TokenURL:     sim.TokenURL(),
		APIURL:       sim.APIURL(),
	}
	if modify != nil {
		modify(c)
	}
	return buildAuthCode(t, "other-api", c, Options{})
}

func TestNewPKCEVerifier(t *testing.T) {
	a, b := NewPKCEVerifier(), NewPKCEVerifier()
	if len(a) != 43 || a == b {
		t.Errorf("verifiers %q, %q; want two distinct 43-character verifiers", a, b)
	}
}

func TestOAuth2ConsentURL(t *testing.T) {
	sim := newOAuth2Sim(t, providertest.SimOptions{})
	tenant := oauth2CodeTenant(t, sim, func(c *config.Tenant) { c.AuthURL += "?audience=https%3A%2F%2Fapi.example.com" })
	c := newConsent("nonce-3")
	u, err := tenant.AuthCode.ConsentURL(c)
	if err != nil {
		t.Fatal(err)
	}
	base, q := consentParams(t, u)
	want := url.Values{
		"audience":              {"https://api.example.com"},
		"response_type":         {"code"},
		"client_id":             {testClientID},
		"redirect_uri":          {testRedirect},
		"scope":                 {"orders:read orders:write"},
		"state":                 {"nonce-3"},
		"code_challenge":        {oauth2.S256ChallengeFromVerifier(c.PKCEVerifier)},
		"code_challenge_method": {"S256"},
	}
	if base != sim.AuthURL() || !reflect.DeepEqual(q, want) {
		t.Errorf("consent URL %s;\nwant %s?%s", u, sim.AuthURL(), want.Encode())
	}
	c.PKCEVerifier = ""
	if _, err := tenant.AuthCode.ConsentURL(c); err == nil {
		t.Error("ConsentURL without a PKCE verifier succeeded")
	}
	if _, err := tenant.AuthCode.Exchange(context.Background(), "code", c); err == nil {
		t.Error("Exchange without a PKCE verifier succeeded")
	}
}

func TestOAuth2Connect(t *testing.T) {
	sim := newOAuth2Sim(t, providertest.SimOptions{})
	tenant := oauth2CodeTenant(t, sim, func(c *config.Tenant) {
		c.TokenParams = map[string]string{"resource": "https://api.example.com"}
	})
	tok, c := connect(t, tenant, "nonce-1")
	form := sim.LastTokenRequest().Form
	for k, want := range map[string]string{"grant_type": "authorization_code", "redirect_uri": testRedirect,
		"code_verifier": c.PKCEVerifier, "resource": "https://api.example.com"} {
		if got := form.Get(k); got != want {
			t.Errorf("token request %s = %q; want %q", k, got, want)
		}
	}
	if tok.RefreshToken == "" || tok.Expiry.IsZero() {
		t.Errorf("token: refresh %q, expiry %v; want both", tok.RefreshToken, tok.Expiry)
	}
	if code, body := callAPI(t, tenant, "/v1/whoami", tok.AccessToken); code != http.StatusOK {
		t.Errorf("whoami: %d %s", code, body)
	}
}

func TestOAuth2PKCEChecked(t *testing.T) {
	sim := newOAuth2Sim(t, providertest.SimOptions{})
	tenant := oauth2CodeTenant(t, sim, nil)
	c := newConsent("n")
	u, err := tenant.AuthCode.ConsentURL(c)
	if err != nil {
		t.Fatal(err)
	}
	code := approve(t, u).Get("code")
	c.PKCEVerifier = NewPKCEVerifier() // not the one the challenge came from
	_, err = tenant.AuthCode.Exchange(context.Background(), code, c)
	var te *TokenError
	if !errors.As(err, &te) || te.Code != "invalid_grant" {
		t.Errorf("exchange with another verifier: %v; want invalid_grant", err)
	}
}

func TestOAuth2CodeRefresh(t *testing.T) {
	for _, rotate := range []bool{false, true} {
		sim := newOAuth2Sim(t, providertest.SimOptions{RotateRefreshTokens: rotate})
		tenant := oauth2CodeTenant(t, sim, func(c *config.Tenant) {
			c.TokenParams = map[string]string{"resource": "https://api.example.com"}
		})
		tok, _ := connect(t, tenant, "n")
		for i := range 2 {
			next, err := tenant.AuthCode.Refresh(context.Background(), tok.RefreshToken)
			if err != nil {
				t.Fatalf("rotate=%v, refresh %d: %v", rotate, i, err)
			}
			form := sim.LastTokenRequest().Form
			if form.Get("grant_type") != "refresh_token" || form.Get("refresh_token") != tok.RefreshToken ||
				form.Get("resource") != "https://api.example.com" || form.Has("scope") {
				t.Errorf("rotate=%v: refresh request %v; want the refresh grant with token_params and no scope", rotate, form)
			}
			if rotated := next.RefreshToken != tok.RefreshToken; rotated != rotate || !sim.ValidRefreshToken(next.RefreshToken) {
				t.Errorf("rotate=%v: refresh token changed %v, valid %v", rotate, rotated, sim.ValidRefreshToken(next.RefreshToken))
			}
			if code, _ := callAPI(t, tenant, "/v1/items", next.AccessToken); code != http.StatusOK {
				t.Errorf("rotate=%v: refreshed token answered %d", rotate, code)
			}
			tok = next
		}
		if sim.RefreshReuse() != 0 || sim.RefreshRequests() != 2 {
			t.Errorf("rotate=%v: RefreshReuse %d, RefreshRequests %d; want 0, 2", rotate, sim.RefreshReuse(), sim.RefreshRequests())
		}
	}
}

func TestOAuth2CodeRefreshRefused(t *testing.T) {
	sim := newOAuth2Sim(t, providertest.SimOptions{})
	tenant := oauth2CodeTenant(t, sim, nil)
	tok, _ := connect(t, tenant, "n")
	sim.RevokeRefreshTokens()
	_, err := tenant.AuthCode.Refresh(context.Background(), tok.RefreshToken)
	var te *TokenError
	if !errors.Is(err, ErrConsentRequired) || !errors.As(err, &te) || te.Code != "invalid_grant" {
		t.Fatalf("refused refresh: %v; want invalid_grant matching ErrConsentRequired", err)
	}
	if _, err := tenant.AuthCode.Refresh(context.Background(), ""); !errors.Is(err, ErrConsentRequired) {
		t.Errorf("Refresh without a refresh token: %v; want ErrConsentRequired", err)
	}
	// A wrong client secret is a configuration problem, not a consent one.
	bad := oauth2CodeTenant(t, sim, func(c *config.Tenant) { c.ClientSecret = "nope-wrong"; c.ClientAuth = "header" })
	sim.AddRefreshToken("rt-live-123")
	if _, err := bad.AuthCode.Refresh(context.Background(), "rt-live-123"); errors.Is(err, ErrConsentRequired) || !errors.As(err, &te) || te.Code != "invalid_client" {
		t.Errorf("wrong secret: %v; want invalid_client without ErrConsentRequired", err)
	}
}

package providers

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/sidekey/sidekey/config"
	"github.com/sidekey/sidekey/providers/providertest"
)

const (
	testClientID = "client-123"
	testSecret   = "super-secret-value-9f8e7d"
)

// simpleStoreTenant builds a simplestore tenant pointing at sim.
func simpleStoreTenant(t *testing.T, sim *providertest.SimpleStore, modify func(*config.Tenant)) *Tenant {
	t.Helper()
	return simTenant(t, "eu-simple", "simplestore", sim.TokenURL(), sim.APIURL(), modify)
}

// simTenant builds tenant name of provider with the test client's
// credentials and a simulator's endpoints; modify, if not nil, changes the
// config first.
func simTenant(t *testing.T, name, provider, tokenURL, apiURL string, modify func(*config.Tenant)) *Tenant {
	t.Helper()
	c := &config.Tenant{
		Provider:     provider,
		ClientID:     testClientID,
		ClientSecret: testSecret,
		TokenURL:     tokenURL,
		APIURL:       apiURL,
	}
	if modify != nil {
		modify(c)
	}
	tenant, err := Build(name, c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return tenant
}

func newSimpleStore(t *testing.T, opts providertest.SimOptions) *providertest.SimpleStore {
	t.Helper()
	if opts.ClientID == "" {
		opts.ClientID, opts.ClientSecret = testClientID, testSecret
	}
	sim := providertest.NewSimpleStore(opts)
	t.Cleanup(sim.Close)
	return sim
}

// getAPI calls the simulator's API with tok injected as tenant says.
func getAPI(t *testing.T, tenant *Tenant, path, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, tenant.APIURL.String()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(tenant.Inject.Header, tenant.Inject.Value(token))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestSimpleStoreToken(t *testing.T) {
	var tests = []struct {
		name string                  // what the case is about
		sim  providertest.SimOptions // simulator behaviour
		want time.Duration           // expected lifetime
	}{
		{"documented expiries_in", providertest.SimOptions{TokenLifetime: 1800 * time.Second}, 1800 * time.Second},
		{"standard expires_in", providertest.SimOptions{ExpiresField: "expires_in", TokenLifetime: 1200 * time.Second}, 1200 * time.Second},
		{"lifetime as a string", providertest.SimOptions{ExpiresAsString: true, TokenLifetime: 600 * time.Second}, 600 * time.Second},
		{"no lifetime: documented 60 minutes", providertest.SimOptions{ExpiresField: "none", TokenLifetime: 5 * time.Second}, time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim := newSimpleStore(t, tt.sim)
			tenant := simpleStoreTenant(t, sim, nil)
			before := time.Now()
			tok, err := tenant.Source.Token()
			if err != nil {
				t.Fatal(err)
			}
			after := time.Now()
			if tok.AccessToken == "" {
				t.Fatal("empty access token")
			}
			if tok.Expiry.Before(before.Add(tt.want)) || tok.Expiry.After(after.Add(tt.want)) {
				t.Errorf("Expiry = %v from now; want %v", tok.Expiry.Sub(before), tt.want)
			}
			if code, body := getAPI(t, tenant, "/v1/cart/42", tok.AccessToken); code != http.StatusOK || !strings.Contains(body, `"id":"42"`) {
				t.Errorf("GET /v1/cart/42 = %d %s; want 200 with the cart", code, body)
			}
		})
	}
}

func TestSimpleStoreSendsDocumentedForm(t *testing.T) {
	sim := newSimpleStore(t, providertest.SimOptions{})
	tenant := simpleStoreTenant(t, sim, nil)
	if _, err := tenant.Source.Token(); err != nil {
		t.Fatal(err)
	}
	got := sim.LastTokenRequest()
	if got.ClientAuth != "body" {
		t.Errorf("client authenticated by %q; want body", got.ClientAuth)
	}
	for k, want := range map[string]string{"grant_type": "client_credentials", "client_id": testClientID, "client_secret": testSecret} {
		if v := got.Form.Get(k); v != want {
			t.Errorf("form %s = %q; want %q", k, v, want)
		}
	}
	if ct := got.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
		t.Errorf("Content-Type = %q", ct)
	}
	if got.Header.Get("Authorization") != "" {
		t.Error("credentials sent in a header too")
	}
}

func TestSimpleStoreHeaderAuthScopesParams(t *testing.T) {
	sim := newSimpleStore(t, providertest.SimOptions{})
	tenant := simpleStoreTenant(t, sim, func(c *config.Tenant) {
		c.ClientAuth = "header"
		c.Scopes = []string{"cart.read", "cart.write"}
		c.TokenParams = map[string]string{"resource": "https://api.simplestore.io"}
	})
	tok, err := tenant.Source.Token()
	if err != nil {
		t.Fatal(err)
	}
	got := sim.LastTokenRequest()
	if got.ClientAuth != "header" || got.ClientID != testClientID {
		t.Errorf("client auth = %q as %q; want header as %q", got.ClientAuth, got.ClientID, testClientID)
	}
	if got.Form.Has("client_secret") {
		t.Error("client_secret in the body with client_auth header")
	}
	if s := got.Form.Get("scope"); s != "cart.read cart.write" {
		t.Errorf("scope = %q", s)
	}
	if r := got.Form.Get("resource"); r != "https://api.simplestore.io" {
		t.Errorf("resource = %q", r)
	}
	if s, _ := tok.Extra("scope").(string); s != "cart.read cart.write" {
		t.Errorf("granted scope = %q", s)
	}
}

func TestSimpleStoreInvalidClient(t *testing.T) {
	sim := newSimpleStore(t, providertest.SimOptions{ClientID: testClientID, ClientSecret: "the-right-one"})
	tenant := simpleStoreTenant(t, sim, nil)
	_, err := tenant.Source.Token()
	var te *TokenError
	if !errors.As(err, &te) {
		t.Fatalf("error %v (%T); want *TokenError", err, err)
	}
	if te.Status != 400 || te.Code != "invalid_client" || te.Provider != "simplestore" {
		t.Errorf("TokenError = %+v; want simplestore 400 invalid_client", te)
	}
	if te.Description != "Invalid client credentials" {
		t.Errorf("Description = %q; want the title", te.Description)
	}
	msg := err.Error()
	if want := "simplestore: token request failed: 400 invalid_client: Invalid client credentials"; msg != want {
		t.Errorf("Error() = %q; want %q", msg, want)
	}
	for _, leak := range []string{testSecret, `{"error"`, `"title"`} {
		if strings.Contains(msg, leak) {
			t.Errorf("Error() %q contains %q", msg, leak)
		}
	}
	if te.Retryable() {
		t.Error("invalid_client is retryable")
	}
}

func TestSimpleStoreFailures(t *testing.T) {
	sim := newSimpleStore(t, providertest.SimOptions{})
	tenant := simpleStoreTenant(t, sim, nil)

	sim.FailTokenRequests(http.StatusServiceUnavailable, 1)
	_, err := tenant.Source.Token()
	var te *TokenError
	if !errors.As(err, &te) || te.Status != 503 || !te.Retryable() || te.RetryAfter != time.Second {
		t.Fatalf("error = %v (%+v); want retryable 503 with Retry-After 1s", err, te)
	}
	if _, err := tenant.Source.Token(); err != nil {
		t.Fatalf("after the injected failure: %v", err)
	}

	// A deadline bounds the request through TokenContext.
	sim.SetTokenLatency(time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = tenant.Source.(ContextTokenSource).TokenContext(ctx)
	if !errors.As(err, &te) || te.Status != 0 || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error = %v; want a TokenError wrapping context.DeadlineExceeded", err)
	}
}

func TestSimpleStoreUnreachable(t *testing.T) {
	sim := newSimpleStore(t, providertest.SimOptions{})
	tenant := simpleStoreTenant(t, sim, nil)
	sim.Close()
	_, err := tenant.Source.Token()
	var te *TokenError
	if !errors.As(err, &te) || te.Status != 0 || te.Err == nil || !te.Retryable() {
		t.Fatalf("error = %v; want a retryable TokenError with a cause", err)
	}
	if !strings.HasPrefix(err.Error(), "simplestore: token request failed: Post ") {
		t.Errorf("Error() = %q", err.Error())
	}
}

func TestLowercaseBearerInjectedAsBearer(t *testing.T) {
	sim := newSimpleStore(t, providertest.SimOptions{TokenType: "bearer"})
	tenant := simpleStoreTenant(t, sim, nil)
	tok, err := tenant.Source.Token()
	if err != nil {
		t.Fatal(err)
	}
	if tok.TokenType != "bearer" || tok.Type() != "Bearer" {
		t.Errorf("TokenType %q, Type() %q; want raw bearer, normalised Bearer", tok.TokenType, tok.Type())
	}
	if v := tenant.Inject.Value(tok.AccessToken); v != "Bearer "+tok.AccessToken {
		t.Errorf("injected %q; want Bearer prefix", v)
	}
	if code, _ := getAPI(t, tenant, "/v1/products", tok.AccessToken); code != http.StatusOK {
		t.Errorf("API answered %d", code)
	}
}

func TestRevokedTokenRejectedByAPI(t *testing.T) {
	sim := newSimpleStore(t, providertest.SimOptions{})
	tenant := simpleStoreTenant(t, sim, nil)
	tok, err := tenant.Source.Token()
	if err != nil {
		t.Fatal(err)
	}
	sim.RevokeAll()
	code, body := getAPI(t, tenant, "/v1/cart/1", tok.AccessToken)
	if code != http.StatusUnauthorized || !strings.Contains(body, `"status":401`) {
		t.Errorf("after RevokeAll: %d %s; want a 401 problem", code, body)
	}
	// Every call is a new token request: the source does not cache.
	fresh, err := tenant.Source.Token()
	if err != nil {
		t.Fatal(err)
	}
	if fresh.AccessToken == tok.AccessToken || sim.TokenRequests() != 2 {
		t.Errorf("second Token() reused the token or made %d requests; want a new one from 2 requests", sim.TokenRequests())
	}
	if code, _ := getAPI(t, tenant, "/v1/cart/1", fresh.AccessToken); code != http.StatusOK {
		t.Errorf("fresh token: %d", code)
	}
}

// oddTokenServer answers every token request with status and body.
func oddTokenServer(t *testing.T, status int, contentType string, body []byte) string {
	t.Helper()
	srv := newHTTPServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		w.Write(body)
	}))
	return srv + "/token"
}

func TestSimpleStoreOddResponses(t *testing.T) {
	big := []byte(`{"access_token":"` + strings.Repeat("a", 2<<20) + `"}`)
	var tests = []struct {
		name   string // what the case is about
		status int    // token endpoint status
		body   []byte // token endpoint body
		want   string // Error(), or "" for success
	}{
		{"negative lifetime", 200, []byte(`{"access_token":"tok","expires_in":-5}`),
			"simplestore: token request failed: 200 invalid_response: expires_in is negative"},
		{"lifetime of wrong type", 200, []byte(`{"access_token":"tok","expiries_in":true}`),
			"simplestore: token request failed: 200 invalid_response: expiries_in is not a number"},
		{"body over 1 MiB", 200, big,
			"simplestore: token request failed: 200 invalid_response: response body exceeds 1 MiB"},
		{"html error page", 502, []byte("<html>bad gateway secret-ish</html>"),
			"simplestore: token request failed: 502"},
		{"huge lifetime is capped", 200, []byte(`{"access_token":"tok","expires_in":1e300}`), ""},
		{"error on a 200", 200, []byte(`{"error":"invalid_client"}`),
			"simplestore: token request failed: 200 invalid_client: the token endpoint rejected the client credentials (check client_id and client_secret)"},
	}
	for _, tt := range tests {
		url := oddTokenServer(t, tt.status, "application/json", tt.body)
		tenant := mustBuild(t, &config.Tenant{Provider: "simplestore", ClientID: "id", ClientSecret: "secret", TokenURL: url})
		tok, err := tenant.Source.Token()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.want == "" && time.Until(tok.Expiry) < 60*365*24*time.Hour:
			t.Errorf("%s: Expiry %v; want about 68 years", tt.name, tok.Expiry)
		case tt.want != "" && (err == nil || err.Error() != tt.want):
			t.Errorf("%s: error %v; want %q", tt.name, err, tt.want)
		}
	}
}

func mustBuild(t *testing.T, c *config.Tenant) *Tenant {
	t.Helper()
	if c.APIURL == "" {
		c.APIURL = "http://127.0.0.1:1"
	}
	tenant, err := Build("odd", c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return tenant
}

// Compile-time checks that every source is a ContextTokenSource.
var (
	_ ContextTokenSource = (*simpleStoreSource)(nil)
	_ ContextTokenSource = (*oauth2Source)(nil)
	_ ContextTokenSource = staticSource{}
	_ oauth2.TokenSource = staticSource{}
)

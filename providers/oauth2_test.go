package providers

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/sidekey/sidekey/config"
	"github.com/sidekey/sidekey/providers/providertest"
)

func newHTTPServer(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

func newOAuth2Sim(t *testing.T, opts providertest.SimOptions) *providertest.OAuth2 {
	t.Helper()
	if opts.ClientID == "" {
		opts.ClientID, opts.ClientSecret = testClientID, testSecret
	}
	sim := providertest.NewOAuth2(opts)
	t.Cleanup(sim.Close)
	return sim
}

func oauth2Tenant(t *testing.T, sim *providertest.OAuth2, modify func(*config.Tenant)) *Tenant {
	t.Helper()
	return simTenant(t, "other-api", "oauth2", sim.TokenURL(), sim.APIURL(), modify)
}

func TestOAuth2ClientAuth(t *testing.T) {
	var tests = []struct {
		config   string // tenant client_auth
		sim      string // method the simulator insists on
		requests int64  // token requests the first Token() costs
		saw      string // how the simulator saw the client authenticate
	}{
		{"header", "header", 1, "header"},
		{"body", "body", 1, "body"},
		{"", "header", 1, "header"},
		{"", "body", 2, "body"}, // auto-detect: Basic first, then the form
	}
	for _, tt := range tests {
		sim := newOAuth2Sim(t, providertest.SimOptions{ClientAuth: tt.sim})
		tenant := oauth2Tenant(t, sim, func(c *config.Tenant) { c.ClientAuth = tt.config })
		if _, err := tenant.Source.Token(); err != nil {
			t.Fatalf("client_auth %q against %q: %v", tt.config, tt.sim, err)
		}
		if n := sim.TokenRequests(); n != tt.requests {
			t.Errorf("client_auth %q against %q: %d requests; want %d", tt.config, tt.sim, n, tt.requests)
		}
		got := sim.LastTokenRequest()
		if got.ClientAuth != tt.saw || got.ClientID != testClientID {
			t.Errorf("client_auth %q: simulator saw %q as %q; want %q", tt.config, got.ClientAuth, got.ClientID, tt.saw)
		}
		if (tt.saw == "header") == got.Form.Has("client_secret") {
			t.Errorf("client_auth %q: client_secret in the form = %v", tt.config, got.Form.Has("client_secret"))
		}
		// The detected style is remembered: the next request costs one.
		if _, err := tenant.Source.Token(); err != nil {
			t.Fatal(err)
		}
		if n := sim.TokenRequests(); n != tt.requests+1 {
			t.Errorf("client_auth %q: second Token() made %d requests in all; want %d", tt.config, n, tt.requests+1)
		}
	}
}

func TestOAuth2ScopesAndAudience(t *testing.T) {
	sim := newOAuth2Sim(t, providertest.SimOptions{Scopes: []string{"orders:read", "orders:write", "other"}})
	tenant := oauth2Tenant(t, sim, func(c *config.Tenant) {
		c.Scopes = []string{"orders:read", "orders:write"}
		c.TokenParams = map[string]string{"audience": "https://api.example.com"}
	})
	tok, err := tenant.Source.Token()
	if err != nil {
		t.Fatal(err)
	}
	form := sim.LastTokenRequest().Form
	if s := form.Get("scope"); s != "orders:read orders:write" {
		t.Errorf("scope = %q", s)
	}
	if a := form.Get("audience"); a != "https://api.example.com" {
		t.Errorf("audience = %q", a)
	}
	code, body := getAPI(t, tenant, "/v1/whoami", tok.AccessToken)
	var who map[string]string
	if code != http.StatusOK || json.Unmarshal([]byte(body), &who) != nil {
		t.Fatalf("whoami: %d %s", code, body)
	}
	if who["audience"] != "https://api.example.com" || who["scope"] != "orders:read orders:write" || who["client_id"] != testClientID {
		t.Errorf("token issued for %v", who)
	}

	// A scope the server does not grant is invalid_scope.
	bad := oauth2Tenant(t, sim, func(c *config.Tenant) { c.Scopes = []string{"admin"}; c.ClientAuth = "header" })
	_, err = bad.Source.Token()
	var te *TokenError
	if !errors.As(err, &te) || te.Code != "invalid_scope" || te.Status != 400 {
		t.Errorf("error = %v; want 400 invalid_scope", err)
	}
}

func TestOAuth2InvalidClient(t *testing.T) {
	sim := newOAuth2Sim(t, providertest.SimOptions{ClientID: testClientID, ClientSecret: "another-secret"})
	tenant := oauth2Tenant(t, sim, func(c *config.Tenant) { c.ClientAuth = "header" })
	_, err := tenant.Source.Token()
	var te *TokenError
	if !errors.As(err, &te) {
		t.Fatalf("error %v (%T); want *TokenError", err, err)
	}
	if te.Status != 401 || te.Code != "invalid_client" || te.Provider != "oauth2" {
		t.Errorf("TokenError = %+v; want oauth2 401 invalid_client", te)
	}
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		t.Error("the *oauth2.RetrieveError (which prints the body) is reachable through the error")
	}
	msg := err.Error()
	if want := "oauth2: token request failed: 401 invalid_client: client authentication failed"; msg != want {
		t.Errorf("Error() = %q; want %q", msg, want)
	}
	for _, leak := range []string{testSecret, "Response:", `{"error"`} {
		if strings.Contains(msg, leak) {
			t.Errorf("Error() %q contains %q", msg, leak)
		}
	}
}

func TestOAuth2ErrorShapes(t *testing.T) {
	var tests = []struct {
		status int    // token endpoint status
		body   string // token endpoint body
		want   string // Error()
	}{
		{400, `{"error":"invalid_client","title":"Bad client"}`, "oauth2: token request failed: 400 invalid_client: Bad client"},
		{401, `{"error":"INVALID_CLIENT","message":"Client authentication failed.","context":null}`,
			"oauth2: token request failed: 401 INVALID_CLIENT: Client authentication failed."},
		{400, `{"error":"invalid_grant"}`,
			"oauth2: token request failed: 400 invalid_grant: the grant (refresh token or code) was rejected: it may be expired or revoked"},
		{500, `upstream exploded: ` + testSecret, "oauth2: token request failed: 500"},
		{400, `{"error":"invalid_request","error_description":"secret ` + testSecret + ` is wrong"}`,
			"oauth2: token request failed: 400 invalid_request: secret [redacted] is wrong"},
		{200, `{"access_token":"tok","expires_in":-10}`, "oauth2: token request failed: invalid_response: expires_in is negative"},
		{200, `{"access_token":"tok","expires_in":1.5}`, "oauth2: token request failed: invalid_response: cannot parse json: strconv.ParseInt: parsing \"1.5\": invalid syntax"},
		{200, `{"access_token":"` + strings.Repeat("a", 1<<20) + `"}`,
			"oauth2: token request failed: 200 invalid_response: response body exceeds 1 MiB"},
		{200, `{"token_type":"bearer"}`, "oauth2: token request failed: invalid_response: server response missing access_token"},
		{200, "{\"access_token\":\"a\\r\\nX-Evil: 1\"}", "oauth2: token request failed: invalid_response: access_token contains control characters"},
	}
	for _, tt := range tests {
		url := oddTokenServer(t, tt.status, "application/json", []byte(tt.body))
		tenant := mustBuild(t, &config.Tenant{Provider: "oauth2", ClientID: "id", ClientSecret: testSecret,
			ClientAuth: "body", TokenURL: url})
		_, err := tenant.Source.Token()
		if err == nil || err.Error() != tt.want {
			t.Errorf("%d %.100s: error %v; want %q", tt.status, tt.body, err, tt.want)
		}
	}
}

func TestOAuth2Lifetimes(t *testing.T) {
	var tests = []struct {
		sim  providertest.SimOptions // how the simulator states the lifetime
		want time.Duration           // expected lifetime; 0: zero Expiry
	}{
		{providertest.SimOptions{TokenLifetime: 900 * time.Second}, 900 * time.Second},
		{providertest.SimOptions{TokenLifetime: 900 * time.Second, ExpiresAsString: true}, 900 * time.Second},
		{providertest.SimOptions{ExpiresField: "none"}, 0},
	}
	for _, tt := range tests {
		sim := newOAuth2Sim(t, tt.sim)
		tenant := oauth2Tenant(t, sim, nil)
		before := time.Now()
		tok, err := tenant.Source.Token()
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case tt.want == 0 && !tok.Expiry.IsZero():
			t.Errorf("%+v: Expiry %v; want zero (unknown)", tt.sim, tok.Expiry)
		case tt.want != 0 && (tok.Expiry.Before(before.Add(tt.want)) || tok.Expiry.After(time.Now().Add(tt.want))):
			t.Errorf("%+v: Expiry %v from now; want %v", tt.sim, tok.Expiry.Sub(before), tt.want)
		}
	}
}

func TestOAuth2RefreshTokenGrant(t *testing.T) {
	for _, rotate := range []bool{false, true} {
		const seed = "seed-refresh-token-abcdef"
		sim := newOAuth2Sim(t, providertest.SimOptions{RefreshToken: seed, RotateRefreshTokens: rotate})
		tenant := oauth2Tenant(t, sim, func(c *config.Tenant) {
			c.Grant = "refresh_token"
			c.RefreshToken = seed
			c.TokenParams = map[string]string{"resource": "https://api.example.com"}
		})
		var used []string
		for i := range 3 {
			tok, err := tenant.Source.Token()
			if err != nil {
				t.Fatalf("rotate=%v, refresh %d: %v", rotate, i, err)
			}
			req := sim.LastTokenRequest()
			if g := req.Form.Get("grant_type"); g != "refresh_token" {
				t.Errorf("grant_type = %q", g)
			}
			if r := req.Form.Get("resource"); r != "https://api.example.com" {
				t.Errorf("resource = %q; token_params must be sent with the refresh grant", r)
			}
			used = append(used, req.Form.Get("refresh_token"))
			if !sim.ValidRefreshToken(tok.RefreshToken) {
				t.Errorf("rotate=%v: returned refresh token is not the valid one", rotate)
			}
		}
		distinct := used[0] != used[1] && used[1] != used[2]
		if used[0] != seed || distinct != rotate {
			t.Errorf("rotate=%v: refresh tokens sent %q; want the seed first and rotation=%v", rotate, used, rotate)
		}
		if rotate && sim.ValidRefreshToken(seed) {
			t.Error("the seed is still valid after rotation")
		}
	}
}

func TestOAuth2RefreshTokenRevoked(t *testing.T) {
	const seed = "seed-refresh-token-abcdef"
	sim := newOAuth2Sim(t, providertest.SimOptions{RefreshToken: seed})
	sim.RevokeRefreshTokens()
	tenant := oauth2Tenant(t, sim, func(c *config.Tenant) {
		c.Grant, c.RefreshToken, c.ClientAuth = "refresh_token", seed, "header"
	})
	_, err := tenant.Source.Token()
	var te *TokenError
	if !errors.As(err, &te) || te.Code != "invalid_grant" || te.Retryable() {
		t.Fatalf("error = %v; want a permanent invalid_grant", err)
	}
	if strings.Contains(err.Error(), seed) {
		t.Errorf("Error() %q contains the refresh token", err)
	}
}

func TestOAuth2Unreachable(t *testing.T) {
	sim := newOAuth2Sim(t, providertest.SimOptions{})
	tenant := oauth2Tenant(t, sim, func(c *config.Tenant) { c.ClientAuth = "body" })
	sim.Close()
	_, err := tenant.Source.Token()
	var te *TokenError
	if !errors.As(err, &te) || te.Status != 0 || te.Err == nil || !te.Retryable() {
		t.Fatalf("error = %v; want a retryable TokenError with a cause", err)
	}
}

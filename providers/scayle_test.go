package providers

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/oauth2"

	"github.com/sidekey/sidekey/config"
	"github.com/sidekey/sidekey/providers/providertest"
)

const testShopSecret = "shop-secret-value-5a4b3c"

func newSCAYLESim(t *testing.T, opts providertest.SCAYLEOptions) *providertest.SCAYLE {
	t.Helper()
	if opts.ClientID == "" {
		opts.ClientID, opts.ClientSecret = testClientID, testSecret
	}
	opts.ShopID, opts.ShopSecret, opts.IdpKey = "1001", testShopSecret, "google"
	sim := providertest.NewSCAYLE(opts)
	t.Cleanup(sim.Close)
	return sim
}

func scayleConfig() *config.Tenant {
	return &config.Tenant{Provider: "scayle", TenantSpace: "acme", ShopID: "1001", IdpKey: "google",
		ClientID: testClientID, ClientSecret: testSecret, ShopSecret: testShopSecret}
}

func scayleTenant(t *testing.T, sim *providertest.SCAYLE) *Tenant {
	t.Helper()
	c := scayleConfig()
	c.AuthURL, c.TokenURL, c.APIURL = sim.AuthURL(), sim.TokenURL(), sim.APIURL()
	return buildAuthCode(t, "de-scayle", c, Options{})
}

func TestSCAYLEDefaults(t *testing.T) {
	tenant := buildAuthCode(t, "de-scayle", scayleConfig(), Options{})
	for got, want := range map[string]string{
		tenant.AuthURL.String():  "https://acme.auth.scayle.cloud/v1/auth/external/redirect",
		tenant.TokenURL.String(): "https://acme.auth.scayle.cloud/v1/oauth/token",
		tenant.APIURL.String():   "https://acme.checkout.api.scayle.cloud/api",
	} {
		if got != want {
			t.Errorf("endpoint %q; want %q", got, want)
		}
	}
	if got := tenant.Headers.Get("X-Shop-Id"); got != "1001" {
		t.Errorf("X-Shop-Id = %q; want the shop id", got)
	}
	c := scayleConfig()
	c.Headers = map[string]string{"x-shop-id": "2002"}
	if got := buildAuthCode(t, "de-scayle", c, Options{}).Headers.Values("X-Shop-Id"); len(got) != 1 || got[0] != "2002" {
		t.Errorf("configured X-Shop-Id gave %q; want only the configured 2002", got)
	}
}

func TestSCAYLEConsentURL(t *testing.T) {
	tenant := buildAuthCode(t, "de-scayle", scayleConfig(), Options{})
	c := newConsent("nonce-9")
	c.Now = time.Now().Add(-time.Minute).Truncate(time.Second)
	u, err := tenant.AuthCode.ConsentURL(c)
	if err != nil {
		t.Fatal(err)
	}
	base, q := consentParams(t, u)
	if base != "https://acme.auth.scayle.cloud/v1/auth/external/redirect" || len(q) != 2 || q.Get("shopId") != "1001" {
		t.Fatalf("consent URL %s; want the redirect endpoint with shopId and jwt only", u)
	}
	claims := jwt.MapClaims{}
	_, err = jwt.ParseWithClaims(q.Get("jwt"), claims, func(*jwt.Token) (any, error) { return []byte(testShopSecret), nil },
		jwt.WithValidMethods([]string{"HS256"}))
	if err != nil {
		t.Fatalf("consent JWT does not verify with the shop secret: %v", err)
	}
	want := map[string]any{"callbackUrl": testRedirect, "idpKey": "google", "clientId": testClientID, "nonce": "nonce-9",
		"iat": float64(c.Now.Unix()), "exp": float64(c.Now.Add(15 * time.Minute).Unix())}
	for k, v := range want {
		if claims[k] != v {
			t.Errorf("claim %s = %v; want %v", k, claims[k], v)
		}
	}
	if len(claims) != len(want) {
		t.Errorf("claims %v; want exactly %v", claims, want)
	}
}

func TestSCAYLEConnect(t *testing.T) {
	sim := newSCAYLESim(t, providertest.SCAYLEOptions{})
	tenant := scayleTenant(t, sim)
	before := time.Now()
	tok, _ := connect(t, tenant, "nonce-1")

	req := sim.LastTokenRequest()
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(testClientID+":"+testSecret))
	if req.Header.Get("Authorization") != basic || req.Header.Get("Content-Type") != "application/json" {
		t.Errorf("token request: Authorization %q, Content-Type %q; want Basic base64(id:secret) and JSON",
			req.Header.Get("Authorization"), req.Header.Get("Content-Type"))
	}
	if req.Form.Get("grant_type") != "authorization_code" || req.Form.Get("code") == "" || req.Form.Has("client_secret") {
		t.Errorf("token request body %v; want grant_type and code only", req.Form)
	}
	if tok.RefreshToken == "" || !within(tok.Expiry, before.Add(time.Hour), 2*time.Second) {
		t.Errorf("token: refresh %q, expiry in %v; want a refresh token and 1h", tok.RefreshToken, tok.Expiry.Sub(before))
	}
	if code, body := callAPI(t, tenant, "/v1/customers/me", tok.AccessToken); code != http.StatusOK || !strings.Contains(body, `"shopId":"1001"`) {
		t.Errorf("customers/me: %d %s", code, body)
	}
	// Without X-Shop-Id the Checkout API refuses the request.
	noShop := *tenant
	noShop.Headers = http.Header{}
	if code, _ := callAPI(t, &noShop, "/v1/customers/me", tok.AccessToken); code != http.StatusBadRequest {
		t.Errorf("without X-Shop-Id: %d; want 400", code)
	}
}

func TestSCAYLEJWTExpSooner(t *testing.T) {
	sim := newSCAYLESim(t, providertest.SCAYLEOptions{})
	sim.SetJWTLifetime(5 * time.Minute)
	before := time.Now()
	tok, _ := connect(t, scayleTenant(t, sim), "n")
	if tok.ExpiresIn != 3600 || !within(tok.Expiry, before.Add(5*time.Minute), 2*time.Second) {
		t.Errorf("expires_in %d, Expiry in %v; want 3600 and the JWT's 5m", tok.ExpiresIn, tok.Expiry.Sub(before))
	}
}

func TestSCAYLERefreshRotation(t *testing.T) {
	sim := newSCAYLESim(t, providertest.SCAYLEOptions{})
	tenant := scayleTenant(t, sim)
	tok, _ := connect(t, tenant, "n")
	origExpiry, _ := sim.RefreshExpiry(tok.RefreshToken)
	used := []string{tok.RefreshToken}
	for i := range 3 {
		next, err := tenant.AuthCode.Refresh(context.Background(), tok.RefreshToken)
		if err != nil {
			t.Fatalf("refresh %d: %v", i, err)
		}
		req := sim.LastTokenRequest()
		if req.Form.Get("grant_type") != "refresh_token" || req.Form.Get("refresh_token") != tok.RefreshToken {
			t.Errorf("refresh %d sent %v", i, req.Form)
		}
		if next.RefreshToken == tok.RefreshToken || next.AccessToken == tok.AccessToken {
			t.Fatalf("refresh %d did not return a new pair", i)
		}
		if sim.ValidRefreshToken(tok.RefreshToken) || !sim.ValidRefreshToken(next.RefreshToken) {
			t.Errorf("refresh %d: the used refresh token is still valid, or the new one is not", i)
		}
		if exp, _ := sim.RefreshExpiry(next.RefreshToken); !exp.Equal(origExpiry) {
			t.Errorf("refresh %d: new refresh token expires %v; want the original %v", i, exp, origExpiry)
		}
		if code, _ := callAPI(t, tenant, "/v1/customers/me", next.AccessToken); code != http.StatusOK {
			t.Errorf("refresh %d: new access token answered %d", i, code)
		}
		tok = next
		used = append(used, tok.RefreshToken)
	}
	if n, r := sim.RefreshReuse(), sim.RefreshRequests(); n != 0 || r != 3 {
		t.Fatalf("RefreshReuse %d, RefreshRequests %d; want 0 and 3", n, r)
	}

	// Reusing a dead refresh token is refused, needs consent, and counts.
	_, err := tenant.AuthCode.Refresh(context.Background(), used[0])
	var te *TokenError
	if !errors.Is(err, ErrConsentRequired) || !errors.As(err, &te) || te.Code != "INVALID_GRANT" || te.Status != 400 {
		t.Fatalf("reused refresh token: %v; want 400 INVALID_GRANT matching ErrConsentRequired", err)
	}
	if sim.RefreshReuse() != 1 {
		t.Errorf("RefreshReuse = %d; want 1", sim.RefreshReuse())
	}
	for _, s := range append(used, testSecret, testShopSecret) {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error %q leaks a secret", err)
		}
	}
}

func TestSCAYLEInvalidClient(t *testing.T) {
	sim := newSCAYLESim(t, providertest.SCAYLEOptions{SimOptions: providertest.SimOptions{ClientID: testClientID, ClientSecret: "other"}})
	tenant := scayleTenant(t, sim)
	_, err := tenant.AuthCode.Refresh(context.Background(), "some-refresh-token")
	var te *TokenError
	if !errors.As(err, &te) || te.Code != "INVALID_CLIENT" || te.Description != "Client authentication failed." {
		t.Fatalf("error %v; want INVALID_CLIENT with SCAYLE's message", err)
	}
	if errors.Is(err, ErrConsentRequired) {
		t.Error("a rejected client secret matches ErrConsentRequired; it needs a config change, not consent")
	}
}

func TestSCAYLERevoke(t *testing.T) {
	sim := newSCAYLESim(t, providertest.SCAYLEOptions{})
	tenant := scayleTenant(t, sim)
	tok, _ := connect(t, tenant, "n")
	other, _ := connect(t, tenant, "m")
	revoker, ok := tenant.AuthCode.(Revoker)
	if !ok {
		t.Fatal("scayle's AuthCode is not a Revoker")
	}
	if err := revoker.Revoke(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	if code, _ := callAPI(t, tenant, "/v1/customers/me", tok.AccessToken); code != http.StatusUnauthorized {
		t.Errorf("revoked token: API answered %d; want 401", code)
	}
	if _, err := tenant.AuthCode.Refresh(context.Background(), tok.RefreshToken); !errors.Is(err, ErrConsentRequired) {
		t.Errorf("refresh token of a revoked session: %v; want ErrConsentRequired", err)
	}
	if code, _ := callAPI(t, tenant, "/v1/customers/me", other.AccessToken); code != http.StatusOK {
		t.Errorf("another session: %d; want 200 (only the one token is revoked)", code)
	}
	if sim.Logouts() != 1 {
		t.Errorf("Logouts = %d; want 1 (revocation is SCAYLE's logout)", sim.Logouts())
	}
	err := revoker.Revoke(context.Background(), &oauth2.Token{AccessToken: "opaque-access-token-unknown"})
	var te *TokenError
	if !errors.As(err, &te) || te.Op != "logout" || te.Status != http.StatusUnauthorized ||
		!strings.HasPrefix(err.Error(), "scayle: logout failed: 401") || strings.Contains(err.Error(), "opaque-access") {
		t.Errorf("logging out with an unknown token: %v; want a scayle logout TokenError with status 401", err)
	}
}

func TestSCAYLECallbackState(t *testing.T) {
	tenant := buildAuthCode(t, "de-scayle", scayleConfig(), Options{})
	payload := func(m map[string]any) []byte {
		b, _ := json.Marshal(m)
		return b
	}
	ours := payload(map[string]any{"callbackUrl": testRedirect, "clientId": testClientID, "idpKey": "~~~", "nonce": "n-1"})
	// A payload whose standard encoding has a '+', which an unescaped
	// query turns into a space.
	plus := base64.StdEncoding.EncodeToString(ours)
	for pad := ""; !strings.Contains(plus, "+"); pad += " " {
		plus = base64.StdEncoding.EncodeToString(append([]byte(pad), ours...))
	}
	for name, state := range map[string]string{
		"std padded":      base64.StdEncoding.EncodeToString(ours),
		"std unpadded":    base64.RawStdEncoding.EncodeToString(ours),
		"url padded":      base64.URLEncoding.EncodeToString(ours),
		"url unpadded":    base64.RawURLEncoding.EncodeToString(ours),
		"plus as a space": strings.ReplaceAll(plus, "+", " "),
	} {
		got, err := tenant.AuthCode.CallbackState(url.Values{"state": {state}})
		if err != nil || got != "n-1" {
			t.Errorf("%s: CallbackState = %q, %v; want n-1", name, got, err)
		}
	}
	var rejects = []struct {
		name  string // what is wrong with the state
		state string // the callback's state
	}{
		{"missing", ""},
		{"garbage", "%%%not base64%%%"},
		{"not JSON", base64.StdEncoding.EncodeToString([]byte("hello"))},
		{"JSON array", base64.StdEncoding.EncodeToString([]byte(`["clientId"]`))},
		{"foreign client", base64.StdEncoding.EncodeToString(payload(map[string]any{"clientId": "someone-else", "nonce": "n-1"}))},
		{"no client", base64.StdEncoding.EncodeToString(payload(map[string]any{"nonce": "n-1"}))},
		{"no nonce", base64.StdEncoding.EncodeToString(payload(map[string]any{"clientId": testClientID}))},
		{"empty nonce", base64.StdEncoding.EncodeToString(payload(map[string]any{"clientId": testClientID, "nonce": ""}))},
		{"object nonce", base64.StdEncoding.EncodeToString(payload(map[string]any{"clientId": testClientID, "nonce": map[string]any{}}))},
	}
	for _, tt := range rejects {
		got, err := tenant.AuthCode.CallbackState(url.Values{"state": {tt.state}})
		if err == nil {
			t.Errorf("%s: CallbackState = %q; want an error", tt.name, got)
			continue
		}
		if !strings.HasPrefix(err.Error(), "providers: scayle: ") || (len(tt.state) > 0 && strings.Contains(err.Error(), tt.state)) {
			t.Errorf("%s: error %q; want a providers: scayle: message that does not repeat the state", tt.name, err)
		}
	}
}

// testClientIDNumber is a numeric client id, as SCAYLE may assign.
const testClientIDNumber = "42"

func TestSCAYLENumericClientID(t *testing.T) {
	c := scayleConfig()
	c.ClientID = testClientIDNumber
	tenant := buildAuthCode(t, "de-scayle", c, Options{})
	for _, payload := range []string{`{"clientId":42,"nonce":"n"}`, `{"clientId":"42","nonce":"n"}`} {
		got, err := tenant.AuthCode.CallbackState(url.Values{"state": {base64.StdEncoding.EncodeToString([]byte(payload))}})
		if err != nil || got != "n" {
			t.Errorf("%s: %q, %v; want n", payload, got, err)
		}
	}
}

func FuzzCallbackState(f *testing.F) {
	good, _ := json.Marshal(map[string]any{"clientId": testClientID, "nonce": "n-1", "callbackUrl": testRedirect})
	for _, seed := range []string{
		base64.StdEncoding.EncodeToString(good),
		base64.RawURLEncoding.EncodeToString(good),
		base64.StdEncoding.EncodeToString([]byte(`{"clientId":"x","nonce":"y"}`)),
		base64.StdEncoding.EncodeToString([]byte(`{"clientId":42,"nonce":7}`)),
		"", "====", "a b+c/d-e_f", "e30", "bnVsbA",
	} {
		f.Add(seed)
	}
	tenant, err := Build("de-scayle", scayleConfig(), Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, state string) {
		nonce, err := tenant.AuthCode.CallbackState(url.Values{"state": {state}})
		if err != nil {
			if nonce != "" {
				t.Errorf("error %v with nonce %q", err, nonce)
			}
			if !strings.HasPrefix(err.Error(), "providers: scayle: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
			if len(state) >= 8 && strings.Contains(err.Error(), state) {
				t.Errorf("error %q repeats the state", err)
			}
			return
		}
		if nonce == "" {
			t.Fatal("accepted a state without a nonce")
		}
		// Whatever was accepted decodes to a JSON object for our client.
		payload, derr := decodeBase64(state)
		var claims map[string]any
		if derr != nil || json.Unmarshal(payload, &claims) != nil {
			t.Fatalf("accepted state %q does not decode to a JSON object", state)
		}
		if id, _ := jsonText(mustRaw(claims["clientId"])); id != testClientID {
			t.Fatalf("accepted a state for client %v", claims["clientId"])
		}
	})
}

// mustRaw re-encodes a decoded JSON value.
func mustRaw(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}

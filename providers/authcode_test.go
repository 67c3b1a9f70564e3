package providers

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/zap"
	"golang.org/x/oauth2"

	"github.com/sidekey/sidekey/config"
)

// testRedirect is the redirect URI sidekey would register.
const testRedirect = "http://127.0.0.1:8080/_sidekey/oauth/callback"

// newConsent is a consent flow in progress with state.
func newConsent(state string) Consent {
	return Consent{State: state, RedirectURL: testRedirect, PKCEVerifier: NewPKCEVerifier(), Now: time.Now()}
}

// buildAuthCode builds a consent-flow tenant and checks its shape.
func buildAuthCode(t *testing.T, name string, c *config.Tenant, opts Options) *Tenant {
	t.Helper()
	tenant, err := Build(name, c, opts)
	if err != nil {
		t.Fatal(err)
	}
	if tenant.AuthCode == nil || tenant.Source != nil || tenant.AuthURL == nil {
		t.Fatalf("%s: AuthCode %v, Source %v, AuthURL %v; want AuthCode and AuthURL only", name, tenant.AuthCode, tenant.Source, tenant.AuthURL)
	}
	return tenant
}

// approve opens consentURL as the person's browser would, expects the
// platform's 302 back to testRedirect and returns that callback's query.
func approve(t *testing.T, consentURL string) url.Values {
	t.Helper()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(consentURL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("consent page answered %d %s; want 302", resp.StatusCode, body)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	q := loc.Query()
	loc.RawQuery = ""
	if loc.String() != testRedirect {
		t.Fatalf("redirected to %s; want %s", loc, testRedirect)
	}
	if q.Get("code") == "" {
		t.Fatalf("callback %v carries no code", q)
	}
	return q
}

// connect runs a whole consent flow: consent URL, approval, callback
// state, exchange.
func connect(t *testing.T, tenant *Tenant, state string) (*oauth2.Token, Consent) {
	t.Helper()
	c := newConsent(state)
	u, err := tenant.AuthCode.ConsentURL(c)
	if err != nil {
		t.Fatal(err)
	}
	q := approve(t, u)
	got, err := tenant.AuthCode.CallbackState(q)
	if err != nil || got != state {
		t.Fatalf("CallbackState = %q, %v; want %q", got, err, state)
	}
	tok, err := tenant.AuthCode.Exchange(context.Background(), q.Get("code"), c)
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	return tok, c
}

// callAPI calls the tenant's API with tok injected and the static headers
// set, as the proxy would.
func callAPI(t *testing.T, tenant *Tenant, path, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, tenant.APIURL.String()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range tenant.Headers {
		req.Header[k] = vs
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

// consentParams parses a consent URL into its address without the query
// and the query.
func consentParams(t *testing.T, consentURL string) (string, url.Values) {
	t.Helper()
	u, err := url.Parse(consentURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	u.RawQuery = ""
	return u.String(), q
}

// within reports whether got is within slack of want.
func within(got, want time.Time, slack time.Duration) bool {
	d := got.Sub(want)
	return d >= -slack && d <= slack
}

func TestTokenErrorConsentRequired(t *testing.T) {
	var tests = []struct {
		status  int    // HTTP status of a failed refresh
		code    string // provider's error code
		consent bool   // matches ErrConsentRequired
	}{
		{400, "invalid_grant", true},
		{400, "INVALID_GRANT", true},
		{401, "invalid_grant", true},
		{400, "unsupported_grant_type", true},
		{400, "unauthorized_client", true},
		{400, "invalid_request", true},
		{401, "", true},
		{401, "invalid_client", false},
		{400, "INVALID_CLIENT", false},
		{403, "", false},
		{500, "server_error", false},
		{429, "", false},
		{0, "", false},
	}
	for _, tt := range tests {
		err := refused(&TokenError{Provider: "x", Status: tt.status, Code: tt.code})
		if got := errors.Is(err, ErrConsentRequired); got != tt.consent {
			t.Errorf("%d %q: errors.Is(ErrConsentRequired) = %v; want %v", tt.status, tt.code, got, tt.consent)
		}
		var te *TokenError
		if !errors.As(err, &te) || te.Code != tt.code {
			t.Errorf("%d %q: the platform's code is lost: %v", tt.status, tt.code, err)
		}
		if tt.consent && te.Retryable() {
			t.Errorf("%d %q: consent required but retryable", tt.status, tt.code)
		}
	}
	if errors.Is(&TokenError{Status: 400, Code: "invalid_grant"}, ErrConsentRequired) {
		t.Error("an unmarked TokenError (e.g. from Exchange) matches ErrConsentRequired")
	}
	if err := refused(errors.New("other")); errors.Is(err, ErrConsentRequired) {
		t.Error("a non-TokenError became consent required")
	}
}

func TestCapExpiry(t *testing.T) {
	start := time.Now().Truncate(time.Second)
	sign := func(claims jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte("k"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	soon := start.Add(10 * time.Minute)
	later := start.Add(time.Hour)
	var tests = []struct {
		name   string    // what the case is about
		token  string    // access token
		expiry time.Time // from expires_in (zero: not stated)
		want   time.Time // capped expiry
	}{
		{"opaque token", "abc", later, later},
		{"jwt exp sooner", sign(jwt.MapClaims{"exp": soon.Unix()}), later, soon},
		{"expires_in sooner", sign(jwt.MapClaims{"exp": later.Unix()}), soon, soon},
		{"no expires_in", sign(jwt.MapClaims{"exp": soon.Unix()}), time.Time{}, soon},
		{"jwt without exp", sign(jwt.MapClaims{"sub": "x"}), later, later},
		{"exp already past", sign(jwt.MapClaims{"exp": start.Add(-time.Hour).Unix()}), later, later},
		{"malformed jwt", "a.b.c", later, later},
	}
	for _, tt := range tests {
		if got := capExpiry(tt.token, tt.expiry, start, zap.NewNop()); !got.Equal(tt.want) {
			t.Errorf("%s: capExpiry = %v; want %v", tt.name, got, tt.want)
		}
	}
}

func TestConsentNeedsStateAndRedirect(t *testing.T) {
	for name, c := range map[string]*config.Tenant{
		"istores":    {Provider: "istores", ClientID: "id", ClientSecret: "s", Scopes: []string{"products:read"}},
		"storehippo": {Provider: "storehippo", Store: "acme", ClientID: "id", ClientSecret: "s", Scopes: []string{"read_products"}},
		"scayle": {Provider: "scayle", TenantSpace: "acme", ShopID: "1001", IdpKey: "google", ClientID: "id",
			ClientSecret: "s", ShopSecret: "shop"},
		"oauth2": {Provider: "oauth2", Grant: "authorization_code", ClientID: "id", AuthURL: "https://a.example/authorize",
			TokenURL: "https://a.example/token", APIURL: "https://api.example"},
	} {
		tenant := buildAuthCode(t, name, c, Options{})
		for _, bad := range []Consent{
			{RedirectURL: testRedirect, PKCEVerifier: "v"},
			{State: "s", PKCEVerifier: "v"},
			{State: "s", RedirectURL: "/relative", PKCEVerifier: "v"},
		} {
			if u, err := tenant.AuthCode.ConsentURL(bad); err == nil {
				t.Errorf("%s: ConsentURL(%+v) = %q; want an error", name, bad, u)
			}
		}
		if _, err := tenant.AuthCode.Exchange(context.Background(), "", newConsent("s")); err == nil {
			t.Errorf("%s: Exchange without a code succeeded", name)
		}
	}
}

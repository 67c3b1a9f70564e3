package providers

import (
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/sidekey/sidekey/config"
)

func TestInjectionDefaults(t *testing.T) {
	var tests = []struct {
		header, format string // config token_header, token_format
		want           Injection
		value          string // Value("tok")
	}{
		{"", "", Injection{"Authorization", "Bearer ", ""}, "Bearer tok"},
		{"authorization", "", Injection{"Authorization", "Bearer ", ""}, "Bearer tok"},
		{"x-token", "", Injection{"X-Token", "", ""}, "tok"},
		{"X-Access-Token", "{token}", Injection{"X-Access-Token", "", ""}, "tok"},
		{"", "Token {token}", Injection{"Authorization", "Token ", ""}, "Token tok"},
		{"Cookie", "session={token}; lang=en", Injection{"Cookie", "session=", "; lang=en"}, "session=tok; lang=en"},
	}
	for _, tt := range tests {
		tenant := &config.Tenant{Provider: "static", Token: "k", APIURL: "https://api.example.com",
			TokenHeader: tt.header, TokenFormat: tt.format}
		got, err := Build("t", tenant, Options{})
		if err != nil {
			t.Fatalf("Build(header %q, format %q): %v", tt.header, tt.format, err)
		}
		if got.Inject != tt.want {
			t.Errorf("header %q, format %q: Inject = %+v; want %+v", tt.header, tt.format, got.Inject, tt.want)
		}
		if v := got.Inject.Value("tok"); v != tt.value {
			t.Errorf("header %q, format %q: Value = %q; want %q", tt.header, tt.format, v, tt.value)
		}
	}
}

func TestBuildSimpleStoreDefaults(t *testing.T) {
	tenant := &config.Tenant{
		Provider:      "simplestore",
		ClientID:      "abc",
		ClientSecret:  "s3cret-value",
		Headers:       map[string]string{"user-agent": "sidekey-test", "company-id": "42"},
		RefreshBefore: config.Duration(90e9),
	}
	got, err := Build("eu-simple", tenant, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "eu-simple" || got.Provider != "simplestore" {
		t.Errorf("Name, Provider = %q, %q", got.Name, got.Provider)
	}
	if s := got.APIURL.String(); s != "https://api.simplestore.io" {
		t.Errorf("APIURL = %q; want https://api.simplestore.io", s)
	}
	if s := got.TokenURL.String(); s != "https://auth.simplestore.io/connect/token" {
		t.Errorf("TokenURL = %q", s)
	}
	want := http.Header{"User-Agent": {"sidekey-test"}, "Company-Id": {"42"}}
	if !reflect.DeepEqual(got.Headers, want) {
		t.Errorf("Headers = %v; want %v", got.Headers, want)
	}
	if got.RefreshBefore.Seconds() != 90 {
		t.Errorf("RefreshBefore = %v; want 90s", got.RefreshBefore)
	}
	if _, ok := got.Source.(ContextTokenSource); !ok {
		t.Errorf("Source %T does not implement ContextTokenSource", got.Source)
	}
}

func TestAPIURLNormalised(t *testing.T) {
	var tests = []struct {
		in   string // config api_url
		want string // Tenant.APIURL.String()
	}{
		{"https://acme.storehippo.com/api/1.1/", "https://acme.storehippo.com/api/1.1"},
		{"https://api.example.com/", "https://api.example.com"},
		{"http://127.0.0.1:9000/a%2Fb/", "http://127.0.0.1:9000/a%2Fb"},
	}
	for _, tt := range tests {
		got, err := Build("t", &config.Tenant{Provider: "static", Token: "k", APIURL: tt.in}, Options{})
		if err != nil {
			t.Fatalf("%s: %v", tt.in, err)
		}
		if s := got.APIURL.String(); s != tt.want {
			t.Errorf("api_url %q: got %q; want %q", tt.in, s, tt.want)
		}
	}
}

func TestCheckProblems(t *testing.T) {
	valid := func() *config.Tenant {
		return &config.Tenant{Provider: "oauth2", ClientID: "id", ClientSecret: "secret",
			TokenURL: "https://auth.example.com/token", APIURL: "https://api.example.com"}
	}
	var tests = []struct {
		name   string               // what the case is about
		modify func(*config.Tenant) // breaks a valid oauth2 tenant
		want   []config.Problem     // exact problems, in order
	}{
		{"valid", func(*config.Tenant) {}, nil},
		{"no provider", func(c *config.Tenant) { c.Provider = "" },
			[]config.Problem{prob("tenants.x.provider", "required (one of istores, oauth2, scayle, simplestore, static, storehippo)")}},
		{"unknown provider", func(c *config.Tenant) { c.Provider = "shopify" },
			[]config.Problem{prob("tenants.x.provider", `unknown provider "shopify" (want one of istores, oauth2, scayle, simplestore, static, storehippo)`)}},
		{"oauth2 needs endpoints", func(c *config.Tenant) { c.TokenURL, c.APIURL = "", "" },
			[]config.Problem{prob("tenants.x.api_url", "required"), prob("tenants.x.token_url", "required")}},
		{"bad urls", func(c *config.Tenant) { c.TokenURL, c.APIURL = "ftp://x/token", "https://api.example.com/?a=1" },
			[]config.Problem{prob("tenants.x.api_url", "must not have a query (proxied requests bring their own)"),
				prob("tenants.x.token_url", "must be an http or https URL")}},
		{"url without host, with credentials", func(c *config.Tenant) { c.TokenURL, c.APIURL = "https:///token", "https://u:p@api.example.com" },
			[]config.Problem{prob("tenants.x.api_url", "must not contain credentials"), prob("tenants.x.token_url", "must include a host")}},
		{"unparsable url", func(c *config.Tenant) { c.APIURL = "https://api.example.com/%zz" },
			[]config.Problem{prob("tenants.x.api_url", "not a valid URL")}},
		{"fragment", func(c *config.Tenant) { c.APIURL = "https://api.example.com/#frag" },
			[]config.Problem{prob("tenants.x.api_url", "must not have a fragment")}},
		{"missing credentials", func(c *config.Tenant) { c.ClientID, c.ClientSecret = "", "" },
			[]config.Problem{prob("tenants.x.client_id", "required"), prob("tenants.x.client_secret", "required")}},
		{"refresh grant needs refresh_token", func(c *config.Tenant) { c.Grant, c.ClientSecret = "refresh_token", "" },
			[]config.Problem{prob("tenants.x.refresh_token", "required")}},
		{"unknown grant", func(c *config.Tenant) { c.Grant = "password" },
			[]config.Problem{prob("tenants.x.grant", "must be client_credentials, refresh_token or authorization_code")}},
		{"client_auth", func(c *config.Tenant) { c.ClientAuth = "basic" },
			[]config.Problem{prob("tenants.x.client_auth", "must be header or body")}},
		{"scopes", func(c *config.Tenant) { c.Scopes = []string{"ok", "two words", ""} },
			[]config.Problem{
				prob("tenants.x.scopes[1]", "not a valid scope (printable ASCII without spaces, quotes or backslashes)"),
				prob("tenants.x.scopes[2]", "not a valid scope (printable ASCII without spaces, quotes or backslashes)")}},
		{"reserved token_params", func(c *config.Tenant) {
			c.TokenParams = map[string]string{"audience": "a", "grant_type": "x", "client_secret": "y"}
		},
			[]config.Problem{
				prob("tenants.x.token_params.client_secret", "reserved; sidekey sets client_secret itself"),
				prob("tenants.x.token_params.grant_type", "reserved; sidekey sets grant_type itself")}},
		{"token header", func(c *config.Tenant) { c.TokenHeader = "X Token" },
			[]config.Problem{prob("tenants.x.token_header", "not a valid header name")}},
		{"reserved token header", func(c *config.Tenant) { c.TokenHeader = "host" },
			[]config.Problem{prob("tenants.x.token_header", "Host cannot carry a token")}},
		{"proxy auth token header", func(c *config.Tenant) { c.TokenHeader = "proxy-authorization" },
			[]config.Problem{prob("tenants.x.token_header", "Proxy-Authorization cannot carry a token")}},
		{"proxy auth static header", func(c *config.Tenant) { c.Headers = map[string]string{"Proxy-Authenticate": "x"} },
			[]config.Problem{prob("tenants.x.headers.Proxy-Authenticate", "Proxy-Authenticate cannot be set as a static header")}},
		{"header value with a tab", func(c *config.Tenant) { c.Headers = map[string]string{"X-Tab": "a\tb"} }, nil},
		{"url port", func(c *config.Tenant) { c.APIURL = "http://api.example.com:99999" },
			[]config.Problem{prob("tenants.x.api_url", "port must be a number up to 65535")}},
		{"url with a port but no host name", func(c *config.Tenant) { c.TokenURL = "http://:8080/token" },
			[]config.Problem{prob("tenants.x.token_url", "must include a host")}},
		{"url without scheme", func(c *config.Tenant) { c.TokenURL = "auth.example.com/token" },
			[]config.Problem{prob("tenants.x.token_url", "must be an http or https URL")}},
		{"negative refresh_before", func(c *config.Tenant) { c.RefreshBefore = -1 },
			[]config.Problem{prob("tenants.x.refresh_before", "must not be negative")}},
		{"format without token", func(c *config.Tenant) { c.TokenFormat = "Bearer" },
			[]config.Problem{prob("tenants.x.token_format", "must contain {token}")}},
		{"format with two tokens", func(c *config.Tenant) { c.TokenFormat = "{token}{token}" },
			[]config.Problem{prob("tenants.x.token_format", "must contain {token} only once")}},
		{"format with newline", func(c *config.Tenant) { c.TokenFormat = "Bearer {token}\r\nX-Evil: 1" },
			[]config.Problem{prob("tenants.x.token_format", "must not contain control characters")}},
		{"headers", func(c *config.Tenant) {
			c.Headers = map[string]string{"authorization": "x", "Content-Length": "1", "X-A": "1", "x-a": "2",
				"Bad Name": "v", "X-Newline": "a\nb"}
		},
			[]config.Problem{
				prob("tenants.x.headers.Bad Name", "not a valid header name"),
				prob("tenants.x.headers.Content-Length", "Content-Length cannot be set as a static header"),
				prob("tenants.x.headers.X-Newline", "must not contain control characters"),
				prob("tenants.x.headers.authorization", "conflicts with token_header (the token goes there)"),
				prob("tenants.x.headers.x-a", "duplicate of another header with different case")}},
		{"negative refresh_before", func(c *config.Tenant) { c.RefreshBefore = -1 },
			[]config.Problem{prob("tenants.x.refresh_before", "must not be negative")}},
		{"refresh_token_lifetime without a consent", func(c *config.Tenant) { c.RefreshTokenLifetime = config.Duration(720 * time.Hour) },
			[]config.Problem{prob("tenants.x.refresh_token_lifetime", "only for tenants connected by a consent (authorization code)")}},
		{"refresh_token_lifetime with a consent", func(c *config.Tenant) {
			c.Grant, c.AuthURL, c.RefreshTokenLifetime = "authorization_code", "https://auth.example.com/authorize", config.Duration(720*time.Hour)
		}, nil},
		{"static needs token and api_url", func(c *config.Tenant) { *c = config.Tenant{Provider: "static"} },
			[]config.Problem{prob("tenants.x.api_url", "required"), prob("tenants.x.token", "required")}},
		{"static token with newline", func(c *config.Tenant) {
			*c = config.Tenant{Provider: "static", Token: "a\nb", APIURL: "https://x"}
		},
			[]config.Problem{prob("tenants.x.token", "must not contain control characters")}},
		{"simplestore defaults endpoints", func(c *config.Tenant) { c.Provider, c.TokenURL, c.APIURL = "simplestore", "", "" }, nil},
		{"simplestore grant", func(c *config.Tenant) { c.Provider, c.Grant = "simplestore", "refresh_token" },
			[]config.Problem{prob("tenants.x.grant", "simplestore supports only client_credentials")}},
		{"oauth2 authorization_code needs auth_url", func(c *config.Tenant) { c.Grant, c.ClientSecret = "authorization_code", "" },
			[]config.Problem{prob("tenants.x.auth_url", "required")}},
		{"oauth2 authorization_code", func(c *config.Tenant) {
			c.Grant, c.AuthURL = "authorization_code", "https://auth.example.com/authorize"
		}, nil},
		{"oauth2 bad auth_url", func(c *config.Tenant) { c.Grant, c.AuthURL = "authorization_code", "ftp://x" },
			[]config.Problem{prob("tenants.x.auth_url", "must be an http or https URL")}},
		{"istores needs credentials and scopes", func(c *config.Tenant) { *c = config.Tenant{Provider: "istores"} },
			[]config.Problem{prob("tenants.x.client_id", "required"), prob("tenants.x.client_secret", "required"),
				prob("tenants.x.scopes", "required (e.g. [products:read])")}},
		{"istores grant and client_auth", func(c *config.Tenant) {
			*c = config.Tenant{Provider: "istores", ClientID: "i", ClientSecret: "s", Scopes: []string{"products:read"},
				Grant: "client_credentials", ClientAuth: "header"}
		},
			[]config.Problem{prob("tenants.x.grant", "istores supports only authorization_code"),
				prob("tenants.x.client_auth", "not used by istores (it authenticates the client as its documentation says)")}},
		{"storehippo needs store", func(c *config.Tenant) {
			*c = config.Tenant{Provider: "storehippo", ClientID: "i", ClientSecret: "s", Scopes: []string{"read_products"}}
		},
			[]config.Problem{prob("tenants.x.store", "required")}},
		{"storehippo needs store even with every endpoint set", func(c *config.Tenant) {
			*c = config.Tenant{Provider: "storehippo", ClientID: "i", ClientSecret: "s", Scopes: []string{"read_products"},
				AuthURL: "https://a.example/auth", TokenURL: "https://a.example/token", APIURL: "https://a.example/api"}
		},
			[]config.Problem{prob("tenants.x.store", "required")}},
		{"storehippo store not a DNS label", func(c *config.Tenant) {
			*c = config.Tenant{Provider: "storehippo", Store: "acme.evil.com/x", ClientID: "i", ClientSecret: "s", Scopes: []string{"a,b"}}
		},
			[]config.Problem{prob("tenants.x.store", "must be a DNS label (letters, digits and inner hyphens, at most 63 characters)"),
				prob("tenants.x.scopes[0]", "must not contain a comma (storehippo joins scopes with commas)")}},
		{"storehippo defaults", func(c *config.Tenant) {
			*c = config.Tenant{Provider: "storehippo", Store: "acme-shop", ClientID: "i", ClientSecret: "s", Scopes: []string{"read_products"}}
		}, nil},
		{"scayle needs everything", func(c *config.Tenant) { *c = config.Tenant{Provider: "scayle"} },
			[]config.Problem{prob("tenants.x.tenant_space", "required"), prob("tenants.x.shop_id", "required"),
				prob("tenants.x.idp_key", "required"), prob("tenants.x.client_id", "required"),
				prob("tenants.x.client_secret", "required"), prob("tenants.x.shop_secret", "required")}},
		{"scayle bad tenant_space, scopes", func(c *config.Tenant) {
			*c = config.Tenant{Provider: "scayle", TenantSpace: "-acme", ShopID: "1001", IdpKey: "g", ClientID: "i",
				ClientSecret: "s", ShopSecret: "x", Scopes: []string{"a"}}
		},
			[]config.Problem{prob("tenants.x.tenant_space", "must be a DNS label (letters, digits and inner hyphens, at most 63 characters)"),
				prob("tenants.x.scopes", "not used by scayle (its consent has no scopes)")}},
		{"scayle shop_id with a newline", func(c *config.Tenant) {
			*c = config.Tenant{Provider: "scayle", TenantSpace: "acme", ShopID: "1\n2", IdpKey: "g", ClientID: "i",
				ClientSecret: "s", ShopSecret: "x"}
		},
			[]config.Problem{prob("tenants.x.shop_id", "must not contain control characters")}},
	}
	for _, tt := range tests {
		tenant := valid()
		tt.modify(tenant)
		got := Check("x", tenant)
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: Check = %q; want %q", tt.name, got, tt.want)
		}
		_, err := Build("x", tenant, Options{})
		var problems config.Problems
		switch {
		case tt.want == nil && err != nil:
			t.Errorf("%s: Build: %v", tt.name, err)
		case tt.want != nil && !errors.As(err, &problems):
			t.Errorf("%s: Build error = %v; want config.Problems", tt.name, err)
		case tt.want != nil && !reflect.DeepEqual([]config.Problem(problems), tt.want):
			t.Errorf("%s: Build problems = %q; want %q", tt.name, problems, tt.want)
		}
	}
}

func TestCheckNilTenant(t *testing.T) {
	got := Check("gone", nil)
	if len(got) != 1 || got[0].Key != "tenants.gone" {
		t.Errorf("Check(nil) = %q; want one problem for tenants.gone", got)
	}
}

func TestBuildErrorNamesKeys(t *testing.T) {
	_, err := Build("acme", &config.Tenant{Provider: "simplestore"}, Options{})
	if err == nil {
		t.Fatal("Build without credentials succeeded")
	}
	want := "tenants.acme.client_id: required\ntenants.acme.client_secret: required"
	if err.Error() != want {
		t.Errorf("error = %q; want %q", err.Error(), want)
	}
}

func TestBuildDoesNotModifyTenant(t *testing.T) {
	tenant := &config.Tenant{Provider: "simplestore", ClientID: "id", ClientSecret: "s"}
	before := *tenant
	if _, err := Build("t", tenant, Options{}); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*tenant, before) {
		t.Errorf("Build modified the tenant: %+v", *tenant)
	}
	if strings.Contains(tenant.APIURL, "simplestore") {
		t.Error("Build wrote its default into the config")
	}
}

// prob is a config.Problem for a table.
func prob(key, message string) config.Problem {
	return config.Problem{Key: key, Message: message}
}

func TestPlatformNamesResolve(t *testing.T) {
	for _, name := range strings.Split(platformNames, ", ") {
		if p := platformNamed(name); p == nil || p.name != name {
			t.Errorf("platformNames lists %q, which does not resolve to itself", name)
		}
	}
}

func TestCleartextWarning(t *testing.T) {
	core, logs := observer.New(zapcore.WarnLevel)
	opts := Options{Logger: zap.New(core)}
	for _, u := range []string{"http://127.0.0.1:8080", "http://localhost", "https://api.example.com"} {
		if _, err := Build("t", &config.Tenant{Provider: "static", Token: "k", APIURL: u}, opts); err != nil {
			t.Fatal(err)
		}
	}
	if n := logs.Len(); n != 0 {
		t.Errorf("%d warnings for loopback or https endpoints", n)
	}
	if _, err := Build("t", &config.Tenant{Provider: "static", Token: "k", APIURL: "http://api.example.com"}, opts); err != nil {
		t.Fatal(err)
	}
	if n := logs.FilterField(zap.String("key", "tenants.t.api_url")).Len(); n != 1 {
		t.Errorf("%d warnings for a plain http api_url; want 1", n)
	}
}

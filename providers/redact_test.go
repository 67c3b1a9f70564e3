package providers

import (
	"context"
	"encoding/base64"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/sidekey/sidekey/config"
	"github.com/sidekey/sidekey/providers/providertest"
)

// Credentials whose encodings all differ from the raw value.
const (
	leakySecret  = "s3cr/et+va=lue&x y~ü:9"
	leakyRefresh = "rt/must+not=leak 42&"
	leakyCode    = "code/must+not=leak 7?"
)

// forbiddenForms lists every encoding of every test credential.
func forbiddenForms() []string {
	var out []string
	for _, v := range []string{leakySecret, leakyRefresh, leakyCode} {
		out = append(out, slices.Collect(maps.Values(providertest.SecretEncodings(testClientID, v)))...)
	}
	return out
}

// leaked returns the forms of a test credential found in text.
func leaked(text string) []string {
	var out []string
	for _, form := range forbiddenForms() {
		if strings.Contains(text, form) {
			out = append(out, form)
		}
	}
	return out
}

func TestRedactEveryEncoding(t *testing.T) {
	for name, form := range providertest.SecretEncodings(testClientID, leakySecret) {
		got := clean("before "+form+" after", maxDescriptionLen, []string{leakySecret})
		if l := leaked(got); len(l) > 0 || !strings.HasPrefix(got, "before ") || !strings.HasSuffix(got, " after") ||
			!strings.Contains(got, redacted) {
			t.Errorf("%s: %q; want the secret redacted and the words around it kept", name, got)
		}
	}
	if got := clean("Basically nothing secret", maxDescriptionLen, []string{leakySecret}); got != "Basically nothing secret" {
		t.Errorf("text without a secret became %q", got)
	}
}

// TestTokenEndpointEchoRedacted: a token endpoint that echoes the request's
// credentials in every encoding leaks none of them into the error text or
// the log, for every provider and grant.
func TestTokenEndpointEchoRedacted(t *testing.T) {
	echo := providertest.NewEchoingTokenEndpoint(testClientID)
	t.Cleanup(echo.Close)
	core, logs := observer.New(zapcore.DebugLevel)
	opts := Options{Logger: zap.New(core)}
	ctx := context.Background()
	encodings := append(slices.Sorted(maps.Keys(providertest.SecretEncodings("", ""))), "authorization")
	for _, encoding := range encodings {
		build := func(c *config.Tenant) *Tenant {
			t.Helper()
			c.ClientID, c.ClientSecret = testClientID, leakySecret
			c.TokenURL, c.APIURL = echo.TokenURL(encoding), "https://api.example.com"
			if c.Provider != "simplestore" && c.Provider != "oauth2" || c.Grant == "authorization_code" {
				c.AuthURL = "https://auth.example.com/authorize"
			}
			tenant, err := Build("t", c, opts)
			if err != nil {
				t.Fatal(err)
			}
			return tenant
		}
		sc := scayleConfig()
		calls := map[string]func() error{
			"simplestore": func() error {
				_, err := build(&config.Tenant{Provider: "simplestore"}).Source.Token()
				return err
			},
			"oauth2 basic": func() error {
				_, err := build(&config.Tenant{Provider: "oauth2", ClientAuth: "header"}).Source.Token()
				return err
			},
			"oauth2 refresh grant": func() error {
				_, err := build(&config.Tenant{Provider: "oauth2", Grant: "refresh_token", RefreshToken: leakyRefresh}).Source.Token()
				return err
			},
			"oauth2 code exchange": func() error {
				_, err := build(&config.Tenant{Provider: "oauth2", Grant: "authorization_code"}).AuthCode.Exchange(ctx, leakyCode, newConsent("s"))
				return err
			},
			"scayle exchange": func() error { _, err := build(sc).AuthCode.Exchange(ctx, leakyCode, newConsent("s")); return err },
			"scayle refresh":  func() error { _, err := build(scayleConfig()).AuthCode.Refresh(ctx, leakyRefresh); return err },
			"storehippo refresh": func() error {
				_, err := build(&config.Tenant{Provider: "storehippo", Store: "acme", Scopes: []string{"read"}}).AuthCode.Refresh(ctx, leakyRefresh)
				return err
			},
			"istores exchange": func() error {
				_, err := build(&config.Tenant{Provider: "istores", Scopes: []string{"products:read"}}).AuthCode.Exchange(ctx, leakyCode, newConsent("s"))
				return err
			},
		}
		for name, call := range calls {
			err := call()
			if err == nil {
				t.Fatalf("%s, %s: no error", name, encoding)
			}
			if l := leaked(err.Error()); len(l) > 0 {
				t.Errorf("%s, %s: %q leaks %q", name, encoding, err, l)
			}
			if last := echo.LastDescription(); last != "rejected " && !strings.Contains(err.Error(), redacted) {
				t.Errorf("%s, %s: %q; want [redacted] where %q was echoed", name, encoding, err, last)
			}
		}
	}
	if n := echo.Echoed(); n < len(encodings) {
		t.Fatalf("the endpoint echoed %d credentials; the test is not testing", n)
	}
	for _, entry := range logs.All() {
		enc := zapcore.NewMapObjectEncoder()
		for _, f := range entry.Context {
			f.AddTo(enc)
		}
		if l := leaked(entry.Message + " " + fmt.Sprint(enc.Fields)); len(l) > 0 {
			t.Errorf("log line %q leaks %q", entry.Message, l)
		}
	}
}

// TestIssuedTokenInErrorRedacted: an answer that issues a token and an
// error at once, quoting the token, does not leak it.
func TestIssuedTokenInErrorRedacted(t *testing.T) {
	const access = "issued-access-token-must-not-leak"
	base := newHTTPServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":%q,"error":"server_error","error_description":"issued %s by mistake"}`,
			access, base64.StdEncoding.EncodeToString([]byte(access)))
	}))
	tenant := simTenant(t, "ss", "simplestore", base+"/token", base+"/api", nil)
	_, err := tenant.Source.Token()
	if err == nil || strings.Contains(err.Error(), base64.StdEncoding.EncodeToString([]byte(access))) || !strings.Contains(err.Error(), redacted) {
		t.Errorf("error %v; want the issued token redacted", err)
	}
}

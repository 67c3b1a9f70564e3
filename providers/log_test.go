package providers

import (
	"fmt"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/sidekey/sidekey/config"
	"github.com/sidekey/sidekey/providers/providertest"
)

// TestNoSecretInLogs drives every provider through success and failure with
// a debug logger and checks no line carries a credential or a token.
func TestNoSecretInLogs(t *testing.T) {
	const refresh = "refresh-token-must-not-leak-42"
	core, logs := observer.New(zapcore.DebugLevel)
	opts := Options{Logger: zap.New(core)}
	secrets := []string{testSecret, refresh, "static-key-must-not-leak"}

	ss := newSimpleStore(t, providertest.SimOptions{})
	oa := newOAuth2Sim(t, providertest.SimOptions{RefreshToken: refresh, RotateRefreshTokens: true})
	tenants := map[string]*config.Tenant{
		"ss": {Provider: "simplestore", ClientID: testClientID, ClientSecret: testSecret, TokenURL: ss.TokenURL(), APIURL: ss.APIURL()},
		"ss-bad": {Provider: "simplestore", ClientID: testClientID, ClientSecret: testSecret + "x",
			TokenURL: ss.TokenURL(), APIURL: ss.APIURL()},
		"oa": {Provider: "oauth2", ClientID: testClientID, ClientSecret: testSecret, TokenURL: oa.TokenURL(), APIURL: oa.APIURL()},
		"oa-bad": {Provider: "oauth2", ClientID: testClientID, ClientSecret: testSecret + "x",
			TokenURL: oa.TokenURL(), APIURL: oa.APIURL()},
		"oa-refresh": {Provider: "oauth2", Grant: "refresh_token", RefreshToken: refresh, ClientID: testClientID,
			ClientSecret: testSecret, TokenURL: oa.TokenURL(), APIURL: oa.APIURL()},
		"static": {Provider: "static", Token: "static-key-must-not-leak", APIURL: "https://api.example.com"},
	}
	for name, c := range tenants {
		tenant, err := Build(name, c, opts)
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			tok, err := tenant.Source.Token()
			if err == nil {
				secrets = append(secrets, tok.AccessToken, tok.RefreshToken)
			}
		}
	}
	if logs.Len() == 0 {
		t.Fatal("nothing was logged at debug level")
	}
	failures := 0
	for _, entry := range logs.All() {
		enc := zapcore.NewMapObjectEncoder()
		for _, f := range entry.Context {
			f.AddTo(enc)
		}
		line := entry.Message + " " + fmt.Sprint(enc.Fields)
		if entry.Message == "token request failed" {
			failures++
		}
		for _, s := range secrets {
			if s != "" && strings.Contains(line, s) {
				t.Errorf("log line %q contains a secret", line)
			}
		}
	}
	if failures < 2 {
		t.Errorf("%d failed token requests logged; want the bad tenants' failures", failures)
	}
}

package providers

import (
	"context"
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

// TestAuthCodeNoSecretInLogs drives every consent-flow provider through
// consent, exchange, refresh, failures and revocation with a debug logger
// and checks that no log line or error carries a credential, a code or a
// token.
func TestAuthCodeNoSecretInLogs(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	opts := Options{Logger: zap.New(core)}
	is := newIstoresSim(t, providertest.SimOptions{})
	sh := newStoreHippoSim(t, providertest.SimOptions{})
	sc := newSCAYLESim(t, providertest.SCAYLEOptions{})
	oa := newOAuth2Sim(t, providertest.SimOptions{RotateRefreshTokens: true})
	tenants := map[string]*config.Tenant{
		"is": {Provider: "istores", ClientID: testClientID, ClientSecret: testSecret, Scopes: []string{"products:read"},
			AuthURL: is.AuthURL(), TokenURL: is.TokenURL(), APIURL: is.APIURL()},
		"sh": {Provider: "storehippo", Store: "acme", ClientID: testClientID, ClientSecret: testSecret,
			Scopes: []string{"read_products"}, AuthURL: sh.AuthURL(), TokenURL: sh.TokenURL(), APIURL: sh.APIURL()},
		"sc": {Provider: "scayle", TenantSpace: "acme", ShopID: "1001", IdpKey: "google", ClientID: testClientID,
			ClientSecret: testSecret, ShopSecret: testShopSecret, AuthURL: sc.AuthURL(), TokenURL: sc.TokenURL(), APIURL: sc.APIURL()},
		"oa": {Provider: "oauth2", Grant: "authorization_code", ClientID: testClientID, ClientSecret: testSecret,
			AuthURL: oa.AuthURL(), TokenURL: oa.TokenURL(), APIURL: oa.APIURL()},
	}
	secrets := []string{testSecret, testShopSecret}
	var errs []error
	ctx := context.Background()
	for name, c := range tenants {
		tenant := buildAuthCode(t, name, c, opts)
		consent := newConsent("state-" + name)
		u, err := tenant.AuthCode.ConsentURL(consent)
		if err != nil {
			t.Fatal(err)
		}
		code := approve(t, u).Get("code")
		secrets = append(secrets, code, consent.PKCEVerifier)
		tok, err := tenant.AuthCode.Exchange(ctx, code, consent)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		secrets = append(secrets, tok.AccessToken, tok.RefreshToken)
		_, err = tenant.AuthCode.Exchange(ctx, code, consent) // the code is used up
		errs = append(errs, err)
		next, err := tenant.AuthCode.Refresh(ctx, tok.RefreshToken)
		if err == nil {
			secrets = append(secrets, next.AccessToken, next.RefreshToken)
			_, err = tenant.AuthCode.Refresh(ctx, tok.RefreshToken) // dead after rotation, or fine
		}
		errs = append(errs, err)
		if r, ok := tenant.AuthCode.(Revoker); ok {
			errs = append(errs, r.Revoke(ctx, tok), r.Revoke(ctx, tok))
		}
	}
	failures := 0
	for _, err := range errs {
		if err == nil {
			continue
		}
		failures++
		for _, s := range secrets {
			if s != "" && strings.Contains(err.Error(), s) {
				t.Errorf("error %q contains a secret", err)
			}
		}
	}
	if failures < 5 {
		t.Errorf("%d failures; want the used codes, the refused refreshes and the second revoke", failures)
	}
	for _, entry := range logs.All() {
		enc := zapcore.NewMapObjectEncoder()
		for _, f := range entry.Context {
			f.AddTo(enc)
		}
		line := entry.Message + " " + fmt.Sprint(enc.Fields)
		for _, s := range secrets {
			if s != "" && strings.Contains(line, s) {
				t.Errorf("log line %q contains a secret", line)
			}
		}
	}
	if logs.FilterMessage("token request failed").Len() == 0 || logs.FilterMessage("token issued").Len() == 0 {
		t.Error("token requests were not logged at debug level")
	}
}

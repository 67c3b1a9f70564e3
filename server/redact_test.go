package server_test

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/sidekey/sidekey/config"
	"github.com/sidekey/sidekey/providers/providertest"
)

// TestEchoedSecretsNeverLeak: a token endpoint echoing the client secret in
// every encoding (raw, URL-escaped, JSON-escaped, base64, Basic) leaks it
// into no error body, no /_sidekey/status and no log line.
func TestEchoedSecretsNeverLeak(t *testing.T) {
	const secret = "s3cr/et+va=lue&x y~ü:9-do-not-leak"
	echo := providertest.NewEchoingTokenEndpoint(clientID)
	t.Cleanup(echo.Close)
	encodings := append(slices.Sorted(maps.Keys(providertest.SecretEncodings("", ""))), "authorization")
	tenants := map[string]*config.Tenant{}
	for i, encoding := range encodings {
		tenants[fmt.Sprintf("t%d", i)] = &config.Tenant{Provider: "simplestore", ClientID: clientID, ClientSecret: secret,
			ClientAuth: []string{"body", "header"}[i%2], TokenURL: echo.TokenURL(encoding), APIURL: "https://api.example.com"}
	}
	core, logs := observer.New(zapcore.DebugLevel)
	r := start(t, &config.Config{Tenants: tenants}, zap.New(core))
	forbidden := slices.Collect(maps.Values(providertest.SecretEncodings(clientID, secret)))
	check := func(where, text string) {
		t.Helper()
		for _, form := range forbidden {
			if strings.Contains(text, form) {
				t.Errorf("%s leaks %q: %s", where, form, text)
			}
		}
	}
	for name := range tenants {
		got := get(t, r.base+"/"+name+"/v1/x")
		if got.status != 503 || !strings.Contains(got.body, "invalid_client") {
			t.Errorf("%s: %d %s; want 503 naming invalid_client", name, got.status, got.body)
		}
		check(name+" error body", got.body)
	}
	if echo.Echoed() < len(encodings) {
		t.Fatalf("the endpoint echoed %d secrets for %d encodings; the test is not testing", echo.Echoed(), len(encodings))
	}
	status := get(t, r.base+"/_sidekey/status")
	if !strings.Contains(status.body, "[redacted]") {
		t.Errorf("status %s; want the platform's error with [redacted] in it", status.body)
	}
	check("status", status.body)
	for _, entry := range logs.All() {
		enc := zapcore.NewMapObjectEncoder()
		for _, f := range entry.Context {
			f.AddTo(enc)
		}
		check("log line "+entry.Message, entry.Message+" "+fmt.Sprint(enc.Fields))
	}
}

// TestReadableSecretFileWarnsAtStart: a secret file others may read is
// logged at start, naming the key, the file and its mode.
func TestReadableSecretFileWarnsAtStart(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "client-secret")
	if err := os.WriteFile(secretFile, []byte(clientSecret), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(secretFile, 0o644); err != nil { // whatever the umask
		t.Fatal(err)
	}
	path := filepath.Join(dir, "sidekey.yaml")
	src := "tenants:\n  t: {provider: simplestore, client_id: x, client_secret_file: client-secret, token_url: https://auth.example.com/token}\n"
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zapcore.WarnLevel)
	start(t, cfg, zap.New(core))
	found := logs.FilterMessageSnippet(secretFile).FilterField(zap.String("key", "tenants.t.client_secret_file")).
		FilterField(zap.String("file", secretFile)).FilterField(zap.String("mode", "-rw-r--r--"))
	if found.Len() != 1 {
		t.Errorf("warnings %v; want one naming the key, the file and its mode", logs.All())
	}
	for _, entry := range logs.All() {
		if strings.Contains(entry.Message, clientSecret) {
			t.Errorf("log line %q carries the secret", entry.Message)
		}
	}
}

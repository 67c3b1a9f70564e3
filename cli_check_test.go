package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckListsEveryProblemOnce: `sidekey check` lists every problem at
// once — unknown keys, files serve would refuse, each provider's
// requirements — one line per problem, none twice, with a "did you mean"
// for a misspelled provider; and `serve` refuses the same file with the
// same lines before it listens.
func TestCheckListsEveryProblemOnce(t *testing.T) {
	path := writeConfig(t, `
listne: 127.0.0.1:8080
admin_token_file: missing-admin-token
tls: {mode: files, cert_file: missing-cert.pem, key_file: missing-key.pem}
storage: {type: redis, key_file: missing-store-key}
tenants:
  acme:
    provider: simplestor
    client_id: a
  hippo:
    provider: storehippo
    client_id: x
    store: acme
    scopes: [read_products]
    clinet_auth: header
`)
	var stdout, stderr bytes.Buffer
	checkErr := run(context.Background(), []string{"check", "--config", path}, &stdout, &stderr)
	if checkErr == nil {
		t.Fatal("check accepted a bad config")
	}
	lines := strings.Split(strings.TrimPrefix(checkErr.Error(), "invalid configuration:\n"), "\n")
	wants := []string{
		"admin_token_file: cannot read ",
		"listne: unknown key (did you mean listen?)",
		"storage.key_file: cannot read ",
		`tenants.acme.provider: unknown provider "simplestor" (did you mean simplestore?)`,
		"tenants.hippo.client_secret: required",
		"tenants.hippo.clinet_auth: unknown key (did you mean client_auth?)",
		"tls.cert_file: cannot read ",
		"tls.key_file: cannot read ",
	}
	if len(lines) != len(wants) {
		t.Fatalf("check printed %d problems; want %d:\n%s", len(lines), len(wants), checkErr)
	}
	for i, want := range wants {
		if !strings.HasPrefix(lines[i], want) {
			t.Errorf("line %d: got %q; want it to start %q", i, lines[i], want)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel() // were the file accepted, serve would stop at once
	serveErr := run(ctx, []string{"serve", "--config", path}, &stdout, &stderr)
	if serveErr == nil || serveErr.Error() != checkErr.Error() {
		t.Errorf("serve: %v\nwant the same problems as check:\n%v", serveErr, checkErr)
	}
}

// TestCheckRefusesAStoreKeySidekeyCannotUse: a store key file in a form the
// store refuses fails check as it would fail serve, naming the file and
// never its content.
func TestCheckRefusesAStoreKeySidekeyCannotUse(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "store-key"), []byte("passphrase-not-a-key-Zq\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "sidekey.yaml")
	if err := os.WriteFile(path, []byte("storage: {type: file, path: data, key_file: store-key}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"check", "--config", path}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "storage.key_file: key file "+filepath.Join(dir, "store-key")) {
		t.Fatalf("check: %v; want the store key file named", err)
	}
	if strings.Contains(err.Error(), "passphrase-not-a-key") {
		t.Errorf("the key file's content reached the error: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "data")); err == nil {
		t.Error("check created the store directory")
	}
}

// TestCheckNamesAnAppsProblemOnce: an app with a misspelled provider is one
// problem at the app, not one more at every tenant using it.
func TestCheckNamesAnAppsProblemOnce(t *testing.T) {
	path := writeConfig(t, `
storage: {type: memory}
apps:
  hippo: {provider: storehipo, client_id: a, client_secret: b, scopes: [read_products]}
tenants:
  acme: {app: hippo, store: acme}
  beta: {app: ghost}
`)
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"check", "--config", path}, &stdout, &stderr)
	want := "invalid configuration:\n" +
		`apps.hippo.provider: unknown provider "storehipo" (did you mean storehippo?)` + "\n" +
		`tenants.beta.app: unknown app "ghost"`
	if err == nil || err.Error() != want {
		t.Errorf("check: %v\nwant:\n%s", err, want)
	}
}

// TestCheckReportsABadHeaderOnce: a tenant's header value with a line break
// is one problem in one wording, from its one owner (providers.Check), and
// never shows the value.
func TestCheckReportsABadHeaderOnce(t *testing.T) {
	path := writeConfig(t, `
storage: {type: memory}
tenants:
  acme:
    provider: static
    token: k
    api_url: http://127.0.0.1:9
    headers: {X-Shop: "one\ntwo-sek"}
`)
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"check", "--config", path}, &stdout, &stderr)
	want := "invalid configuration:\n" +
		"tenants.acme.headers.X-Shop: must not contain control characters"
	if err == nil || err.Error() != want {
		t.Errorf("check: %v\nwant:\n%s", err, want)
	}
	if out := stdout.String() + stderr.String(); strings.Contains(out, "sek") {
		t.Errorf("check printed the header's value: %s", out)
	}
}

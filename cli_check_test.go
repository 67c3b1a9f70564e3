package main

import (
	"bytes"
	"context"
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

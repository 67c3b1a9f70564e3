package config

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// designExample is the configuration from DESIGN.md, with its secret files
// moved under secrets/ (relative to the config file) and the elided values
// filled in.
const designExample = `
listen: 127.0.0.1:8080            # loopback by default
public_url: http://127.0.0.1:8080 # base of redirect_uri = {public_url}/_sidekey/oauth/callback
storage:
  type: file                      # file (default) | memory | redis
  path: sidekey-data              # file: directory of the encrypted store
  key_file: secrets/sidekey-key   # 32-byte key sealing every stored value (file and redis);
                                      # file store: generated (0600) beside the data if absent
  # redis: {addr: 127.0.0.1:6379, password: ..., prefix: sidekey}
callers:                          # required when ` + "`listen`" + ` is not loopback (or allow_unauthenticated: true)
  billing-app:
    key_sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
    tenants: [eu-simple, acme-hippo]
admin_token_file: secrets/sidekey-admin   # for /_sidekey/status, /admin, /oauth/connect off loopback
tenants:
  eu-simple:
    provider: simplestore
    client_id: abc
    client_secret: ${SIMPLESTORE_SECRET}
  acme-hippo:
    provider: storehippo
    store: acme
    client_id: hippo-id
    client_secret_file: secrets/hippo
    scopes: [read_products, write_orders]
  il-shop:
    provider: istores
    client_id: il-id
    client_secret: il-secret
    scopes: [products:read]
  de-scayle:
    provider: scayle
    tenant_space: acme
    shop_id: "1001"
    idp_key: google
    client_id: scayle-id
    client_secret: scayle-secret
    shop_secret: shop-secret
  other-api:
    provider: oauth2              # any OAuth 2.0 API: client_credentials or refresh_token
    token_url: https://auth.example.com/token
    api_url: https://api.example.com
    client_id: other-id
    client_secret: other-secret
  scayle-admin:
    provider: static              # a fixed API key: Istores x-token, StoreHippo access-key, SCAYLE X-Access-Token
    token_file: secrets/scayle-admin-key
    token_header: X-Access-Token
    token_format: "{token}"
    api_url: https://acme.admin.api.scayle.cloud/api/admin/v1
  # every tenant may override: auth_url, token_url, api_url, token_header, token_format, headers
`

func TestLoadDesignExample(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "secrets/hippo", "hippo-secret\n")
	writeFile(t, dir, "secrets/scayle-admin-key", "admin-key\n")
	path := writeFile(t, dir, "sidekey.yaml", designExample)
	t.Setenv("SIMPLESTORE_SECRET", "simple-secret")

	c, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate:\n%v", err)
	}
	if len(c.Tenants) != 6 {
		t.Errorf("tenants: got %d; want 6", len(c.Tenants))
	}
	if got := c.Tenants["eu-simple"].ClientSecret.Value(); got != "simple-secret" {
		t.Errorf("eu-simple client_secret: got %q", got)
	}
	if got := c.Tenants["acme-hippo"].ClientSecret.Value(); got != "hippo-secret" {
		t.Errorf("acme-hippo client_secret: got %q", got)
	}
	if got := c.Tenants["scayle-admin"].Token.Value(); got != "admin-key" {
		t.Errorf("scayle-admin token: got %q", got)
	}
	if got, want := c.AdminTokenFile, filepath.Join(dir, "secrets/sidekey-admin"); got != want {
		t.Errorf("admin_token_file: got %q; want %q", got, want)
	}
	sum := sha256.Sum256([]byte("test"))
	if got := c.Callers["billing-app"].KeySHA256; got != hex.EncodeToString(sum[:]) {
		t.Errorf("key_sha256: got %q", got)
	}
	if a := c.Tenants["scayle-admin"]; a.TokenHeader != "X-Access-Token" || a.TokenFormat != "{token}" {
		t.Errorf("scayle-admin injection: got %q %q", a.TokenHeader, a.TokenFormat)
	}
	if h := c.Tenants["eu-simple"]; h.TokenHeader != "Authorization" || h.TokenFormat != "Bearer {token}" {
		t.Errorf("eu-simple injection: got %q %q", h.TokenHeader, h.TokenFormat)
	}
}

func TestLoadDesignExampleMissingEnv(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "secrets/hippo", "hippo-secret\n")
	path := writeFile(t, dir, "sidekey.yaml", strings.ReplaceAll(designExample, "SIMPLESTORE_SECRET", "SIDEKEY_TEST_SURELY_UNSET_1"))
	_, err := Load(path)
	checkProblems(t, problemsOf(t, err),
		want{"tenants.eu-simple.client_secret", "environment variable SIDEKEY_TEST_SURELY_UNSET_1 is not set"},
		want{"tenants.scayle-admin.token_file", "cannot read " + filepath.Join(dir, "secrets/scayle-admin-key")},
	)
}

func TestLoadMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope", "sidekey.yaml")
	c, err := Load(path)
	if c != nil || err == nil {
		t.Fatalf("Load: got %v, %v; want an error", c, err)
	}
	if !strings.HasPrefix(err.Error(), "config: ") || !strings.Contains(err.Error(), path) {
		t.Errorf("error %q must start with config: and name %s", err, path)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("error %q does not wrap fs.ErrNotExist", err)
	}
}

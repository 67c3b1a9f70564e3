package config

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeFile writes content to dir/name and returns the path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestSecretFiles(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "secrets/client", "cs\n")
	writeFile(t, dir, "secrets/refresh", "rt\r\n")
	writeFile(t, dir, "secrets/token", "tok\n\n") // only one newline goes
	writeFile(t, dir, "secrets/shop", "  shop  ") // spaces are kept
	redisPass := writeFile(t, dir, "redis-pass", "rp")
	writeFile(t, dir, "caller-key", "caller-key-value\n")

	src := `
admin_token_file: admin
storage:
  key_file: store.key
  redis: {password_file: ` + redisPass + `}
callers:
  billing: {key_file: caller-key, tenants: [a]}
  ops: {key_sha256: "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08"}
tenants:
  a:
    provider: scayle
    client_secret_file: secrets/client
    refresh_token_file: secrets/refresh
    token_file: ./secrets/token
    shop_secret_file: secrets/shop
`
	c, err := Parse([]byte(src), ParseOptions{Getenv: env(nil), Dir: dir})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	a := c.Tenants["a"]
	for name, got := range map[string]Secret{
		"client_secret": a.ClientSecret, "refresh_token": a.RefreshToken, "token": a.Token,
		"shop_secret": a.ShopSecret, "redis password": c.Storage.Redis.Password,
	} {
		want := map[string]string{"client_secret": "cs", "refresh_token": "rt", "token": "tok\n",
			"shop_secret": "  shop  ", "redis password": "rp"}[name]
		if got.Value() != want {
			t.Errorf("%s: got %q; want %q", name, got.Value(), want)
		}
	}
	if want := filepath.Join(dir, "secrets/client"); a.ClientSecretFile != want {
		t.Errorf("client_secret_file: got %q; want it resolved to %q", a.ClientSecretFile, want)
	}
	if want := filepath.Join(dir, "admin"); c.AdminTokenFile != want {
		t.Errorf("admin_token_file: got %q; want %q", c.AdminTokenFile, want)
	}
	if want := filepath.Join(dir, "store.key"); c.Storage.KeyFile != want {
		t.Errorf("storage.key_file: got %q; want %q", c.Storage.KeyFile, want)
	}
	sum := sha256.Sum256([]byte("caller-key-value"))
	if got, want := c.Callers["billing"].KeySHA256, hex.EncodeToString(sum[:]); got != want {
		t.Errorf("caller key hash: got %q; want %q", got, want)
	}
	if got := c.Callers["ops"].KeySHA256; got != strings.ToLower(got) {
		t.Errorf("key_sha256 not normalised to lower case: %q", got)
	}
}

func TestSecretFileProblems(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "s", "file-content-XYZ\n")
	writeFile(t, dir, "empty", "\n")
	missing := filepath.Join(dir, "nope")
	src := `
storage:
  redis: {password: p, password_file: s}
callers:
  both: {key_sha256: abc, key_file: s}
  blank: {key_file: empty}
tenants:
  a:
    client_secret: inline
    client_secret_file: s
    token_file: ` + missing + `
    shop_secret_file: empty
  b:
    refresh_token_file: s
    refresh_token: ${RT}
`
	_, err := Parse([]byte(src), ParseOptions{Getenv: env(map[string]string{"RT": "x"}), Dir: dir})
	checkProblems(t, problemsOf(t, err),
		want{"callers.blank.key_file", "file " + filepath.Join(dir, "empty") + " is empty"},
		want{"callers.both", "key_sha256 and key_file are mutually exclusive"},
		want{"storage.redis", "password and password_file are mutually exclusive"},
		want{"tenants.a", "client_secret and client_secret_file are mutually exclusive"},
		want{"tenants.a.shop_secret_file", "is empty"},
		want{"tenants.a.token_file", "cannot read " + missing + ": no such file or directory"},
		want{"tenants.b", "refresh_token and refresh_token_file are mutually exclusive"},
	)
	if strings.Contains(err.Error(), "file-content-XYZ") || strings.Contains(err.Error(), "inline") {
		t.Errorf("problems reveal a secret: %v", err)
	}
}

func TestSecretFileIsDirectory(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	_, err := Parse([]byte("tenants:\n  a:\n    client_secret_file: sub\n"), ParseOptions{Getenv: env(nil), Dir: dir})
	checkProblems(t, problemsOf(t, err), want{"tenants.a.client_secret_file", "cannot read " + sub + ": is a directory"})
}

func TestSecretFileUnreadable(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads any file")
	}
	dir := t.TempDir()
	path := writeFile(t, dir, "locked", "top-secret")
	if err := os.Chmod(path, 0); err != nil {
		t.Fatal(err)
	}
	_, err := Parse([]byte("tenants:\n  a:\n    token_file: locked\n"), ParseOptions{Getenv: env(nil), Dir: dir})
	checkProblems(t, problemsOf(t, err), want{"tenants.a.token_file", "cannot read " + path + ": permission denied"})
}

func TestSecretFileReadFileOption(t *testing.T) {
	src := "tenants:\n  a:\n    token_file: /run/secrets/t\n"
	c, err := Parse([]byte(src), ParseOptions{Getenv: env(nil), ReadFile: files(map[string]string{"/run/secrets/t": "v\n"})})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if got := c.Tenants["a"].Token.Value(); got != "v" {
		t.Errorf("token: got %q; want v", got)
	}
}

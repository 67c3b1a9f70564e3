package config

import (
	"os"
	"path/filepath"
	"testing"
)

// TestRelativePathsAreRelativeToTheFile: Load resolves every relative path
// of the file — storage.path and its default included — against the
// file's directory, whatever the working directory.
func TestRelativePathsAreRelativeToTheFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "admin"), []byte("admin-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	write := func(body string) string {
		path := filepath.Join(dir, "sidekey.yaml")
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	t.Chdir(t.TempDir())
	tests := []struct {
		body string // the config file
		path string // storage.path Load must return
		key  string // storage.key_file Load must return
	}{
		{"admin_token_file: admin\n", filepath.Join(dir, "sidekey-data"), ""},
		{"storage: {path: data, key_file: keys/store-key}\nadmin_token_file: admin\n", filepath.Join(dir, "data"), filepath.Join(dir, "keys/store-key")},
		{"storage: {path: /var/lib/sidekey}\n", "/var/lib/sidekey", ""},
	}
	for _, tt := range tests {
		c, err := Load(write(tt.body))
		if err != nil {
			t.Fatalf("%q: %v", tt.body, err)
		}
		if c.Storage.Path != tt.path || c.Storage.KeyFile != tt.key {
			t.Errorf("%q: storage.path %q, key_file %q; want %q, %q", tt.body, c.Storage.Path, c.Storage.KeyFile, tt.path, tt.key)
		}
		if c.AdminTokenFile != "" && c.AdminTokenFile != filepath.Join(dir, "admin") {
			t.Errorf("%q: admin_token_file %q; want it beside the file", tt.body, c.AdminTokenFile)
		}
	}
}

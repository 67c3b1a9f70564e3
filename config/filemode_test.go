package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSecretFileReadableByOthersWarns: a secret file that others, or a
// group this process is not in, may read is accepted with a Warning naming
// the key, the file and its mode; one only its owner (and its own group)
// may read is not.
func TestSecretFileReadableByOthersWarns(t *testing.T) {
	const foreignGroup = 54321 // a group this test process is not in
	var modeTests = []struct {
		mode    os.FileMode // of every secret file
		foreign bool        // the files belong to foreignGroup
		warn    bool        // a warning per file expected
	}{
		{0o600, false, false},
		{0o400, false, false},
		{0o640, false, false}, // our own group: Kubernetes' fsGroup, user-private groups
		{0o640, true, true},
		{0o644, false, true},
		{0o604, false, true},
	}
	for _, tt := range modeTests {
		if tt.foreign && os.Geteuid() != 0 {
			t.Logf("mode %v in a foreign group: only root can give a file away; not checked", tt.mode)
			continue
		}
		dir := t.TempDir()
		files := map[string]string{ // key → file name
			"tenants.a.client_secret_file": "client",
			"tenants.a.refresh_token_file": "refresh",
			"callers.billing.key_file":     "caller",
			"admin_token_file":             "admin",
			"storage.redis.password_file":  "redis",
		}
		for _, name := range files {
			path := writeFile(t, dir, name, "value-"+name+"\n")
			if err := os.Chmod(path, tt.mode); err != nil {
				t.Fatal(err)
			}
			if tt.foreign {
				if err := os.Chown(path, -1, foreignGroup); err != nil {
					t.Fatal(err)
				}
			}
		}
		src := `
admin_token_file: admin
storage: {redis: {password_file: redis}}
callers:
  billing: {key_file: caller, tenants: [a]}
tenants:
  a: {provider: oauth2, grant: refresh_token, client_id: x, client_secret_file: client, refresh_token_file: refresh}
`
		path := filepath.Join(dir, "sidekey.yaml")
		if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := Load(path)
		if err != nil {
			t.Fatalf("mode %v: %v", tt.mode, err)
		}
		got := map[string]Warning{}
		for _, w := range c.Warnings {
			got[w.Key] = w
		}
		if !tt.warn {
			if len(c.Warnings) != 0 {
				t.Errorf("mode %v: warnings %v; want none", tt.mode, c.Warnings)
			}
			continue
		}
		for key, name := range files {
			w, ok := got[key]
			file := filepath.Join(dir, name)
			if !ok || w.Path != file || w.Mode != tt.mode {
				t.Errorf("mode %v, %s: warning %+v; want one naming %s and its mode", tt.mode, key, w, file)
				continue
			}
			if msg := w.String(); !strings.Contains(msg, file) || !strings.Contains(msg, tt.mode.String()) || strings.Contains(msg, "value-") {
				t.Errorf("mode %v: %q; want the file and mode named, never the content", tt.mode, msg)
			}
		}
	}
}

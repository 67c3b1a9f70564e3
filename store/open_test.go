package store

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sidekey/sidekey/config"
)

func TestOpenFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sidekey-data")
	s, err := Open(config.Storage{Type: "file", Path: dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	closeAtCleanup(t, s)
	mustStore(t, s, "tenants/acme/token", "at-open-file-token")
	s.Close()
	raw, err := os.ReadFile(filepath.Join(dir, dbFileName))
	if err != nil {
		t.Fatalf("Open(type file) did not use storage.path: %v", err)
	}
	if bytes.Contains(raw, []byte("at-open-file-token")) {
		t.Error("Open(type file) returned an unsealed store")
	}
	if _, err := os.Stat(filepath.Join(dir, defaultKeyFileName)); err != nil {
		t.Errorf("Open(type file) made no key at {path}/key: %v", err)
	}
}

func TestOpenFileWithKeyFile(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "key")
	writeFile(t, keyFile, testKey(5), 0o600)
	dir := t.TempDir()
	s, err := Open(config.Storage{Type: "file", Path: dir, KeyFile: keyFile}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := os.Stat(filepath.Join(dir, defaultKeyFileName)); err == nil {
		t.Error("Open made {path}/key although storage.key_file was given")
	}
}

func TestOpenMemoryIsSealed(t *testing.T) {
	s, err := Open(config.Storage{Type: "memory"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	closeAtCleanup(t, s)
	ss, ok := s.(*sealedStore)
	if !ok {
		t.Fatalf("Open(type memory) returned %T; want a sealed store", s)
	}
	mustStore(t, s, "tenants/acme/token", "at-memory-token")
	if raw := mustLoad(t, ss.inner, "tenants/acme/token"); strings.Contains(raw, "at-memory-token") {
		t.Error("the memory store under Open holds the plaintext")
	}
	if got := mustLoad(t, s, "tenants/acme/token"); got != "at-memory-token" {
		t.Errorf("Load: got %q; want %q", got, "at-memory-token")
	}
}

func TestOpenMemoryWithKeyFile(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "key")
	if _, err := Open(config.Storage{Type: "memory", KeyFile: keyFile}, nil); err == nil || !strings.Contains(err.Error(), keyFile) {
		t.Errorf("Open(type memory) with a missing key file: got %v; want an error naming it", err)
	}
	writeFile(t, keyFile, testKey(6), 0o600)
	s, err := Open(config.Storage{Type: "memory", KeyFile: keyFile}, nil)
	if err != nil {
		t.Fatal(err)
	}
	closeAtCleanup(t, s)
	mustStore(t, s, "k", "v")
	// The same key file opens what it sealed.
	other, err := Seal(s.(*sealedStore).inner, testKey(6))
	if err != nil {
		t.Fatal(err)
	}
	if got := mustLoad(t, other, "k"); got != "v" {
		t.Errorf("Load with the key file's key: got %q; want %q", got, "v")
	}
}

func TestOpenRefuses(t *testing.T) {
	var refuseTests = []struct {
		typ  string // storage.type
		want string // the error
	}{
		{"dynamo", `store: storage.type "dynamo": want file, memory or redis`},
	}
	for _, tt := range refuseTests {
		s, err := Open(config.Storage{Type: tt.typ, Path: t.TempDir()}, nil)
		if err == nil || err.Error() != tt.want {
			t.Errorf("Open(type %s): got %v, %v; want error %q", tt.typ, s, err, tt.want)
		}
	}
}

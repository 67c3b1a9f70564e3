package store

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// openFile opens the file store in dir with opts, or fails the test. The
// store is closed at cleanup (closing twice is harmless).
func openFile(t *testing.T, opts FileOptions) Store {
	t.Helper()
	s, err := OpenFile(opts)
	if err != nil {
		t.Fatalf("OpenFile: %v", err)
	}
	return closeAtCleanup(t, s)
}

func TestFileCiphertextOnDisk(t *testing.T) {
	const token = "at-9b1f77d2-PLAINTEXT-ACCESS-TOKEN"

	// Control: an unsealed database shows the token, so the scan works.
	plainDir := t.TempDir()
	plain, err := openBolt(filepath.Join(plainDir, dbFileName), lockTimeout)
	if err != nil {
		t.Fatal(err)
	}
	mustStore(t, plain, "tenants/acme/token", token)
	plain.Close()
	if raw, _ := os.ReadFile(filepath.Join(plainDir, dbFileName)); !bytes.Contains(raw, []byte(token)) {
		t.Fatal("control: the unsealed database does not contain the token; the scan proves nothing")
	}

	dir := t.TempDir()
	s := openFile(t, FileOptions{Dir: dir})
	mustStore(t, s, "tenants/acme/token", token)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, dbFileName))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte(token)) {
		t.Error("the file store's database contains the token in clear")
	}
	if !bytes.Contains(raw, []byte("tenants/acme/token")) {
		t.Error("the database does not contain the key name; the write did not reach the file")
	}
}

func TestFileReopenKeepsValues(t *testing.T) {
	dir := t.TempDir()
	s := openFile(t, FileOptions{Dir: dir})
	mustStore(t, s, "tenants/acme/refresh", "rt-1")
	s.Close()
	key, _ := os.ReadFile(filepath.Join(dir, defaultKeyFileName))

	log, logs := observed()
	s = openFile(t, FileOptions{Dir: dir, Logger: log})
	if got := mustLoad(t, s, "tenants/acme/refresh"); got != "rt-1" {
		t.Errorf("Load after reopen: got %q; want %q", got, "rt-1")
	}
	if again, _ := os.ReadFile(filepath.Join(dir, defaultKeyFileName)); !bytes.Equal(again, key) {
		t.Error("reopening changed the key file")
	}
	if logs.Len() != 0 {
		t.Errorf("reopening logged warnings: %v", logs.All())
	}
}

func TestFileModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sidekey-data")
	log, logs := observed()
	openFile(t, FileOptions{Dir: dir, Logger: log})
	var modeTests = []struct {
		path string      // file or directory
		want os.FileMode // its permissions
	}{
		{dir, 0o700},
		{filepath.Join(dir, dbFileName), 0o600},
		{filepath.Join(dir, defaultKeyFileName), 0o600},
	}
	for _, tt := range modeTests {
		info, err := os.Stat(tt.path)
		if err != nil || info.Mode().Perm() != tt.want {
			t.Errorf("%s: %v, mode %v; want %v", tt.path, err, info.Mode().Perm(), tt.want)
		}
	}
	if n := logs.FilterMessageSnippet("generated a new store key at " + filepath.Join(dir, defaultKeyFileName)).Len(); n != 1 {
		t.Errorf("got %d key-generation warnings; want 1", n)
	}
}

func TestFileWrongKey(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(t.TempDir(), "key")
	writeFile(t, keyFile, testKey(1), 0o600)
	s := openFile(t, FileOptions{Dir: dir, KeyFile: keyFile})
	mustStore(t, s, "tenants/acme/refresh", "rt-acme")
	s.Close()

	writeFile(t, keyFile, testKey(2), 0o600)
	_, err := OpenFile(FileOptions{Dir: dir, KeyFile: keyFile})
	if !errors.Is(err, ErrWrongKey) {
		t.Fatalf("OpenFile with another key: got %v; want ErrWrongKey", err)
	}
	want := "store: the key in " + keyFile + " does not open " + filepath.Join(dir, dbFileName) + " (it was written with a different key)"
	if !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %q; want it to start %q", err, want)
	}

	// Nothing was overwritten: the right key opens the old data.
	writeFile(t, keyFile, testKey(1), 0o600)
	s = openFile(t, FileOptions{Dir: dir, KeyFile: keyFile})
	if got := mustLoad(t, s, "tenants/acme/refresh"); got != "rt-acme" {
		t.Errorf("Load with the right key again: got %q; want %q", got, "rt-acme")
	}
}

func TestFileMissingKeyIsNotReplaced(t *testing.T) {
	dir := t.TempDir()
	s := openFile(t, FileOptions{Dir: dir})
	mustStore(t, s, "tenants/acme/refresh", "rt-acme")
	s.Close()
	keyFile := filepath.Join(dir, defaultKeyFileName)
	if err := os.Remove(keyFile); err != nil {
		t.Fatal(err)
	}
	_, err := OpenFile(FileOptions{Dir: dir})
	if err == nil || !strings.Contains(err.Error(), "key file "+keyFile+" is missing") {
		t.Fatalf("OpenFile without its key: got %v; want an error saying the key file is missing", err)
	}
	if _, err := os.Stat(keyFile); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("OpenFile created a new key file (%v); want none", err)
	}
}

func TestFileInUseByAnotherOpener(t *testing.T) {
	dir := t.TempDir()
	s := openFile(t, FileOptions{Dir: dir})
	_, err := OpenFile(FileOptions{Dir: dir})
	want := "store: " + filepath.Join(dir, dbFileName) + " is in use by another sidekey process"
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("second OpenFile: got %v; want %q", err, want)
	}
	s.Close()
	openFile(t, FileOptions{Dir: dir})
}

func TestFileDataWithoutCanary(t *testing.T) {
	// A database with sealed data but no canary (its first open stopped
	// early, or an older build wrote it) opens with the right key only.
	dir := t.TempDir()
	b, err := openBolt(filepath.Join(dir, dbFileName), lockTimeout)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := Seal(b, testKey(1))
	if err != nil {
		t.Fatal(err)
	}
	mustStore(t, sealed, "tenants/acme/refresh", "rt-acme")
	b.Close()
	keyFile := filepath.Join(dir, defaultKeyFileName)

	writeFile(t, keyFile, testKey(2), 0o600)
	if _, err := OpenFile(FileOptions{Dir: dir}); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("OpenFile with another key: got %v; want ErrWrongKey", err)
	}
	writeFile(t, keyFile, testKey(1), 0o600)
	s := openFile(t, FileOptions{Dir: dir})
	if got := mustLoad(t, s, "tenants/acme/refresh"); got != "rt-acme" {
		t.Errorf("Load: got %q; want %q", got, "rt-acme")
	}
	s.Close()
	writeFile(t, keyFile, testKey(2), 0o600) // the canary now guards it
	if _, err := OpenFile(FileOptions{Dir: dir}); !errors.Is(err, ErrWrongKey) {
		t.Errorf("OpenFile with another key after the canary: got %v; want ErrWrongKey", err)
	}
}

func TestFileNeedsDir(t *testing.T) {
	if _, err := OpenFile(FileOptions{}); err == nil || !strings.Contains(err.Error(), "storage.path") {
		t.Errorf("OpenFile without Dir: got %v; want an error naming storage.path", err)
	}
}

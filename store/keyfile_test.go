package store

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// observed returns a logger that records warnings and above, and the record.
func observed() (*zap.Logger, *observer.ObservedLogs) {
	core, logs := observer.New(zapcore.WarnLevel)
	return zap.New(core), logs
}

// writeFile writes data to path with mode perm, or fails the test.
func writeFile(t *testing.T, path string, data []byte, perm os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, data, perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil { // past the umask
		t.Fatal(err)
	}
}

func TestLoadOrCreateKeyGenerates(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "secrets")
	path := filepath.Join(dir, "sidekey-key")
	log, logs := observed()

	key, created, err := LoadOrCreateKey(path, log)
	if err != nil || !created || len(key) != KeySize {
		t.Fatalf("first call: got %d-byte key, created %v, %v; want a new %d-byte key", len(key), created, err, KeySize)
	}
	if info, err := os.Stat(path); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v, mode %v; want mode 0600", err, info.Mode().Perm())
	}
	if info, err := os.Stat(dir); err != nil || info.Mode().Perm() != 0o700 {
		t.Errorf("key directory: %v, mode %v; want mode 0700", err, info.Mode().Perm())
	}
	if onDisk, _ := os.ReadFile(path); !bytes.Equal(onDisk, key) {
		t.Errorf("the key file does not hold the returned key")
	}
	want := "generated a new store key at " + path + "; in production provide storage.key_file from a secret"
	if warns := logs.FilterMessage(want).Len(); warns != 1 {
		t.Errorf("got %d warnings %q; want one", warns, want)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("key directory holds %d entries; want only the key (no temporary files)", len(entries))
	}

	again, created, err := LoadOrCreateKey(path, log)
	if err != nil || created || !bytes.Equal(again, key) {
		t.Errorf("second call: created %v, same key %v, %v; want the same key, not created", created, bytes.Equal(again, key), err)
	}
	if n := logs.Len(); n != 1 {
		t.Errorf("got %d warnings after reusing the key; want still 1", n)
	}
}

func TestLoadOrCreateKeyConcurrentCallersAgree(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key")
	const callers = 8
	keys := make([][]byte, callers)
	createdBy := make([]bool, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() { keys[i], createdBy[i], errs[i] = LoadOrCreateKey(path, nil) })
	}
	wg.Wait()
	creators := 0
	for i := range callers {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		if !bytes.Equal(keys[i], keys[0]) {
			t.Errorf("caller %d got another key than caller 0", i)
		}
		if createdBy[i] {
			creators++
		}
	}
	if creators != 1 {
		t.Errorf("%d callers report creating the key; want 1", creators)
	}
}

func TestLoadOrCreateKeyForms(t *testing.T) {
	want := testKey(7)
	var formTests = []struct {
		name string // form of the key file
		data []byte // its content
	}{
		{"raw", want},
		{"raw with newline", append(bytes.Clone(want), '\n')},
		{"hex", []byte(hex.EncodeToString(want))},
		{"hex with newline", []byte(hex.EncodeToString(want) + "\n")},
		{"upper-case hex with CRLF", []byte(strings.ToUpper(hex.EncodeToString(want)) + "\r\n")},
		{"base64", []byte(base64.StdEncoding.EncodeToString(want))},
		{"base64 with newline", []byte(base64.StdEncoding.EncodeToString(want) + "\n")},
		{"unpadded base64", []byte(base64.RawStdEncoding.EncodeToString(want))},
		{"URL base64", []byte(base64.URLEncoding.EncodeToString(want))},
	}
	for _, tt := range formTests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "key")
			writeFile(t, path, tt.data, 0o600)
			log, logs := observed()
			got, created, err := LoadOrCreateKey(path, log)
			if err != nil || created || !bytes.Equal(got, want) {
				t.Errorf("got key %x, created %v, %v; want %x, not created", got, created, err, want)
			}
			if logs.Len() != 0 {
				t.Errorf("unexpected warnings: %v", logs.All())
			}
		})
	}
}

func TestLoadOrCreateKeyRefusesBadFiles(t *testing.T) {
	var badTests = []struct {
		name string // what is wrong
		data string // content of the key file
	}{
		{"empty", ""},
		{"16 raw bytes", string(testKey(3)[:16])},
		{"31 raw bytes", string(testKey(3)[:31])},
		{"33 raw bytes", string(testKey(3)) + "x"},
		{"passphrase of 32 characters", "correct-horse-battery-staple-abc"},
		{"16-byte key in hex", hex.EncodeToString(testKey(3)[:16])},
		{"64 characters, not hex", strings.Repeat("zq", 32)},
		{"base64 of 24 bytes", base64.StdEncoding.EncodeToString(testKey(3)[:24]) + "\n"},
		{"base64 of 48 bytes", base64.StdEncoding.EncodeToString(bytes.Repeat(testKey(3), 2)[:48])},
	}
	for _, tt := range badTests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "key")
			writeFile(t, path, []byte(tt.data), 0o600)
			_, _, err := LoadOrCreateKey(path, nil)
			if err == nil {
				t.Fatal("got nil error; want one")
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the key file", err)
			}
			if len(tt.data) >= 8 && strings.Contains(err.Error(), tt.data) {
				t.Errorf("error %q shows the file's content", err)
			}
			if onDisk, _ := os.ReadFile(path); string(onDisk) != tt.data {
				t.Errorf("the bad key file was changed")
			}
		})
	}
}

func TestLoadOrCreateKeyWarnsWhenOthersCanRead(t *testing.T) {
	const foreignGroup = 54321 // a group this test process is not in
	var modeTests = []struct {
		mode    os.FileMode // key file mode
		foreign bool        // the file belongs to foreignGroup
		warn    bool        // whether a warning is due
	}{
		{0o600, false, false},
		{0o400, false, false},
		{0o640, false, false}, // our own group (Kubernetes' fsGroup, user-private groups)
		{0o640, true, true},
		{0o604, false, true},
		{0o644, false, true},
	}
	for _, tt := range modeTests {
		path := filepath.Join(t.TempDir(), "key")
		writeFile(t, path, testKey(4), tt.mode)
		if tt.foreign {
			if os.Geteuid() != 0 {
				t.Logf("mode %v in a foreign group: only root can give a file away; not checked", tt.mode)
				continue
			}
			if err := os.Chown(path, -1, foreignGroup); err != nil {
				t.Fatalf("giving the key file to group %d (the suite runs as root): %v", foreignGroup, err)
			}
		}
		log, logs := observed()
		if _, _, err := LoadOrCreateKey(path, log); err != nil {
			t.Fatal(err)
		}
		warned := logs.FilterMessageSnippet("readable by others or by a group").FilterMessageSnippet(path).
			FilterField(zap.String("path", path)).FilterField(zap.String("mode", tt.mode.String())).Len() == 1
		if warned != tt.warn {
			t.Errorf("mode %v (foreign group %v): warned %v; want %v", tt.mode, tt.foreign, warned, tt.warn)
		}
	}
}

func TestLoadOrCreateKeyDirectory(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := LoadOrCreateKey(dir, nil); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("key file that is a directory: got %v; want a not-a-regular-file error", err)
	}
}

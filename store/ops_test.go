package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/sidekey/sidekey/config"
)

// opsCase is a durable store kind the whole-store operations run against.
type opsCase struct {
	name string
	// storage returns the configuration of a fresh, empty store sealed
	// with the key seed (its key file written outside the store).
	storage func(t *testing.T, seed byte) config.Storage
}

var opsCases = []opsCase{
	{name: "file", storage: func(t *testing.T, seed byte) config.Storage {
		keyFile := filepath.Join(t.TempDir(), "key")
		writeFile(t, keyFile, testKey(seed), 0o600)
		return config.Storage{Type: "file", Path: filepath.Join(t.TempDir(), "data"), KeyFile: keyFile}
	}},
	{name: "redis", storage: func(t *testing.T, seed byte) config.Storage { return startRedis(t).storage(t, seed) }},
}

// openCfg opens the store cfg names, or fails the test; closed at cleanup.
func openCfg(t *testing.T, cfg config.Storage) Store {
	t.Helper()
	s, err := Open(cfg, nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return closeAtCleanup(t, s)
}

// fill stores n values "v{i}" under "tenants/t{i}/token".
func fill(t *testing.T, s Store, n int) {
	t.Helper()
	for i := range n {
		mustStore(t, s, fmt.Sprintf("tenants/t%04d/token", i), fmt.Sprintf("secret-token-%d", i))
	}
}

// fillClosed opens the store cfg configures, fills it with n values and
// closes it again.
func fillClosed(t *testing.T, cfg config.Storage, n int) {
	t.Helper()
	s := openCfg(t, cfg)
	fill(t, s, n)
	s.Close()
}

// checkFilled checks that s holds exactly what fill(n) stored.
func checkFilled(t *testing.T, s Store, n int) {
	t.Helper()
	keys, err := s.List(ctxT(t), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != n {
		t.Fatalf("the store holds %d values; want %d", len(keys), n)
	}
	for i := range n {
		if got, want := mustLoad(t, s, fmt.Sprintf("tenants/t%04d/token", i)), fmt.Sprintf("secret-token-%d", i); got != want {
			t.Fatalf("value %d = %q; want %q", i, got, want)
		}
	}
}

// backupOf backs up the store cfg names, or fails the test.
func backupOf(t *testing.T, cfg config.Storage) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := Backup(ctxT(t), &buf, BackupOptions{Storage: cfg}); err != nil {
		t.Fatalf("Backup: %v", err)
	}
	return buf.Bytes()
}

// emptyStore deletes every value the store cfg names holds, and its
// canary, as if it had been lost.
func emptyStore(t *testing.T, cfg config.Storage) {
	t.Helper()
	if cfg.Type == "file" {
		if err := os.RemoveAll(cfg.Path); err != nil {
			t.Fatal(err)
		}
		return
	}
	r, err := openConfiguredRedis(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.client.FlushDB(ctxT(t)).Err(); err != nil {
		t.Fatal(err)
	}
}

func TestBackupRestoreRoundTrip(t *testing.T) {
	for _, c := range opsCases {
		t.Run(c.name, func(t *testing.T) {
			cfg := c.storage(t, 1)
			fillClosed(t, cfg, 50)

			data := backupOf(t, cfg)
			if bytes.Contains(data, []byte("secret-token-")) {
				t.Error("the backup holds a value in clear")
			}
			if bytes.Contains(data, testKey(1)) {
				t.Error("the backup holds the key")
			}
			head := string(data[:bytes.IndexByte(data[len(backupMagic)+2:], '\n')+len(backupMagic)+2])
			for _, want := range []string{`"kind":"` + c.name + `"`, `"key_fingerprint":"` + KeyFingerprint(testKey(1)) + `"`, `"store_format":2`, `"values":50`} {
				if !strings.Contains(head, want) {
					t.Errorf("backup header %s lacks %s", head, want)
				}
			}

			emptyStore(t, cfg)
			info, err := Restore(ctxT(t), bytes.NewReader(data), RestoreOptions{Storage: cfg})
			if err != nil {
				t.Fatalf("Restore: %v", err)
			}
			if info.Values != 50 {
				t.Errorf("Restore restored %d values; want 50", info.Values)
			}
			checkFilled(t, openCfg(t, cfg), 50)
		})
	}
}

func TestRestoreRefusesANonEmptyStoreUnlessForced(t *testing.T) {
	for _, c := range opsCases {
		t.Run(c.name, func(t *testing.T) {
			cfg := c.storage(t, 1)
			fillClosed(t, cfg, 3)
			data := backupOf(t, cfg)

			s := openCfg(t, cfg)
			mustStore(t, s, "tenants/newer/token", "newer")
			s.Close()
			_, err := Restore(ctxT(t), bytes.NewReader(data), RestoreOptions{Storage: cfg})
			if err == nil || !strings.Contains(err.Error(), "is not empty (4 values); restore refuses to overwrite it without --force") {
				t.Fatalf("Restore into a non-empty store: %v; want a refusal naming --force", err)
			}
			s = openCfg(t, cfg)
			if got := mustLoad(t, s, "tenants/newer/token"); got != "newer" {
				t.Errorf("the refused restore changed the store: %q", got)
			}
			s.Close()

			if _, err := Restore(ctxT(t), bytes.NewReader(data), RestoreOptions{Storage: cfg, Force: true}); err != nil {
				t.Fatalf("Restore --force: %v", err)
			}
			checkFilled(t, openCfg(t, cfg), 3)
		})
	}
}

func TestRestoreRefusesWrongInputsWritingNothing(t *testing.T) {
	cfg := opsCases[0].storage(t, 1)
	fillClosed(t, cfg, 3)
	data := backupOf(t, cfg)

	otherKey := filepath.Join(t.TempDir(), "other-key")
	writeFile(t, otherKey, testKey(2), 0o600)
	damaged := bytes.Clone(data)
	damaged[len(damaged)/2] ^= 1
	missing := filepath.Join(t.TempDir(), "none")
	newer := bytes.Replace(bytes.Clone(data), []byte(backupMagic+"1"), []byte(backupMagic+"9"), 1)
	snap, err := decodeSnapshot(data)
	if err != nil {
		t.Fatal(err)
	}
	snap.header.StoreFormat = 7
	var newerStore bytes.Buffer
	if err := encodeSnapshot(&newerStore, snap); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name    string
		data    []byte
		keyFile string
		want    string
	}{
		{"wrong key", data, otherKey, "the backup is sealed with the key of fingerprint " + KeyFingerprint(testKey(1)) + ", but key_file " + otherKey + " holds the key " + KeyFingerprint(testKey(2))},
		{"missing key", data, missing, "key_file " + missing + " is missing"},
		{"truncated", data[:len(data)-10], cfg.KeyFile, "truncated or damaged"},
		{"damaged", damaged, cfg.KeyFile, "truncated or damaged"},
		{"not a backup", []byte("hello"), cfg.KeyFile, "not a sidekey store backup"},
		{"newer backup format", newer, cfg.KeyFile, "backup format 9 is newer than this sidekey supports (1); upgrade sidekey"},
		{"newer store format", newerStore.Bytes(), cfg.KeyFile, "the backup: store format 7 is newer than this sidekey supports (2); upgrade sidekey"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target := config.Storage{Type: "file", Path: filepath.Join(t.TempDir(), "data"), KeyFile: tc.keyFile}
			_, err := Restore(ctxT(t), bytes.NewReader(tc.data), RestoreOptions{Storage: target})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Restore: %v; want an error containing %q", err, tc.want)
			}
			if _, err := os.Stat(target.Path); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the refused restore created %s", target.Path)
			}
		})
	}
}

func TestBackupRefusesAKeyThatDoesNotOpenTheStore(t *testing.T) {
	cfg := opsCases[0].storage(t, 1)
	fillClosed(t, cfg, 1)
	writeFile(t, cfg.KeyFile, testKey(2), 0o600)
	_, err := Backup(ctxT(t), &bytes.Buffer{}, BackupOptions{Storage: cfg})
	if !errors.Is(err, ErrWrongKey) || !strings.Contains(err.Error(), cfg.KeyFile) {
		t.Fatalf("Backup with another key: %v; want ErrWrongKey naming %s", err, cfg.KeyFile)
	}
}

// TestBackupWhileTheFileStoreServes takes a backup from the process that
// holds the database, while it writes: the backup is one consistent state
// (every value of a generation from the same write).
func TestBackupWhileTheFileStoreServes(t *testing.T) {
	cfg := opsCases[0].storage(t, 1)
	s := openCfg(t, cfg)
	fill(t, s, 20)
	ctx, cancel := context.WithCancel(ctxT(t))
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ctx.Err() == nil; i++ {
			_ = s.Store(ctx, "tenants/busy/token", []byte(fmt.Sprint(i)))
		}
	})
	for range 3 {
		data := backupOf(t, cfg)
		snap, err := decodeSnapshot(data)
		if err != nil {
			t.Fatal(err)
		}
		if len(snap.records) < 20 {
			t.Errorf("a backup of the serving store holds %d values; want at least 20", len(snap.records))
		}
	}
	cancel()
	wg.Wait()
	s.Close()
	if _, err := os.Stat(filepath.Join(cfg.Path, snapshotSocketName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the snapshot socket is left after Close: %v", err)
	}
}

func TestRekey(t *testing.T) {
	for _, c := range opsCases {
		t.Run(c.name, func(t *testing.T) {
			cfg := c.storage(t, 1)
			fillClosed(t, cfg, 40)

			newKeyFile := filepath.Join(t.TempDir(), "new-key")
			writeFile(t, newKeyFile, testKey(2), 0o600)
			info, err := Rekey(ctxT(t), RekeyOptions{Storage: cfg, NewKeyFile: newKeyFile})
			if err != nil {
				t.Fatalf("Rekey: %v", err)
			}
			if info.Values != 40 || info.OldFingerprint != KeyFingerprint(testKey(1)) || info.NewFingerprint != KeyFingerprint(testKey(2)) {
				t.Errorf("Rekey = %+v", info)
			}

			_, err = Open(cfg, nil)
			want := "store was re-keyed; key_file " + cfg.KeyFile + " does not open it"
			if !errors.Is(err, ErrWrongKey) || !strings.Contains(err.Error(), want) {
				t.Fatalf("Open with the old key: %v; want ErrWrongKey and %q", err, want)
			}
			newCfg := cfg
			newCfg.KeyFile = newKeyFile
			checkFilled(t, openCfg(t, newCfg), 40)

			// The same key again is refused; so is the old key now.
			if _, err := Rekey(ctxT(t), RekeyOptions{Storage: newCfg, NewKeyFile: newKeyFile}); err == nil || !strings.Contains(err.Error(), "current key") {
				t.Errorf("Rekey to the current key: %v", err)
			}
		})
	}
}

func TestRekeyGeneratesAMissingKeyFile(t *testing.T) {
	cfg := opsCases[0].storage(t, 1)
	fillClosed(t, cfg, 2)
	newKeyFile := filepath.Join(t.TempDir(), "gen", "key")
	info, err := Rekey(ctxT(t), RekeyOptions{Storage: cfg, NewKeyFile: newKeyFile})
	if err != nil || !info.KeyCreated {
		t.Fatalf("Rekey = %+v, %v; want a created key", info, err)
	}
	st, err := os.Stat(newKeyFile)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("the generated key file: %v %v; want mode 0600", st, err)
	}
	cfg.KeyFile = newKeyFile
	checkFilled(t, openCfg(t, cfg), 2)
}

func TestRekeyRefusesWhileSidekeyServes(t *testing.T) {
	cfg := opsCases[0].storage(t, 1)
	openCfg(t, cfg)
	_, err := Rekey(ctxT(t), RekeyOptions{Storage: cfg, NewKeyFile: filepath.Join(t.TempDir(), "k")})
	if err == nil || !strings.Contains(err.Error(), "stop sidekey first") {
		t.Fatalf("Rekey of a store in use: %v; want `stop sidekey first`", err)
	}
}

func TestStoreFormat(t *testing.T) {
	for _, c := range opsCases {
		t.Run(c.name, func(t *testing.T) {
			cfg := c.storage(t, 1)
			fillClosed(t, cfg, 2)

			// A format 1 store (no format or fingerprint record) opens and is upgraded.
			setMeta(t, cfg, formatRecord, nil)
			setMeta(t, cfg, fingerprintRecord, nil)
			s := openCfg(t, cfg)
			checkFilled(t, s, 2)
			s.Close()
			if got := getMeta(t, cfg, formatRecord); string(got) != "2" {
				t.Errorf("format record after opening a format 1 store: %q; want 2", got)
			}
			if got := getMeta(t, cfg, fingerprintRecord); string(got) != KeyFingerprint(testKey(1)) {
				t.Errorf("fingerprint record: %q", got)
			}

			// A newer store is refused.
			setMeta(t, cfg, formatRecord, []byte("3"))
			_, err := Open(cfg, nil)
			if err == nil || !strings.Contains(err.Error(), "store format 3 is newer than this sidekey supports (2); upgrade sidekey") {
				t.Fatalf("Open of a format 3 store: %v", err)
			}
		})
	}
}

// setMeta sets (nil: deletes) a meta record of the closed store cfg names.
func setMeta(t *testing.T, cfg config.Storage, name string, value []byte) {
	t.Helper()
	if cfg.Type == "file" {
		b, err := openBolt(filepath.Join(cfg.Path, dbFileName), lockTimeout)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		err = b.db.Update(func(tx *bolt.Tx) error {
			if value == nil {
				return tx.Bucket(metaBucket).Delete([]byte(name))
			}
			return tx.Bucket(metaBucket).Put([]byte(name), value)
		})
		if err != nil {
			t.Fatal(err)
		}
		return
	}
	r, err := openConfiguredRedis(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if value == nil {
		err = r.client.Del(ctxT(t), r.metaKey(name)).Err()
	} else {
		err = r.client.Set(ctxT(t), r.metaKey(name), value, 0).Err()
	}
	if err != nil {
		t.Fatal(err)
	}
}

// getMeta reads a meta record of the closed store cfg names.
func getMeta(t *testing.T, cfg config.Storage, name string) []byte {
	t.Helper()
	if cfg.Type == "file" {
		b, err := openBolt(filepath.Join(cfg.Path, dbFileName), lockTimeout)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		m, err := b.readMetas(name)
		if err != nil {
			t.Fatal(err)
		}
		return m[name]
	}
	r, err := openConfiguredRedis(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	m, err := r.readMetas(ctxT(t), name)
	if err != nil {
		t.Fatal(err)
	}
	return m[name]
}

func FuzzDecodeSnapshot(f *testing.F) {
	var buf bytes.Buffer
	_ = encodeSnapshot(&buf, &snapshot{header: backupHeader{Kind: "file", StoreFormat: 2, Canary: []byte{1, 2}},
		records: []record{{key: "a/b", value: []byte("sealed")}, {key: "c", value: nil}}})
	good := buf.Bytes()
	f.Add(good)
	f.Add(good[:len(good)-1])
	f.Add([]byte(backupMagic + "1\n{}\n"))
	f.Add([]byte(backupMagic + "x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		snap, err := decodeSnapshot(data)
		if err != nil {
			return
		}
		var again bytes.Buffer
		if err := encodeSnapshot(&again, snap); err != nil {
			t.Fatal(err)
		}
		back, err := decodeSnapshot(again.Bytes())
		if err != nil || len(back.records) != len(snap.records) {
			t.Fatalf("a decoded backup does not round-trip: %v", err)
		}
	})
}

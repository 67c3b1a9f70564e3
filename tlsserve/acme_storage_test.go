package tlsserve

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sidekey/sidekey/config"
	"github.com/sidekey/sidekey/store"
)

// testACMEStorage is an acmeStorage over a sealed memory store, as
// store.Open builds it, with a fixed clock.
func testACMEStorage(t *testing.T) (*acmeStorage, store.Store, time.Time) {
	t.Helper()
	st, err := store.Open(config.Storage{Type: "memory"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	at := time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC)
	return newACMEStorage(st, func() time.Time { return at }), st, at
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// mustStoreACME stores key's name as its value.
func mustStoreACME(t *testing.T, a *acmeStorage, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if err := a.Store(testCtx(t), k, []byte("value of "+k)); err != nil {
			t.Fatalf("Store(%q): %v", k, err)
		}
	}
}

const certKey = "certificates/acme-v02.api.letsencrypt.org-directory/localhost/localhost.crt"

func TestACMEStorageStoreLoadStatExists(t *testing.T) {
	a, st, at := testACMEStorage(t)
	ctx := testCtx(t)
	mustStoreACME(t, a, certKey)

	got, err := a.Load(ctx, certKey)
	if want := "value of " + certKey; err != nil || string(got) != want {
		t.Fatalf("Load: got %q, %v; want %q", got, err, want)
	}
	// Kept under acme/, the name unchanged, the value sealed.
	raw, err := st.Load(ctx, "acme/"+certKey)
	if err != nil {
		t.Fatalf("store key acme/%s: %v", certKey, err)
	}
	if len(raw) < len(got) {
		t.Fatalf("stored value of %d bytes; want at least %d", len(raw), len(got))
	}

	info, err := a.Stat(ctx, certKey)
	if err != nil {
		t.Fatal(err)
	}
	if info.Key != certKey || !info.IsTerminal || info.Size != int64(len(got)) || !info.Modified.Equal(at) {
		t.Errorf("Stat(file): got %+v; want key %q, terminal, size %d, modified %v", info, certKey, len(got), at)
	}
	dir := "certificates/acme-v02.api.letsencrypt.org-directory"
	info, err = a.Stat(ctx, dir)
	if err != nil || info.Key != dir || info.IsTerminal {
		t.Errorf("Stat(directory): got %+v, %v; want key %q, not terminal", info, err, dir)
	}

	for _, tc := range []struct {
		key    string // certmagic key
		exists bool   // want Exists
	}{
		{certKey, true},
		{dir, true},
		{"certificates", true},
		{"certificates/acme-v02", false}, // a prefix of a segment is not a directory
		{certKey + "/below", false},
		{"missing", false},
	} {
		if got := a.Exists(ctx, tc.key); got != tc.exists {
			t.Errorf("Exists(%q): got %v; want %v", tc.key, got, tc.exists)
		}
		if tc.exists {
			continue
		}
		if _, err := a.Stat(ctx, tc.key); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Stat(%q): got %v; want fs.ErrNotExist", tc.key, err)
		}
		if _, err := a.Load(ctx, tc.key); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Load(%q): got %v; want fs.ErrNotExist", tc.key, err)
		}
	}
	if _, err := a.Load(ctx, dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(directory): got %v; want fs.ErrNotExist", err)
	}

	// Store replaces.
	if err := a.Store(ctx, certKey, []byte("renewed")); err != nil {
		t.Fatal(err)
	}
	if got, err := a.Load(ctx, certKey); err != nil || string(got) != "renewed" {
		t.Errorf("Load after a second Store: got %q, %v; want %q", got, err, "renewed")
	}
}

func TestACMEStorageList(t *testing.T) {
	a, _, _ := testACMEStorage(t)
	mustStoreACME(t, a,
		"certificates/ca/a.example/a.example.crt",
		"certificates/ca/a.example/a.example.key",
		"certificates/ca/b.example/b.example.crt",
		"certificates/cab/c.example/c.example.crt", // "ca" is not its prefix
		"acme/ca/users/ops@sidekey.test/ops.json",
		"last_clean.json",
	)
	for _, tc := range []struct {
		dir       string   // List's path
		recursive bool     // List's recursive
		want      []string // nil: an error matching fs.ErrNotExist
	}{
		{"", false, []string{"acme", "certificates", "last_clean.json"}},
		{"certificates", false, []string{"certificates/ca", "certificates/cab"}},
		{"certificates/ca", false, []string{"certificates/ca/a.example", "certificates/ca/b.example"}},
		{"certificates/ca/a.example", false, []string{"certificates/ca/a.example/a.example.crt", "certificates/ca/a.example/a.example.key"}},
		{"certificates/ca", true, []string{
			"certificates/ca/a.example",
			"certificates/ca/a.example/a.example.crt",
			"certificates/ca/a.example/a.example.key",
			"certificates/ca/b.example",
			"certificates/ca/b.example/b.example.crt",
		}},
		{"acme", true, []string{"acme/ca", "acme/ca/users", "acme/ca/users/ops@sidekey.test", "acme/ca/users/ops@sidekey.test/ops.json"}},
		{"missing", false, nil},
		{"missing", true, nil},
		{"certificates/c", false, nil},             // not a segment of any key
		{"last_clean.json", false, nil},            // a file has nothing under it
		{"certificates/ca/b.example/b", true, nil}, // partial file name
	} {
		got, err := a.List(testCtx(t), tc.dir, tc.recursive)
		if tc.want == nil {
			if !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("List(%q, %v): got %q, %v; want fs.ErrNotExist", tc.dir, tc.recursive, got, err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("List(%q, %v):\ngot  %q, %v\nwant %q", tc.dir, tc.recursive, got, err, tc.want)
		}
	}
}

func TestACMEStorageDelete(t *testing.T) {
	a, st, _ := testACMEStorage(t)
	ctx := testCtx(t)
	mustStoreACME(t, a,
		"certificates/ca/a.example/a.example.crt",
		"certificates/ca/a.example/a.example.key",
		"certificates/ca/a.example.org/a.example.org.crt", // shares a prefix, not a segment
		"certificates/ca/b.example/b.example.crt",
	)
	// A directory goes with everything under it.
	if err := a.Delete(ctx, "certificates/ca/a.example"); err != nil {
		t.Fatal(err)
	}
	if a.Exists(ctx, "certificates/ca/a.example/a.example.crt") || a.Exists(ctx, "certificates/ca/a.example") {
		t.Error("a.example's files survived deleting their directory")
	}
	// A file alone.
	if err := a.Delete(ctx, "certificates/ca/b.example/b.example.crt"); err != nil {
		t.Fatal(err)
	}
	// Missing keys are no error.
	for _, k := range []string{"certificates/ca/b.example/b.example.crt", "missing/key"} {
		if err := a.Delete(ctx, k); err != nil {
			t.Errorf("Delete(%q) of a missing key: %v; want nil", k, err)
		}
	}
	keys, err := st.List(ctx, "")
	if want := []string{"acme/certificates/ca/a.example.org/a.example.org.crt"}; err != nil || !slices.Equal(keys, want) {
		t.Errorf("store keys left: got %q, %v; want %q", keys, err, want)
	}
}

// acmeKeyTests are certmagic keys the store would refuse as they are.
var acmeKeyTests = []struct {
	key     string // certmagic's key
	escaped string // its store key below acme/
}{
	{certKey, certKey},
	{"users/ops@sidekey.test/ops.json", "users/ops@sidekey.test/ops.json"},
	{"certificates/ca/wildcard_.example.com/*.example.com.crt", "certificates/ca/wildcard_.example.com/*.example.com.crt"},
	{"a//b", "a/%/b"},
	{"/lead", "%/lead"},
	{"trail/", "trail/%"},
	{"./..", "%2E/%2E%2E"},
	{".../x", ".../x"},
	{"per%cent/%2E", "per%25cent/%252E"},
	{"ctl\x01\x7f", "ctl%01%7F"},
	{"c1\u0085", "c1%C2%85"},
	{"bad\xffutf8", "bad%FFutf8"},
	{"ünï/日本", "ünï/日本"},
	{"", "%"},
}

func TestACMEStorageEscapesKeys(t *testing.T) {
	a, st, _ := testACMEStorage(t)
	ctx := testCtx(t)
	var want []string
	for _, tc := range acmeKeyTests {
		if got := escapeACMEKey(tc.key); got != tc.escaped {
			t.Errorf("escapeACMEKey(%q): got %q; want %q", tc.key, got, tc.escaped)
		}
		if tc.key == "" {
			continue // lists as a "" directory entry, not the empty key
		}
		mustStoreACME(t, a, tc.key)
		if got, err := a.Load(ctx, tc.key); err != nil || string(got) != "value of "+tc.key {
			t.Errorf("Load(%q): got %q, %v", tc.key, got, err)
		}
		if _, err := st.Load(ctx, "acme/"+tc.escaped); err != nil {
			t.Errorf("store key for %q: %v", tc.key, err)
		}
		want = append(want, tc.key)
	}
	got, err := a.List(ctx, "", true)
	if err != nil {
		t.Fatal(err)
	}
	// Every key comes back by its own name (with its directories).
	for _, k := range want {
		if !slices.Contains(got, k) {
			t.Errorf("List(\"\", true) lacks %q; got %q", k, got)
		}
	}
	if got, err := a.List(ctx, "a", false); err != nil || !slices.Equal(got, []string{"a/"}) {
		t.Errorf("List(\"a\", false): got %q, %v; want [\"a/\"]", got, err)
	}
}

// FuzzACMEKeyEscape: every certmagic key maps to a valid store key, and
// back to itself.
func FuzzACMEKeyEscape(f *testing.F) {
	for _, tc := range acmeKeyTests {
		f.Add(tc.key)
	}
	st := store.NewMemory()
	defer st.Close()
	f.Fuzz(func(t *testing.T, key string) {
		escaped := escapeACMEKey(key)
		back, err := unescapeACMEKey(escaped)
		if err != nil || back != key {
			t.Fatalf("unescapeACMEKey(escapeACMEKey(%q) = %q): got %q, %v", key, escaped, back, err)
		}
		if strings.Count(escaped, "/") != strings.Count(key, "/") {
			t.Fatalf("escapeACMEKey(%q) = %q changed the segments", key, escaped)
		}
		full := acmePrefix + escaped
		if len(full) > store.MaxKeyLen {
			return // too long for the store: it refuses, with ErrInvalidKey
		}
		if err := st.Store(context.Background(), full, nil); err != nil {
			t.Fatalf("store key %q for %q: %v", full, key, err)
		}
		if err := st.Delete(context.Background(), full); err != nil {
			t.Fatal(err)
		}
	})
}

// Two storages over one store are two replicas: a lock one holds, the
// other waits for.
func TestACMEStorageLockExcludes(t *testing.T) {
	a, st, _ := testACMEStorage(t)
	b := newACMEStorage(st, nil)
	ctx := testCtx(t)
	const name = "issue_cert_localhost"

	if err := a.Lock(ctx, name); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	err := b.Lock(short, name)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("b.Lock while a holds it: got %v; want context.DeadlineExceeded", err)
	}
	// Other names are free.
	if err := b.Lock(ctx, "other"); err != nil {
		t.Fatal(err)
	}
	if err := b.Unlock(ctx, "other"); err != nil {
		t.Fatal(err)
	}

	acquired := make(chan error, 1)
	go func() { acquired <- b.Lock(ctx, name) }()
	if err := a.Unlock(ctx, name); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-acquired:
		if err != nil {
			t.Fatalf("b.Lock after a.Unlock: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("b did not get the lock a released")
	}
	if err := a.Unlock(ctx, name); err == nil {
		t.Error("a.Unlock of a lock a does not hold: got nil; want an error")
	}
	if err := b.Unlock(ctx, name); err != nil {
		t.Fatal(err)
	}
	if err := a.Lock(ctx, name); err != nil {
		t.Fatalf("a.Lock after b.Unlock: %v", err)
	}
	if err := a.Unlock(ctx, name); err != nil {
		t.Fatal(err)
	}
}

// TestACMEStorageLockMutualExclusion has two replicas take turns many
// times; the race detector and the counter see any overlap.
func TestACMEStorageLockMutualExclusion(t *testing.T) {
	a, st, _ := testACMEStorage(t)
	replicas := []*acmeStorage{a, newACMEStorage(st, nil)}
	ctx := testCtx(t)
	var inside atomic.Int32
	shared := 0 // written only under the lock
	var wg sync.WaitGroup
	errs := make(chan error, len(replicas))
	for _, r := range replicas {
		wg.Go(func() {
			for range 200 {
				if err := r.Lock(ctx, "storage_clean"); err != nil {
					errs <- err
					return
				}
				if n := inside.Add(1); n != 1 {
					errs <- fmt.Errorf("%d holders at once", n)
				}
				shared++
				runtime.Gosched()
				inside.Add(-1)
				if err := r.Unlock(ctx, "storage_clean"); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if shared != 400 {
		t.Errorf("turns taken: got %d; want 400", shared)
	}
}

func TestACMEStorageEnvelope(t *testing.T) {
	at := time.Unix(1700000000, 123456789)
	for _, value := range [][]byte{nil, {}, []byte("-----BEGIN CERTIFICATE-----")} {
		modified, got, err := openEnvelope(sealEnvelope(at, value))
		if err != nil || !modified.Equal(at) || !bytes.Equal(got, value) {
			t.Errorf("envelope of %q: got %v, %q, %v; want %v, %q", value, modified, got, err, at, value)
		}
	}
	if _, _, err := openEnvelope([]byte("short")); err == nil {
		t.Error("openEnvelope of 5 bytes: got nil error")
	}
}

package store

import (
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"testing"
)

func TestStoreMissingKey(t *testing.T) {
	forEachStore(t, func(t *testing.T, s Store) {
		const key = "tenants/nobody/token"
		_, err := s.Load(ctxT(t), key)
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Load of a missing key: got %v; want fs.ErrNotExist", err)
		}
		if err != nil && !strings.Contains(err.Error(), key) {
			t.Errorf("Load error %q does not name the key", err)
		}
		if _, err := s.Take(ctxT(t), key); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Take of a missing key: got %v; want fs.ErrNotExist", err)
		}
		if err := s.Delete(ctxT(t), key); err != nil {
			t.Errorf("Delete of a missing key: got %v; want nil", err)
		}
	})
}

func TestStoreRoundTrip(t *testing.T) {
	forEachStore(t, func(t *testing.T, s Store) {
		ctx := ctxT(t)
		value := []byte("refresh-token-1")
		if err := s.Store(ctx, "tenants/acme/refresh", value); err != nil {
			t.Fatal(err)
		}
		value[0] = 'X' // the store must have kept its own copy
		if got := mustLoad(t, s, "tenants/acme/refresh"); got != "refresh-token-1" {
			t.Errorf("Load: got %q; want %q", got, "refresh-token-1")
		}

		got, err := s.Load(ctx, "tenants/acme/refresh")
		if err != nil {
			t.Fatal(err)
		}
		got[0] = 'Y' // nor may the caller's slice alias it
		if got := mustLoad(t, s, "tenants/acme/refresh"); got != "refresh-token-1" {
			t.Errorf("Load after changing a loaded slice: got %q; want %q", got, "refresh-token-1")
		}

		mustStore(t, s, "tenants/acme/refresh", "refresh-token-2")
		if got := mustLoad(t, s, "tenants/acme/refresh"); got != "refresh-token-2" {
			t.Errorf("Load after overwrite: got %q; want %q", got, "refresh-token-2")
		}

		mustStore(t, s, "empty", "")
		if v, err := s.Load(ctx, "empty"); err != nil || len(v) != 0 {
			t.Errorf("Load of an empty value: got %q, %v; want empty, nil", v, err)
		}

		if err := s.Delete(ctx, "tenants/acme/refresh"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Load(ctx, "tenants/acme/refresh"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Load after Delete: got %v; want fs.ErrNotExist", err)
		}
	})
}

func TestStoreTakeIsSingleUse(t *testing.T) {
	const takers = 50
	forEachStore(t, func(t *testing.T, s Store) {
		ctx := ctxT(t)
		for round := range 5 {
			key := fmt.Sprintf("consent/state-%d", round)
			want := fmt.Sprintf("verifier-%d", round)
			mustStore(t, s, key, want)

			start := make(chan struct{})
			var wg sync.WaitGroup
			var mu sync.Mutex // guards got, misses, others
			var got []string
			var misses int
			var others []error
			for range takers {
				wg.Go(func() {
					<-start
					v, err := s.Take(ctx, key)
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err == nil:
						got = append(got, string(v))
					case errors.Is(err, fs.ErrNotExist):
						misses++
					default:
						others = append(others, err)
					}
				})
			}
			close(start)
			wg.Wait()
			if len(got) != 1 || got[0] != want || misses != takers-1 || len(others) > 0 {
				t.Fatalf("round %d: %d takers got %q, %d got fs.ErrNotExist, other errors %v; want exactly one %q",
					round, takers, got, misses, others, want)
			}
			if _, err := s.Load(ctx, key); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("Load after Take: got %v; want fs.ErrNotExist", err)
			}
		}
	})
}

func TestStoreList(t *testing.T) {
	forEachStore(t, func(t *testing.T, s Store) {
		all := []string{"tenants/b/token", "tenants/a/token", "tenants/a/refresh", "tenantsx", "other/k", "tenants/a.b/token"}
		for _, k := range all {
			mustStore(t, s, k, "v-"+k)
		}
		var listTests = []struct {
			prefix string   // List prefix
			want   []string // keys, in order
		}{
			{"", []string{"other/k", "tenants/a.b/token", "tenants/a/refresh", "tenants/a/token", "tenants/b/token", "tenantsx"}},
			{"tenants/", []string{"tenants/a.b/token", "tenants/a/refresh", "tenants/a/token", "tenants/b/token"}},
			{"tenants/a/", []string{"tenants/a/refresh", "tenants/a/token"}},
			{"tenants/a", []string{"tenants/a.b/token", "tenants/a/refresh", "tenants/a/token"}},
			{"tenants", []string{"tenants/a.b/token", "tenants/a/refresh", "tenants/a/token", "tenants/b/token", "tenantsx"}},
			{"zzz", []string{}},
		}
		for _, tt := range listTests {
			got, err := s.List(ctxT(t), tt.prefix)
			if err != nil {
				t.Errorf("List(%q): %v", tt.prefix, err)
				continue
			}
			if got == nil || !slices.Equal(got, tt.want) {
				t.Errorf("List(%q): got %q; want %q", tt.prefix, got, tt.want)
			}
		}
		for _, bad := range []string{"/tenants", "a//", "../", "a\nb"} {
			if _, err := s.List(ctxT(t), bad); !errors.Is(err, ErrInvalidKey) {
				t.Errorf("List(%q): got %v; want ErrInvalidKey", bad, err)
			}
		}
	})
}

// badKeys are keys every method must refuse.
var badKeys = []struct {
	key    string // the key
	reason string // part of the expected error
}{
	{"", "empty"},
	{"/tenants/a", "starts with '/'"},
	{"tenants/", "empty segment"},
	{"tenants//a", "empty segment"},
	{"..", `".." segment`},
	{"../etc/passwd", `".." segment`},
	{"tenants/../a", `".." segment`},
	{"tenants/./a", `"." segment`},
	{"a\x00b", "control character"},
	{"a\nb", "control character"},
	{"a\x7fb", "control character"},
	{"a\u0085b", "control character"},
	{"a\xffb", "UTF-8"},
	{strings.Repeat("k", MaxKeyLen+1), "longer than"},
}

func TestStoreKeyValidation(t *testing.T) {
	forEachStore(t, func(t *testing.T, s Store) {
		ctx := ctxT(t)
		for _, tt := range badKeys {
			_, loadErr := s.Load(ctx, tt.key)
			_, takeErr := s.Take(ctx, tt.key)
			_, lockErr := s.Lock(ctx, tt.key)
			_, casErr := s.CompareAndSwap(ctx, tt.key, nil, []byte("v"))
			errs := map[string]error{
				"Load":           loadErr,
				"Store":          s.Store(ctx, tt.key, []byte("v")),
				"Delete":         s.Delete(ctx, tt.key),
				"Take":           takeErr,
				"Lock":           lockErr,
				"CompareAndSwap": casErr,
			}
			for method, err := range errs {
				if !errors.Is(err, ErrInvalidKey) || !strings.Contains(err.Error(), tt.reason) {
					t.Errorf("%s(%q): got %v; want ErrInvalidKey saying %q", method, tt.key, err, tt.reason)
				}
			}
		}
		got, err := s.List(ctx, "")
		if err != nil || len(got) != 0 {
			t.Errorf("after refused writes, List: got %q, %v; want nothing", got, err)
		}
		for _, good := range []string{"a", "tenants/acme/token", "a/.hidden", "a/..b", "a b/ü", strings.Repeat("k", MaxKeyLen)} {
			mustStore(t, s, good, "v")
			if got := mustLoad(t, s, good); got != "v" {
				t.Errorf("Load(%q): got %q; want %q", good, got, "v")
			}
		}
	})
}

func TestStoreMixedConcurrentUse(t *testing.T) {
	forEachStore(t, func(t *testing.T, s Store) {
		ctx := ctxT(t)
		var wg sync.WaitGroup
		errs := make(chan error, 8*20)
		for w := range 8 {
			wg.Go(func() {
				for i := range 20 {
					key := fmt.Sprintf("tenants/t%d/token", w)
					want := fmt.Sprintf("token-%d-%d", w, i)
					if err := s.Store(ctx, key, []byte(want)); err != nil {
						errs <- err
						return
					}
					got, err := s.Load(ctx, key)
					if err != nil || string(got) != want {
						errs <- fmt.Errorf("Load(%q): got %q, %v; want %q", key, got, err, want)
						return
					}
					if _, err := s.List(ctx, "tenants/"); err != nil {
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
		keys, err := s.List(ctx, "tenants/")
		if err != nil || len(keys) != 8 {
			t.Errorf("List: got %q, %v; want 8 keys", keys, err)
		}
	})
}

func TestStorePingAndClose(t *testing.T) {
	forEachStore(t, func(t *testing.T, s Store) {
		ctx := ctxT(t)
		if err := s.Ping(ctx); err != nil {
			t.Fatalf("Ping: %v", err)
		}
		mustStore(t, s, "k", "v")
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("second Close: got %v; want nil", err)
		}
		_, loadErr := s.Load(ctx, "k")
		_, takeErr := s.Take(ctx, "k")
		_, listErr := s.List(ctx, "")
		_, lockErr := s.Lock(ctx, "k")
		_, casErr := s.CompareAndSwap(ctx, "k", []byte("v"), []byte("w"))
		_, watchErr := s.(Watcher).Watch(ctx, "")
		errs := map[string]error{
			"Load":           loadErr,
			"Store":          s.Store(ctx, "k", []byte("v")),
			"Delete":         s.Delete(ctx, "k"),
			"Take":           takeErr,
			"List":           listErr,
			"Lock":           lockErr,
			"Ping":           s.Ping(ctx),
			"CompareAndSwap": casErr,
			"Watch":          watchErr,
		}
		for method, err := range errs {
			if !errors.Is(err, ErrClosed) {
				t.Errorf("%s after Close: got %v; want ErrClosed", method, err)
			}
		}
	})
}

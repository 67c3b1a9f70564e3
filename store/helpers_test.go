package store

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
	"time"
)

// storeCase is one Store implementation the conformance tests run against.
type storeCase struct {
	name string                   // subtest name
	open func(t *testing.T) Store // a fresh, empty store, closed at cleanup
}

// storeCases is the table every conformance test runs over.
var storeCases = []storeCase{
	{
		name: "memory",
		open: func(t *testing.T) Store { return closeAtCleanup(t, NewMemory()) },
	},
	{
		name: "sealed-memory",
		open: func(t *testing.T) Store {
			s, err := Seal(NewMemory(), testKey(1))
			if err != nil {
				t.Fatal(err)
			}
			return closeAtCleanup(t, s)
		},
	},
	{
		name: "bolt-unsealed", // the layer under OpenFile
		open: func(t *testing.T) Store {
			b, err := openBolt(filepath.Join(t.TempDir(), dbFileName), lockTimeout)
			if err != nil {
				t.Fatal(err)
			}
			return closeAtCleanup(t, b)
		},
	},
	{
		name: "file",
		open: func(t *testing.T) Store {
			s, err := OpenFile(FileOptions{Dir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			return closeAtCleanup(t, s)
		},
	},
	{
		name: "redis-unsealed", // the layer under Open for type redis
		open: func(t *testing.T) Store { return openRedisT(t, startRedis(t).options()) },
	},
	{
		name: "redis", // as Open returns it: sealed, canary written
		open: func(t *testing.T) Store {
			s, err := Open(startRedis(t).storage(t, 1), nil)
			if err != nil {
				t.Fatal(err)
			}
			return closeAtCleanup(t, s)
		},
	},
}

// openRedisT opens an unsealed redis store, closed at cleanup, or fails the
// test.
func openRedisT(t *testing.T, opts RedisOptions) Store {
	t.Helper()
	s, err := OpenRedis(opts)
	if err != nil {
		t.Fatalf("OpenRedis: %v", err)
	}
	return closeAtCleanup(t, s)
}

// forEachStore runs test once per store case, each with a fresh store.
func forEachStore(t *testing.T, test func(t *testing.T, s Store)) {
	t.Helper()
	for _, c := range storeCases {
		t.Run(c.name, func(t *testing.T) { test(t, c.open(t)) })
	}
}

// closeAtCleanup closes s when the test ends.
func closeAtCleanup(t *testing.T, s Store) Store {
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// testKey returns a KeySize-byte key filled from seed.
func testKey(seed byte) []byte {
	return bytes.Repeat([]byte{seed, 0xA5, seed ^ 0x5A, 0x00}, KeySize/4)
}

// ctxT returns a context that ends with the test (or after 10 seconds).
func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// mustStore stores value under key or fails the test.
func mustStore(t *testing.T, s Store, key, value string) {
	t.Helper()
	if err := s.Store(ctxT(t), key, []byte(value)); err != nil {
		t.Fatalf("Store(%q): %v", key, err)
	}
}

// mustLoad loads key or fails the test.
func mustLoad(t *testing.T, s Store, key string) string {
	t.Helper()
	v, err := s.Load(ctxT(t), key)
	if err != nil {
		t.Fatalf("Load(%q): %v", key, err)
	}
	return string(v)
}

// locksOf returns the lock table under s, unwrapping a sealed store.
func locksOf(t *testing.T, s Store) *lockTable {
	t.Helper()
	if ss, ok := s.(*sealedStore); ok {
		s = ss.inner
	}
	switch s := s.(type) {
	case *memoryStore:
		return s.locks
	case *boltStore:
		return s.locks
	case *redisStore:
		return s.locks
	}
	t.Fatalf("no lock table in %T", s)
	return nil
}

package store

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sidekey/sidekey/config"
)

// rawRedis returns a plain go-redis client for srv, closed at cleanup, to
// look at what the store really keeps.
func rawRedis(t *testing.T, srv *redisServer) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: srv.addr, Protocol: 2, DisableIdentity: true})
	t.Cleanup(func() { c.Close() })
	return c
}

// openSealedRedisT opens cfg with Open, closed at cleanup, or fails the
// test.
func openSealedRedisT(t *testing.T, cfg config.Storage) Store {
	t.Helper()
	s, err := Open(cfg, nil)
	if err != nil {
		t.Fatalf("Open(type redis): %v", err)
	}
	return closeAtCleanup(t, s)
}

func TestRedisValuesAreSealed(t *testing.T) {
	const token = "at-5c2e-PLAINTEXT-ACCESS-TOKEN"
	srv := startRedis(t)
	raw := rawRedis(t, srv)
	ctx := ctxT(t)

	// Control: the unsealed layer keeps the token as given, under {prefix}:kv:.
	plain := openRedisT(t, RedisOptions{Addr: srv.addr, Prefix: "control"})
	mustStore(t, plain, "tenants/acme/token", token)
	if v, err := raw.Get(ctx, "control:kv:tenants/acme/token").Result(); err != nil || v != token {
		t.Fatalf("control: raw GET: got %q, %v; want the token: the raw read proves nothing", v, err)
	}

	s := openSealedRedisT(t, srv.storage(t, 1))
	mustStore(t, s, "tenants/acme/token", token)
	v, err := raw.Get(ctx, "sidekey:kv:tenants/acme/token").Bytes()
	if err != nil {
		t.Fatalf("raw GET of the sealed value: %v", err)
	}
	if bytes.Contains(v, []byte(token)) || bytes.Contains(v, []byte("PLAINTEXT")) || len(v) < sealOverhead+len(token) {
		t.Errorf("Redis holds %d bytes %q; want a sealed value without the plaintext", len(v), v)
	}
	if got := mustLoad(t, s, "tenants/acme/token"); got != token {
		t.Errorf("Load: got %q; want the token", got)
	}
	if n, err := raw.Exists(ctx, "sidekey:meta:canary").Result(); err != nil || n != 1 {
		t.Errorf("canary at sidekey:meta:canary: EXISTS %d, %v; want 1", n, err)
	}
	if keys, err := s.List(ctx, ""); err != nil || !slices.Equal(keys, []string{"tenants/acme/token"}) {
		t.Errorf("List: got %q, %v; want only the stored key (no canary, no other prefix)", keys, err)
	}
}

func TestRedisWrongKey(t *testing.T) {
	srv := startRedis(t)
	raw := rawRedis(t, srv)
	cfgA, cfgB := srv.storage(t, 1), srv.storage(t, 2)
	a := openSealedRedisT(t, cfgA)
	mustStore(t, a, "tenants/acme/token", "v")

	s, err := Open(cfgB, nil)
	if !errors.Is(err, ErrWrongKey) || !strings.Contains(err.Error(), cfgB.KeyFile) {
		t.Fatalf("Open with another key: got %v, %v; want ErrWrongKey naming %s", s, err, cfgB.KeyFile)
	}

	// Without the canary, a stored value that does not open tells as well.
	if err := raw.Del(ctxT(t), "sidekey:meta:canary").Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(cfgB, nil); !errors.Is(err, ErrWrongKey) {
		t.Errorf("Open with another key, no canary: got %v; want ErrWrongKey", err)
	}
	if n, _ := raw.Exists(ctxT(t), "sidekey:meta:canary").Result(); n != 0 {
		t.Error("a refused Open wrote a canary")
	}
	// The right key still opens it, and writes the canary again.
	openSealedRedisT(t, cfgA)
	if n, _ := raw.Exists(ctxT(t), "sidekey:meta:canary").Result(); n != 1 {
		t.Error("Open with the right key wrote no canary")
	}

	// Another prefix is another store: any key opens it.
	cfgB.Redis.Prefix = "other"
	openSealedRedisT(t, cfgB)
}

func TestRedisOpenNeedsKeyFile(t *testing.T) {
	srv := startRedis(t)
	cfg := config.Storage{Type: "redis", Redis: config.Redis{Addr: srv.addr}}
	if _, err := Open(cfg, nil); err == nil || !strings.Contains(err.Error(), "storage.key_file") {
		t.Errorf("Open(type redis) without storage.key_file: got %v; want an error naming storage.key_file", err)
	}
	cfg.KeyFile = filepath.Join(t.TempDir(), "key")
	_, err := Open(cfg, nil)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), cfg.KeyFile) {
		t.Errorf("Open(type redis) with a missing key file: got %v; want fs.ErrNotExist naming it", err)
	}
	if _, err := os.Stat(cfg.KeyFile); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open(type redis) generated a key file: %v", err)
	}
}

func TestRedisOpenUnavailable(t *testing.T) {
	srv := startRedis(t)
	srv.kill() // nothing listens on its port now
	start := time.Now()
	_, err := OpenRedis(srv.options())
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), srv.addr) {
		t.Errorf("OpenRedis with no server: got %v; want ErrUnavailable naming %s", err, srv.addr)
	}
	if _, err := Open(srv.storage(t, 1), nil); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Open(type redis) with no server: got %v; want ErrUnavailable", err)
	}
	if d := time.Since(start); d > redisDialTimeout+time.Second {
		t.Errorf("failing to open took %v; want at most about the dial timeout %v", d, redisDialTimeout)
	}
}

func TestRedisPassword(t *testing.T) {
	const password = "pw-3f9a-SECRET"
	srv := startRedis(t, "--requirepass", password)
	passwordFile := filepath.Join(t.TempDir(), "redis-password")
	writeFile(t, passwordFile, []byte(password+"\n"), 0o600)

	s := openRedisT(t, RedisOptions{Addr: srv.addr, PasswordFile: passwordFile})
	mustStore(t, s, "k", "v")
	s2 := openRedisT(t, RedisOptions{Addr: srv.addr, Password: password})
	if got := mustLoad(t, s2, "k"); got != "v" {
		t.Errorf("Load with the password: got %q; want %q", got, "v")
	}

	_, err := OpenRedis(RedisOptions{Addr: srv.addr, Password: "wrong-" + password})
	if err == nil || strings.Contains(err.Error(), password) {
		t.Errorf("OpenRedis with a wrong password: got %v; want an error that does not show the password", err)
	}
	if _, err := OpenRedis(srv.options()); err == nil {
		t.Error("OpenRedis without the password: got nil; want an error")
	}
}

func TestRedisPrefixesAndPatterns(t *testing.T) {
	srv := startRedis(t)
	a := openRedisT(t, RedisOptions{Addr: srv.addr, Prefix: "app-a"})
	b := openRedisT(t, RedisOptions{Addr: srv.addr, Prefix: "app-a:b"})
	for _, k := range []string{"x*y", "x[1]", "x?", "xy", `x\y`} {
		mustStore(t, a, k, "v")
	}
	mustStore(t, b, "z", "v")
	var listTests = []struct {
		prefix string   // List prefix
		want   []string // keys of store a
	}{
		{"x*", []string{"x*y"}},
		{"x[", []string{"x[1]"}},
		{"x?", []string{"x?"}},
		{`x\`, []string{`x\y`}},
		{"x", []string{"x*y", "x?", "x[1]", `x\y`, "xy"}},
	}
	for _, tt := range listTests {
		got, err := a.List(ctxT(t), tt.prefix)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("List(%q): got %q, %v; want %q", tt.prefix, got, err, tt.want)
		}
	}
	if got, err := b.List(ctxT(t), ""); err != nil || !slices.Equal(got, []string{"z"}) {
		t.Errorf("List of the second prefix: got %q, %v; want only its own key", got, err)
	}
	for _, bad := range []string{"has space", "app-a:kv:x", "app-a:kv", "lock", "x:meta:y"} {
		if _, err := OpenRedis(RedisOptions{Addr: srv.addr, Prefix: bad}); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("OpenRedis with prefix %q: got %v; want an error naming it", bad, err)
		}
	}
}

func TestRedisDownAndBack(t *testing.T) {
	srv := startPersistentRedis(t)
	s := openSealedRedisT(t, srv.storage(t, 1))
	mustStore(t, s, "tenants/acme/token", "rt-1")
	mustStore(t, s, "tenants/acme/state", "nonce")

	srv.stop()
	ctx := ctxT(t)
	start := time.Now()
	_, lockErr := s.Lock(ctx, "locks/tokens/acme")
	lockTook := time.Since(start)
	_, loadErr := s.Load(ctx, "tenants/acme/token")
	_, takeErr := s.Take(ctx, "tenants/acme/state")
	_, listErr := s.List(ctx, "")
	_, casErr := s.CompareAndSwap(ctx, "tenants/acme/token", []byte("rt-1"), []byte("rt-2"))
	_, casNilErr := s.CompareAndSwap(ctx, "tenants/new/token", nil, []byte("rt-1"))
	_, watchErr := s.(Watcher).Watch(ctx, "")
	errs := map[string]error{
		"Lock":                lockErr,
		"Load":                loadErr,
		"Store":               s.Store(ctx, "tenants/acme/token", []byte("rt-2")),
		"Delete":              s.Delete(ctx, "tenants/acme/token"),
		"Take":                takeErr,
		"List":                listErr,
		"CompareAndSwap":      casErr,
		"CompareAndSwap(nil)": casNilErr,
		"Ping":                s.Ping(ctx),
		"Watch":               watchErr,
	}
	for method, err := range errs {
		if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), srv.addr) {
			t.Errorf("%s with Redis down: got %v; want ErrUnavailable naming %s", method, err, srv.addr)
		}
	}
	if lockTook > redisDialTimeout+500*time.Millisecond {
		t.Errorf("Lock with Redis down took %v; want it to fail within about the dial timeout %v", lockTook, redisDialTimeout)
	}

	srv.restart()
	waitPing(t, s)
	if got := mustLoad(t, s, "tenants/acme/token"); got != "rt-1" {
		t.Errorf("Load after the restart: got %q; want %q (kept in the append-only file)", got, "rt-1")
	}
	if ok, err := s.CompareAndSwap(ctx, "tenants/acme/token", []byte("rt-1"), []byte("rt-2")); !ok || err != nil {
		t.Errorf("CompareAndSwap after the restart: got %v, %v; want true, nil", ok, err)
	}
	unlock, err := s.Lock(ctx, "locks/tokens/acme")
	if err != nil {
		t.Fatalf("Lock after the restart: %v", err)
	}
	unlock()
}

// waitPing waits until s answers Ping, failing the test after 10 s.
func waitPing(t *testing.T, s Store) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := s.Ping(ctxT(t))
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the store did not answer Ping within 10 s of the restart: %v", err)
		}
		time.Sleep(20 * time.Millisecond) // polling Ping, with a deadline
	}
}

package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	mathrand "math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sidekey/sidekey/config"
	"github.com/sidekey/sidekey/store"
)

// cliEnv makes the test binary act as the sidekey command with the
// arguments it holds (separated by \x1f), so the store commands run as
// real processes that a test can kill. It is read in init, before any
// test runs.
const cliEnv = "SIDEKEY_TEST_CLI"

func init() {
	if args := os.Getenv(cliEnv); args != "" {
		if err := run(context.Background(), strings.Split(args, "\x1f"), os.Stdout, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, "sidekey:", err)
			os.Exit(exitCode(err))
		}
		os.Exit(0)
	}
}

// cliCommand returns the test binary set up as `sidekey args...`.
func cliCommand(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), cliEnv+"="+strings.Join(args, "\x1f"))
	return cmd
}

// runCLI runs `sidekey args...` as a process and returns its exit code and
// output.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := cliCommand(args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	done := time.AfterFunc(60*time.Second, func() { _ = cmd.Process.Kill() })
	defer done.Stop()
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatalf("running sidekey %q: %v", args, err)
	}
	return code, out.String(), errOut.String()
}

// mustCLI runs `sidekey args...` and fails the test unless it exits 0.
func mustCLI(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errOut := runCLI(t, args...)
	if code != 0 {
		t.Fatalf("sidekey %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// newKeyFile writes a random 32-byte key to dir/name (mode 0600).
func newKeyFile(t *testing.T, dir, name string) string {
	t.Helper()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, key, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// getShop GETs the shop's API through the sidekey at base.
func getShop(t *testing.T, base string) (int, string) {
	t.Helper()
	resp, err := http.Get(base + "/shop/v1/echo/basket")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// storeSetup is a config file serving a shop from a store, and the way to
// write the same config with another key file.
type storeSetup struct {
	dir, addr string
	shop      *shop
	storage   func(keyFile string) string // the storage section for a key file
	cfg       string                      // the config file
	logs      *syncBuffer
}

// config writes the config (under name) with keyFile and returns its path.
func (s *storeSetup) config(t *testing.T, name, keyFile string) string {
	return sidekeyConfig{Listen: s.addr, Storage: s.storage(keyFile), Top: "log: {level: info, access_log: false}\n"}.
		write(t, s.dir, name, s.shop)
}

// serve starts sidekey serve with the config at path.
func (s *storeSetup) serve(t *testing.T, path string) *child {
	return startChild(t, path, s.addr, s.logs)
}

// newStoreSetup prepares a shop (tokens living an hour, so none is
// refreshed during the test) and a config whose storage section storage
// makes, with a first key file.
func newStoreSetup(t *testing.T, storage func(dir, keyFile string) string) (*storeSetup, string) {
	t.Helper()
	dir := t.TempDir()
	s := &storeSetup{dir: dir, addr: freeAddr(t), shop: newShop(t, "ops", time.Hour), logs: &syncBuffer{}}
	s.storage = func(keyFile string) string { return storage(dir, keyFile) }
	key := newKeyFile(t, dir, "key-a")
	s.cfg = s.config(t, "sidekey.yaml", key)
	return s, key
}

// storeKinds are the store kinds the end-to-end tests run over: each
// returns the storage section for a directory and key file.
var storeKinds = []struct {
	name    string
	storage func(t *testing.T) func(dir, keyFile string) string
}{
	{
		name: "file",
		storage: func(t *testing.T) func(dir, keyFile string) string {
			return func(dir, keyFile string) string {
				return fmt.Sprintf("{type: file, path: %s, key_file: %s}", filepath.Join(dir, "data"), keyFile)
			}
		},
	},
	{
		name: "redis",
		storage: func(t *testing.T) func(dir, keyFile string) string {
			r := startRedis(t)
			return func(dir, keyFile string) string {
				return fmt.Sprintf("{type: redis, key_file: %s, redis: {addr: %s, prefix: ops}}", keyFile, r.addr)
			}
		},
	},
}

// flushRedis empties the redis server the config at path names.
func flushRedis(t *testing.T, cfgPath string) {
	t.Helper()
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(&redis.Options{Addr: cfg.Storage.Redis.Addr})
	defer c.Close()
	if err := c.FlushAll(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
}

// TestStoreBackupRestoreEndToEnd backs a connected tenant's store up while
// sidekey serves, loses the store, restores it, and the tenant answers
// again without a new consent.
func TestStoreBackupRestoreEndToEnd(t *testing.T) {
	for _, kind := range storeKinds {
		t.Run(kind.name, func(t *testing.T) {
			s, _ := newStoreSetup(t, kind.storage(t))
			c := s.serve(t, s.cfg)
			connectShop(t, c.base)
			if code, body := getShop(t, c.base); code != 200 {
				t.Fatalf("before the backup: %d %s", code, body)
			}
			consents := s.shop.sim.RefreshRequests()

			backup := filepath.Join(s.dir, "backups", "sidekey.backup")
			if err := os.MkdirAll(filepath.Dir(backup), 0o700); err != nil {
				t.Fatal(err)
			}
			out := mustCLI(t, "store", "backup", "--config", s.cfg, "--out", backup) // while sidekey serves
			if !strings.Contains(out, "backed up ") || !strings.Contains(out, backup) {
				t.Errorf("backup printed %q", out)
			}
			st, err := os.Stat(backup)
			if err != nil || st.Mode().Perm() != 0o600 {
				t.Fatalf("the backup file: %v, %v; want mode 0600", st, err)
			}
			raw, _ := os.ReadFile(backup)
			if bytes.Contains(raw, []byte(s.shop.secret)) || bytes.Contains(raw, []byte(`"refresh_token"`)) {
				t.Error("the backup holds a secret in clear")
			}
			c.kill()

			if kind.name == "file" {
				if err := os.RemoveAll(filepath.Join(s.dir, "data")); err != nil {
					t.Fatal(err)
				}
			} else {
				flushRedis(t, s.cfg)
			}
			code, _, errOut := runCLI(t, "store", "backup", "--config", s.cfg, "--out", filepath.Join(s.dir, "nothing"))
			if code == 0 {
				t.Error("a backup of the lost store succeeded")
			} else if kind.name == "file" && !strings.Contains(errOut, "no file store at") {
				t.Errorf("backup of a lost file store: %s", errOut)
			}
			out = mustCLI(t, "store", "restore", "--config", s.cfg, "--in", backup)
			if !strings.Contains(out, "restored ") {
				t.Errorf("restore printed %q", out)
			}
			code, _, errOut = runCLI(t, "store", "restore", "--config", s.cfg, "--in", backup)
			if code != 1 || !strings.Contains(errOut, "without --force") {
				t.Errorf("a second restore: exit %d, %s; want a refusal naming --force", code, errOut)
			}

			c = s.serve(t, s.cfg)
			if code, body := getShop(t, c.base); code != 200 {
				t.Fatalf("after the restore: %d %s; want 200 without a new consent", code, body)
			}
			if n := s.shop.sim.RefreshReuse(); n != 0 {
				t.Errorf("%d refresh tokens used twice", n)
			}
			if s.shop.sim.RefreshRequests() < consents {
				t.Error("the simulator's counters went back")
			}
			c.kill()
		})
	}
}

// TestStoreRekeyEndToEnd re-keys a stopped sidekey's store: the old key is
// refused with a message that says so, the new key serves the tenant.
func TestStoreRekeyEndToEnd(t *testing.T) {
	for _, kind := range storeKinds {
		t.Run(kind.name, func(t *testing.T) {
			s, _ := newStoreSetup(t, kind.storage(t))
			c := s.serve(t, s.cfg)
			connectShop(t, c.base)
			c.kill()

			code, _, errOut := runCLI(t, "store", "rekey", "--config", s.cfg)
			if code != 2 || !strings.Contains(errOut, "--new-key-file") {
				t.Errorf("rekey without --new-key-file: exit %d, %s; want a usage error naming it", code, errOut)
			}
			newKey := filepath.Join(s.dir, "secrets", "key-b") // absent: generated
			out := mustCLI(t, "store", "rekey", "--config", s.cfg, "--new-key-file", newKey)
			if !strings.Contains(out, "generated a new key in "+newKey) || !strings.Contains(out, "now set storage.key_file to "+newKey) {
				t.Errorf("rekey printed %q", out)
			}

			code, _, errOut = runCLI(t, "serve", "--config", s.cfg)
			if code != 1 || !strings.Contains(errOut, "store was re-keyed; key_file ") || !strings.Contains(errOut, "does not open it") {
				t.Fatalf("serve with the old key: exit %d\n%s\nwant a refusal saying the store was re-keyed", code, errOut)
			}
			c = s.serve(t, s.config(t, "sidekey-new.yaml", newKey))
			if code, body := getShop(t, c.base); code != 200 {
				t.Fatalf("with the new key: %d %s", code, body)
			}
			c.kill()
		})
	}
}

// TestStoreRekeyKill9NeverLosesTheStore kills `sidekey store rekey` with
// SIGKILL at random moments, 20 times, over a store of 2000 values: after
// every kill exactly one of the two keys opens the store, and it opens
// every value.
func TestStoreRekeyKill9NeverLosesTheStore(t *testing.T) {
	const values = 2000
	r := startRedis(t)
	for _, kind := range []string{"file", "redis"} {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			keys := [2]string{newKeyFile(t, dir, "key-a"), newKeyFile(t, dir, "key-b")}
			storage := func(keyFile string) config.Storage {
				if kind == "file" {
					return config.Storage{Type: "file", Path: filepath.Join(dir, "data"), KeyFile: keyFile}
				}
				return config.Storage{Type: "redis", KeyFile: keyFile, Redis: config.Redis{Addr: r.addr, Prefix: "kill-" + kind}}
			}
			fillStore(t, storage(keys[0]), r.addr, values)
			cfgs := [2]string{writeStorageConfig(t, dir, "a.yaml", storage(keys[0])), writeStorageConfig(t, dir, "b.yaml", storage(keys[1]))}

			// One rekey to see how long its work takes, from its log line
			// "re-sealing every value" to its exit; the kills land in that
			// span and a little beyond.
			span := max(rekeyUntilKilled(t, cfgs[0], keys[1], -1)*3/2, time.Millisecond)
			current := 1
			completed := 0
			for round := range 20 {
				finished := rekeyUntilKilled(t, cfgs[current], keys[1-current], time.Duration(mathrand.Int64N(int64(span)))) >= 0
				if finished {
					completed++
				}
				opened := -1
				for i := range keys {
					if checkStore(t, storage(keys[i]), values) {
						if opened >= 0 {
							t.Fatalf("round %d: both keys open the store", round)
						}
						opened = i
					}
				}
				if opened < 0 {
					t.Fatalf("round %d: after a SIGKILL during rekey neither key opens the store", round)
				}
				if finished && opened != 1-current {
					t.Fatalf("round %d: the rekey finished but the store is not under the new key", round)
				}
				current = opened
			}
			t.Logf("%s: 20 rekeys killed at random moments up to %v into their work, %d ran to the end; the store always opened whole",
				kind, span, completed)
		})
	}
}

// rekeyUntilKilled runs `sidekey store rekey` from the config at cfg to
// newKey and sends it SIGKILL killAfter after it logged that it starts to
// re-seal (never, when killAfter is negative). It returns how long the
// rekey worked until it exited by itself, or -1 when the kill ended it.
func rekeyUntilKilled(t *testing.T, cfg, newKey string, killAfter time.Duration) time.Duration {
	t.Helper()
	cmd := cliCommand("store", "rekey", "--config", cfg, "--new-key-file", newKey)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	guard := time.AfterFunc(60*time.Second, func() { _ = cmd.Process.Kill() })
	defer guard.Stop()
	lines := bufio.NewScanner(stderr)
	var started time.Time
	for lines.Scan() {
		logs.WriteString(lines.Text() + "\n")
		if strings.Contains(lines.Text(), "re-sealing every value") {
			started = time.Now()
			break
		}
	}
	if started.IsZero() {
		_ = cmd.Wait()
		t.Fatalf("the rekey never started to re-seal:\n%s", logs.String())
	}
	if killAfter >= 0 {
		timer := time.AfterFunc(killAfter, func() { _ = cmd.Process.Kill() })
		defer timer.Stop()
	}
	_, _ = io.Copy(&logs, stderr)
	err = cmd.Wait()
	worked := time.Since(started)
	var exit *exec.ExitError
	if killAfter >= 0 && errors.As(err, &exit) && exit.ExitCode() == -1 { // ended by our SIGKILL
		return -1
	}
	if err != nil {
		t.Fatalf("the rekey failed: %v\n%s", err, logs.String())
	}
	return worked
}

// fillStore writes n values into the store storage names. A file store is
// filled through a redis store and a backup (n fsync'd commits would take
// a minute), which also exercises restoring across kinds.
func fillStore(t *testing.T, storage config.Storage, redisAddr string, n int) {
	t.Helper()
	src := storage
	if storage.Type == "file" {
		src = config.Storage{Type: "redis", KeyFile: storage.KeyFile, Redis: config.Redis{Addr: redisAddr, Prefix: "fill"}}
	}
	s, err := store.Open(src, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range n {
		if err := s.Store(ctx, fmt.Sprintf("tenants/t%05d/token", i), []byte(fmt.Sprintf("value-%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	if storage.Type != "file" {
		return
	}
	var buf bytes.Buffer
	if _, err := store.Backup(ctx, &buf, store.BackupOptions{Storage: src}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Restore(ctx, &buf, store.RestoreOptions{Storage: storage}); err != nil {
		t.Fatal(err)
	}
}

// checkStore reports whether storage's key opens the store; if it does,
// every one of the n values must be there and open.
func checkStore(t *testing.T, storage config.Storage, n int) bool {
	t.Helper()
	s, err := store.Open(storage, nil)
	if errors.Is(err, store.ErrWrongKey) {
		return false
	}
	if err != nil {
		t.Fatalf("opening the store with %s: %v", storage.KeyFile, err)
	}
	defer s.Close()
	ctx := context.Background()
	keys, err := s.List(ctx, "")
	if err != nil || len(keys) != n {
		t.Fatalf("the store holds %d values (%v); want %d", len(keys), err, n)
	}
	for i := range n {
		v, err := s.Load(ctx, fmt.Sprintf("tenants/t%05d/token", i))
		if err != nil || string(v) != fmt.Sprintf("value-%d", i) {
			t.Fatalf("value %d: %q, %v", i, v, err)
		}
	}
	return true
}

// writeStorageConfig writes a config file with only a storage section.
func writeStorageConfig(t *testing.T, dir, name string, s config.Storage) string {
	t.Helper()
	var body string
	if s.Type == "file" {
		body = fmt.Sprintf("storage: {type: file, path: %s, key_file: %s}\n", s.Path, s.KeyFile)
	} else {
		body = fmt.Sprintf("storage: {type: redis, key_file: %s, redis: {addr: %s, prefix: %s}}\n", s.KeyFile, s.Redis.Addr, s.Redis.Prefix)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestStoreCommandUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"store"}, 2, "store backup|restore|rekey"},
		{[]string{"store", "frob"}, 2, `unknown store command "frob"`},
		{[]string{"store", "backup", "--config", "x.yaml"}, 2, "store backup needs --out PATH"},
		{[]string{"store", "restore", "--config", "x.yaml"}, 2, "store restore needs --in PATH"},
		{[]string{"store", "backup", "--out", "b"}, 2, "--config FILE"},
	} {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), tc.args, &stdout, &stderr)
		if err == nil || exitCode(err) != tc.code || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("run(%q) = %v; want exit %d and %q", tc.args, err, tc.code, tc.want)
		}
	}
	var stdout bytes.Buffer
	if err := run(context.Background(), []string{"store", "--help"}, &stdout, io.Discard); err != nil || !strings.Contains(stdout.String(), "sidekey store rekey") {
		t.Errorf("store --help: %v, %q", err, stdout.String())
	}
	var stderr bytes.Buffer
	if err := run(context.Background(), []string{"store", "backup", "-h"}, io.Discard, &stderr); err != nil || !strings.Contains(stderr.String(), "-out path") {
		t.Errorf("store backup -h: %v, %q", err, stderr.String())
	}
	cfg := writeConfig(t, "storage: {type: memory}\n")
	err := run(context.Background(), []string{"store", "backup", "--config", cfg, "--out", filepath.Join(t.TempDir(), "b")}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), `storage.type "memory" keeps nothing durable`) {
		t.Errorf("backup of a memory store: %v", err)
	}
}

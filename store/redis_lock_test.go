package store

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// replicas opens n unsealed redis stores on srv with opts, as n sidekey
// processes would.
func replicas(t *testing.T, srv *redisServer, n int, opts RedisOptions) []Store {
	t.Helper()
	opts.Addr = srv.addr
	var out []Store
	for range n {
		out = append(out, openRedisT(t, opts))
	}
	return out
}

// lockWithin locks name on s, failing the test unless it succeeds within d.
func lockWithin(t *testing.T, s Store, name string, d time.Duration) func() {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctxT(t), d)
	defer cancel()
	unlock, err := s.Lock(ctx, name)
	if err != nil {
		t.Fatalf("Lock(%q) within %v: %v", name, d, err)
	}
	return unlock
}

// mustStayLocked fails the test if s acquires name within d.
func mustStayLocked(t *testing.T, s Store, name string, d time.Duration, why string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctxT(t), d)
	defer cancel()
	unlock, err := s.Lock(ctx, name)
	if err == nil {
		unlock()
		t.Fatalf("Lock(%q) succeeded while %s", name, why)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock(%q) while %s: got %v; want context.DeadlineExceeded", name, why, err)
	}
}

func TestRedisLockExcludesAcrossReplicas(t *testing.T) {
	const perReplica, rounds = 3, 25
	srv := startRedis(t)
	stores := replicas(t, srv, 3, RedisOptions{})
	var (
		counter  atomic.Int64 // read, yield, write: a second holder inside loses an increment
		inside   atomic.Int32 // holders right now, across replicas
		overlaps atomic.Int32
	)
	var wg sync.WaitGroup
	errs := make(chan error, len(stores)*perReplica)
	for _, s := range stores {
		for range perReplica {
			wg.Go(func() {
				for range rounds {
					unlock, err := s.Lock(ctxT(t), "locks/tokens/acme")
					if err != nil {
						errs <- err
						return
					}
					if inside.Add(1) != 1 {
						overlaps.Add(1)
					}
					v := counter.Load()
					runtime.Gosched()
					counter.Store(v + 1)
					inside.Add(-1)
					unlock()
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if want := int64(len(stores) * perReplica * rounds); counter.Load() != want || overlaps.Load() != 0 {
		t.Errorf("counter %d, %d overlapping holders; want %d, 0", counter.Load(), overlaps.Load(), want)
	}
	if n, err := rawRedis(t, srv).Exists(ctxT(t), "sidekey:lock:locks/tokens/acme").Result(); err != nil || n != 0 {
		t.Errorf("lease key after every unlock: EXISTS %d, %v; want 0", n, err)
	}
}

func TestRedisStaleUnlockKeepsNewOwner(t *testing.T) {
	const name = "locks/tokens/acme"
	srv := startRedis(t)
	raw := rawRedis(t, srv)
	// a never renews its 300 ms lease, as if it had stalled.
	a := openRedisT(t, RedisOptions{Addr: srv.addr, LockTTL: 300 * time.Millisecond, renewEvery: -1})
	b, c := openRedisT(t, srv.options()), openRedisT(t, srv.options())

	staleUnlock := lockWithin(t, a, name, 5*time.Second)
	unlockB := lockWithin(t, b, name, 5*time.Second) // once a's lease has run out
	owner, err := raw.Get(ctxT(t), "sidekey:lock:"+name).Result()
	if err != nil {
		t.Fatal(err)
	}
	staleUnlock() // must not free b's lock
	if now, err := raw.Get(ctxT(t), "sidekey:lock:"+name).Result(); err != nil || now != owner {
		t.Fatalf("after a stale unlock the lease is %q, %v; want b's %q", now, err, owner)
	}
	mustStayLocked(t, c, name, 200*time.Millisecond, "b holds it after a's stale unlock")
	unlockB()
	lockWithin(t, c, name, time.Second)()
}

func TestRedisLostLeaseIsLogged(t *testing.T) {
	const name = "locks/tokens/acme"
	srv := startRedis(t)
	raw := rawRedis(t, srv)
	core, logs := observer.New(zap.WarnLevel)
	a := openRedisT(t, RedisOptions{Addr: srv.addr, LockTTL: 300 * time.Millisecond, Logger: zap.New(core)})
	b := openRedisT(t, srv.options())

	staleUnlock := lockWithin(t, a, name, time.Second)
	if err := raw.Del(ctxT(t), "sidekey:lock:"+name).Err(); err != nil { // as if Redis lost it
		t.Fatal(err)
	}
	unlockB := lockWithin(t, b, name, time.Second)
	defer unlockB()
	deadline := time.Now().Add(5 * time.Second)
	for logs.FilterMessageSnippet("lost a lock lease").Len() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no warning about the lost lease within 5 s; logged: %v", logs.All())
		}
		time.Sleep(10 * time.Millisecond) // polling the log, with a deadline
	}
	entry := logs.FilterMessageSnippet("lost a lock lease").All()[0]
	if got := entry.ContextMap()["lock"]; got != name {
		t.Errorf("the warning names lock %v; want %q", got, name)
	}
	staleUnlock()
	mustStayLocked(t, a, name, 200*time.Millisecond, "b took over a lost lease")
}

func TestRedisLockRenewedWhileHeld(t *testing.T) {
	const ttl = 300 * time.Millisecond
	srv := startRedis(t)
	stores := replicas(t, srv, 2, RedisOptions{LockTTL: ttl})
	unlock := lockWithin(t, stores[0], "locks/tokens/acme", time.Second)
	mustStayLocked(t, stores[1], "locks/tokens/acme", 4*ttl, "the holder renews its lease")
	pttl, err := rawRedis(t, srv).PTTL(ctxT(t), "sidekey:lock:locks/tokens/acme").Result()
	if err != nil || pttl <= 0 || pttl > ttl {
		t.Errorf("lease time left: %v, %v; want within (0, %v]", pttl, err, ttl)
	}
	unlock()
	lockWithin(t, stores[1], "locks/tokens/acme", time.Second)()
}

// Environment of TestHelperRedisLocker, set only in the child.
const (
	lockerAddrEnv = "SIDEKEY_STORE_LOCKER_ADDR" // the redis server
	lockerTTL     = time.Second                 // the child's lease
)

// TestHelperRedisLocker is the child process of
// TestRedisLockFreedAfterHolderKilled, not a test of its own: it takes a
// lock on the redis server at $SIDEKEY_STORE_LOCKER_ADDR, prints "locked"
// and keeps the lease until it is killed or its stdin closes.
func TestHelperRedisLocker(t *testing.T) {
	addr := os.Getenv(lockerAddrEnv)
	if addr == "" {
		t.Skip("child process of TestRedisLockFreedAfterHolderKilled")
	}
	s, err := OpenRedis(RedisOptions{Addr: addr, LockTTL: lockerTTL})
	if err == nil {
		_, err = s.Lock(context.Background(), "locks/tokens/acme")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fmt.Println("locked")
	bufio.NewReader(os.Stdin).ReadString('\n') // until the parent goes away
	os.Exit(3)
}

func TestRedisLockFreedAfterHolderKilled(t *testing.T) {
	srv := startRedis(t)
	s := openRedisT(t, srv.options())

	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperRedisLocker$", "-test.count=1")
	cmd.Env = append(os.Environ(), lockerAddrEnv+"="+srv.addr)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		stdin.Close()
		cmd.Wait()
	})
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() || lines.Text() != "locked" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("the child did not lock: %q; stderr:\n%s", lines.Text(), stderr.String())
	}

	mustStayLocked(t, s, "locks/tokens/acme", 1500*time.Millisecond, "the child holds and renews it")
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	killed := time.Now()
	unlock := lockWithin(t, s, "locks/tokens/acme", 5*time.Second)
	defer unlock()
	freed := time.Since(killed)
	// The child renewed every third of its lease, so at least two thirds
	// were left when it died, and at most all of it.
	if freed < lockerTTL/3 || freed > lockerTTL+time.Second {
		t.Errorf("the killed holder's lock freed after %v; want about its lease, %v", freed, lockerTTL)
	}
}

func TestRedisLockUnavailableIsNotHeld(t *testing.T) {
	const name = "locks/tokens/acme"
	srv := startRedis(t)
	core, logs := observer.New(zap.WarnLevel)
	holder := openRedisT(t, RedisOptions{Addr: srv.addr, LockTTL: 600 * time.Millisecond, Logger: zap.New(core)})
	waiter := openRedisT(t, srv.options())

	unlockHolder := lockWithin(t, holder, name, time.Second)
	waited := make(chan error, 1)
	go func() {
		unlock, err := waiter.Lock(context.Background(), name) // no deadline: only Redis going away ends it
		if unlock != nil {
			unlock()
		}
		waited <- err
	}()
	mustStayLocked(t, waiter, "locks/tokens/acme", 100*time.Millisecond, "another replica holds it")

	srv.kill()
	stopped := time.Now()
	select {
	case err := <-waited:
		if !errors.Is(err, ErrUnavailable) {
			t.Errorf("waiting Lock when Redis went away: got %v; want ErrUnavailable", err)
		}
		if d := time.Since(stopped); d > redisDialTimeout+time.Second {
			t.Errorf("the waiting Lock noticed Redis was gone after %v; want within about the dial timeout", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a Lock waiting on a held lock kept waiting after Redis went away")
	}

	srv.restart() // empty: the holder's lease is gone with the old process
	waitPing(t, waiter)
	lockWithin(t, waiter, name, 5*time.Second)()
	deadline := time.Now().Add(5 * time.Second)
	for logs.FilterMessageSnippet("lost a lock lease").Len() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the holder did not report its lost lease within 5 s; logged: %v", logs.All())
		}
		time.Sleep(10 * time.Millisecond) // polling the log, with a deadline
	}
	unlockHolder() // stale: harmless
}

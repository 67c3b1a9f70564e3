package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sidekey/sidekey/config"
)

func TestRedisWaitForReplicas(t *testing.T) {
	primary := startPrimary(t)
	replica := startReplica(t, primary)
	keyFile := filepath.Join(t.TempDir(), "key")
	writeFile(t, keyFile, testKey(1), 0o600)
	acks := 1
	s := openSealedRedisT(t, config.Storage{Type: "redis", KeyFile: keyFile,
		Redis: config.Redis{Addr: primary.addr, MinReplicasAck: &acks}})
	ctx := ctxT(t)
	mustStore(t, s, "tokens/acme", "rt-1")

	replica.pause()
	start := time.Now()
	swapped, err := s.CompareAndSwap(ctx, "tokens/acme", []byte("rt-1"), []byte("rt-2"))
	took := time.Since(start)
	if swapped || !errors.Is(err, ErrNotReplicated) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("CompareAndSwap with the replica paused: got %v, %v; want ErrNotReplicated (and ErrUnavailable)", swapped, err)
	}
	if took > defaultAckTimeout+2*time.Second {
		t.Errorf("CompareAndSwap with the replica paused returned after %v; want about the ack timeout %v", took, defaultAckTimeout)
	}
	if err := s.Store(ctx, "tokens/other", []byte("x")); !errors.Is(err, ErrNotReplicated) {
		t.Errorf("Store with the replica paused: got %v; want ErrNotReplicated", err)
	}
	if unlock, err := s.Lock(ctx, "locks/tokens/acme"); !errors.Is(err, ErrNotReplicated) {
		if err == nil {
			unlock()
		}
		t.Errorf("Lock with the replica paused: got %v; want ErrNotReplicated (a lease the replicas do not hold)", err)
	}

	// The caller retries the same swap once the replica is back: the
	// primary already holds rt-2, and the retry reports the swap only once
	// the replica acknowledged it.
	replica.resume()
	if swapped, err := s.CompareAndSwap(ctx, "tokens/acme", []byte("rt-1"), []byte("rt-2")); !swapped || err != nil {
		t.Fatalf("retried CompareAndSwap with the replica back: got %v, %v; want true, nil", swapped, err)
	}
	// The refused lease was given back: the lock is free at once.
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	unlock, err := s.Lock(short, "locks/tokens/acme")
	if err != nil {
		t.Fatalf("Lock with the replica back: %v", err)
	}
	unlock()
	replicaStore := openSealedRedisT(t, config.Storage{Type: "redis", KeyFile: keyFile, Redis: config.Redis{Addr: replica.addr}})
	if got := mustLoad(t, replicaStore, "tokens/acme"); got != "rt-2" {
		t.Errorf("the replica holds %q; want rt-2", got)
	}
	// A retry never overwrites what someone else stored since.
	if swapped, err := s.CompareAndSwap(ctx, "tokens/acme", []byte("rt-1"), []byte("rt-9")); swapped || err != nil {
		t.Errorf("CompareAndSwap from a stale value: got %v, %v; want false, nil", swapped, err)
	}
}

func TestRedisSentinelFailover(t *testing.T) {
	primary := startPrimary(t)
	replicas := []*redisServer{startReplica(t, primary), startReplica(t, primary)}
	sentinels := startSentinels(t, primary, 3, len(replicas))
	keyFile := filepath.Join(t.TempDir(), "key")
	writeFile(t, keyFile, testKey(1), 0o600)
	cfg := config.Storage{Type: "redis", KeyFile: keyFile, Redis: config.Redis{
		Sentinel: &config.RedisSentinel{Master: haMaster, Addrs: addrs(sentinels)}}}
	s := openSealedRedisT(t, cfg)
	watcher := openSealedRedisT(t, cfg)
	ctx := ctxT(t)

	changes, err := watcher.(Watcher).Watch(ctx, "tokens/")
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}

	w := startRotator(t, s, "tokens/acme")
	waitForRedis(t, "writes before the failover", func(context.Context) bool { return w.acked() >= 20 })
	before := w.acked()
	primary.kill()
	killed := time.Now()
	waitForRedis(t, "writes to resume after the promotion", func(context.Context) bool { return w.acked() >= before+20 })
	last, failed, maxGap := w.stop()
	if err := s.Ping(ctx); err != nil {
		t.Errorf("Ping after the failover: %v", err)
	}
	t.Logf("sentinel failover: %d writes acknowledged, %d failed and retried; longest gap between acknowledged writes %v (primary killed %v before writes resumed)",
		last, failed, maxGap.Round(time.Millisecond), time.Since(killed).Round(time.Millisecond))
	if got, err := strconv.Atoi(mustLoad(t, s, "tokens/acme")); err != nil || got != last {
		t.Errorf("after the failover the store holds %d (%v); want the last acknowledged write %d: an acknowledged write was lost", got, err, last)
	}

	// Change notifications follow the new primary.
	drain(changes)
	mustStore(t, s, "tokens/after", "x")
	waitForRedis(t, "a change notification from the new primary", func(context.Context) bool {
		for {
			select {
			case k := <-changes:
				if k == "tokens/after" {
					return true
				}
			default:
				return false
			}
		}
	})
}

// drain empties a change channel without blocking.
func drain(c <-chan string) {
	for {
		select {
		case <-c:
		default:
			return
		}
	}
}

func TestRedisCluster(t *testing.T) {
	nodes := startCluster(t, 3)
	keyFile := filepath.Join(t.TempDir(), "key")
	writeFile(t, keyFile, testKey(1), 0o600)
	noAcks := 0 // three masters without replicas
	cfg := config.Storage{Type: "redis", KeyFile: keyFile, Redis: config.Redis{
		Cluster: &config.RedisCluster{Addrs: addrs(nodes[:1])}, MinReplicasAck: &noAcks}}
	a, b := openSealedRedisT(t, cfg), openSealedRedisT(t, cfg)
	ctx := ctxT(t)

	changes, err := b.(Watcher).Watch(ctx, "tenants/")
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	// Enough keys to land on every master.
	var keys []string
	for i := range 12 {
		keys = append(keys, fmt.Sprintf("tenants/t%02d/token", i))
	}
	for _, k := range keys {
		if swapped, err := a.CompareAndSwap(ctx, k, nil, []byte("rt-1")); !swapped || err != nil {
			t.Fatalf("CompareAndSwap(%q) creating: got %v, %v", k, swapped, err)
		}
		if swapped, err := a.CompareAndSwap(ctx, k, []byte("rt-1"), []byte("rt-2")); !swapped || err != nil {
			t.Fatalf("CompareAndSwap(%q): got %v, %v", k, swapped, err)
		}
	}
	perNode := 0
	for _, n := range nodes {
		if size, _ := rawRedis(t, n).DBSize(ctx).Result(); size > 0 {
			perNode++
		}
	}
	if perNode != len(nodes) {
		t.Errorf("keys landed on %d of %d masters; the test wants them spread", perNode, len(nodes))
	}
	if got, err := b.List(ctx, "tenants/"); err != nil || !slices.Equal(got, keys) {
		t.Errorf("List across the masters: got %q, %v; want %q", got, err, keys)
	}
	seen := map[string]bool{}
	waitForRedis(t, "a change notification for every key", func(context.Context) bool {
		for {
			select {
			case k := <-changes:
				seen[k] = true
			default:
				return len(seen) >= len(keys)
			}
		}
	})
	if v, err := b.Take(ctx, keys[3]); err != nil || string(v) != "rt-2" {
		t.Errorf("Take: got %q, %v; want rt-2", v, err)
	}

	// The lock is one across stores.
	unlock, err := a.Lock(ctx, "locks/tenants/t01")
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if _, err := b.Lock(short, "locks/tenants/t01"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Lock held by another store: got %v; want context.DeadlineExceeded", err)
	}
	unlock()
	unlockB, err := b.Lock(ctx, "locks/tenants/t01")
	if err != nil {
		t.Fatalf("Lock after unlock: %v", err)
	}
	unlockB()
	if err := a.Ping(ctx); err != nil {
		t.Errorf("Ping: %v", err)
	}
	// Whole-store operations need every key on one node: refused, clearly.
	var out bytes.Buffer
	if _, err := Backup(ctx, &out, BackupOptions{Storage: cfg}); err == nil || !strings.Contains(err.Error(), "not supported yet") {
		t.Errorf("Backup of a cluster store: %v; want a clear refusal", err)
	}
	if out.Len() != 0 {
		t.Errorf("Backup of a cluster store wrote %d bytes; want none", out.Len())
	}
}

func TestRedisWarnsWhenTooFewReplicas(t *testing.T) {
	srv := startPrimary(t)
	log, logs := observed()
	openRedisT(t, RedisOptions{Addr: srv.addr, MinReplicasAck: 1, Logger: log})
	if n := logs.FilterMessageSnippet("fewer replicas than min_replicas_ack").Len(); n != 1 {
		t.Errorf("opening with min_replicas_ack 1 and no replica: %d warnings; want 1", n)
	}
	startReplica(t, srv)
	log, logs = observed()
	openRedisT(t, RedisOptions{Addr: srv.addr, MinReplicasAck: 1, Logger: log})
	if n := logs.FilterMessageSnippet("fewer replicas").Len(); n != 0 {
		t.Errorf("opening with min_replicas_ack 1 and a replica: %d warnings; want none", n)
	}
}

// A store written before sentinel and cluster existed — values at
// {prefix}:kv:{key}, the canary at {prefix}:meta:canary — opens and serves
// unchanged.
func TestRedisOpensAStoreOfThePreviousLayout(t *testing.T) {
	srv := startRedis(t)
	raw := rawRedis(t, srv)
	ctx := ctxT(t)
	sl, err := newSealer(testKey(1))
	if err != nil {
		t.Fatal(err)
	}
	// What the previous version wrote, byte for byte.
	if err := raw.Set(ctx, "sidekey:meta:"+canaryRecord, sl.seal(canaryName, []byte(canaryValue)), 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := raw.Set(ctx, "sidekey:kv:tokens/acme", sl.seal("tokens/acme", []byte("rt-1")), 0).Err(); err != nil {
		t.Fatal(err)
	}
	s := openSealedRedisT(t, srv.storage(t, 1))
	if got := mustLoad(t, s, "tokens/acme"); got != "rt-1" {
		t.Errorf("Load of the previous version's value: got %q; want rt-1", got)
	}
	if swapped, err := s.CompareAndSwap(ctx, "tokens/acme", []byte("rt-1"), []byte("rt-2")); !swapped || err != nil {
		t.Errorf("CompareAndSwap on the previous version's value: got %v, %v; want true, nil", swapped, err)
	}
	if keys, err := s.List(ctx, ""); err != nil || !slices.Equal(keys, []string{"tokens/acme"}) {
		t.Errorf("List: got %q, %v; want [tokens/acme]", keys, err)
	}
}

// rotator rotates a counter under one key as a token engine rotates
// refresh tokens: CompareAndSwap from what it stored last, retrying a
// failed write with the same value until it is acknowledged.
type rotator struct {
	mu        sync.Mutex
	last      int           // guarded by mu: the last value acknowledged
	failed    int           // guarded by mu: writes that returned an error
	maxGap    time.Duration // guarded by mu: longest time between acknowledged writes
	lastAcked time.Time     // guarded by mu
	halt      chan struct{}
	done      chan struct{}
}

// startRotator stores 0 under key and starts rotating it every 10 ms.
func startRotator(t *testing.T, s Store, key string) *rotator {
	t.Helper()
	mustStore(t, s, key, "0")
	w := &rotator{lastAcked: time.Now(), halt: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for n := 1; ; {
			select {
			case <-w.halt:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			swapped, err := s.CompareAndSwap(ctx, key, []byte(strconv.Itoa(n-1)), []byte(strconv.Itoa(n)))
			cancel()
			w.mu.Lock()
			switch {
			case err != nil:
				w.failed++
			case !swapped:
				w.failed++
				t.Errorf("write %d: the stored value moved under the only writer", n)
			default:
				now := time.Now()
				w.maxGap = max(w.maxGap, now.Sub(w.lastAcked))
				w.last, w.lastAcked = n, now
				n++
			}
			w.mu.Unlock()
			time.Sleep(10 * time.Millisecond) // the traffic's pace, not a wait for a condition
		}
	}()
	return w
}

// acked returns the last value acknowledged.
func (w *rotator) acked() int { w.mu.Lock(); defer w.mu.Unlock(); return w.last }

// stop ends the rotation and returns the last acknowledged value, the
// failed writes and the longest gap between acknowledged writes.
func (w *rotator) stop() (last, failed int, maxGap time.Duration) {
	close(w.halt)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last, w.failed, w.maxGap
}

func TestRedisClusterFailover(t *testing.T) {
	nodes := startClusterReplicas(t, 3, 1)
	keyFile := filepath.Join(t.TempDir(), "key")
	writeFile(t, keyFile, testKey(1), 0o600)
	noAcks := 0 // a promoted master has no replica left to acknowledge
	s := openSealedRedisT(t, config.Storage{Type: "redis", KeyFile: keyFile, Redis: config.Redis{
		Cluster: &config.RedisCluster{Addrs: addrs(nodes)}, MinReplicasAck: &noAcks}})
	ctx := ctxT(t)

	// The master holding the key, found the way the store finds it.
	probe := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs(nodes), DisableIdentity: true})
	t.Cleanup(func() { probe.Close() })
	master, err := probe.MasterForKey(ctx, "sidekey:kv:tokens/acme")
	if err != nil {
		t.Fatal(err)
	}
	var victim *redisServer
	for _, n := range nodes {
		if n.addr == master.Options().Addr {
			victim = n
		}
	}
	if victim == nil {
		t.Fatalf("no node at %s", master.Options().Addr)
	}
	waitForRedis(t, "the master's replica in sync", func(ctx context.Context) bool {
		info, err := rawRedis(t, victim).Info(ctx, "replication").Result()
		return err == nil && strings.Contains(info, "connected_slaves:1") && strings.Contains(info, ",state=online,")
	})

	w := startRotator(t, s, "tokens/acme")
	waitForRedis(t, "writes before the failover", func(context.Context) bool { return w.acked() >= 20 })
	before := w.acked()
	victim.kill()
	killed := time.Now()
	waitForRedis(t, "writes to resume after the replica took over", func(context.Context) bool { return w.acked() >= before+20 })
	last, failed, maxGap := w.stop()
	t.Logf("cluster failover: %d writes acknowledged, %d failed and retried; longest gap between acknowledged writes %v (master killed %v before writes resumed)",
		last, failed, maxGap.Round(time.Millisecond), time.Since(killed).Round(time.Millisecond))
	if got, err := strconv.Atoi(mustLoad(t, s, "tokens/acme")); err != nil || got != last {
		t.Errorf("after the failover the store holds %d (%v); want the last acknowledged write %d", got, err, last)
	}
}

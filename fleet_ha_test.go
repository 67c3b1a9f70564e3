package main

import (
	"bufio"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sidekey/sidekey/internal/testwait"
)

// haNode is one redis-server process of a sentinel or cluster topology,
// started by the test on a free loopback port and killed by PID at its end.
type haNode struct {
	addr string
	cmd  *exec.Cmd
}

// startNode starts redis-server with first (a config file goes first)
// and args, and waits until it answers PING.
func startNode(t *testing.T, first []string, args ...string) *haNode {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal("redis-server is not installed: `make test` installs it (apt-get install redis-server)")
	}
	addr := freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	dir := t.TempDir() // a full sync to a replica writes an RDB file here
	all := append(append(append([]string{}, first...), "--port", port, "--bind", "127.0.0.1", "--save", "",
		"--dir", dir, "--logfile", filepath.Join(dir, "redis.log")), args...)
	n := &haNode{addr: addr, cmd: exec.Command("redis-server", all...)}
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.kill)
	testwait.For(t, "redis-server on "+addr, func() bool { return redisSays(addr, "PING") == "+PONG" })
	return n
}

// kill sends SIGKILL to the node's PID and reaps it; again is harmless.
func (n *haNode) kill() {
	if n.cmd.ProcessState == nil {
		_ = n.cmd.Process.Kill()
		_ = n.cmd.Wait()
	}
}

// redisSays sends one inline command to addr and returns the first line
// of the answer ("" when it cannot).
func redisSays(addr, command string) string {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return ""
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte(command + "\r\n")); err != nil {
		return ""
	}
	r := bufio.NewReader(c)
	line, _ := r.ReadString('\n')
	line = strings.TrimSpace(line)
	if strings.HasPrefix(line, "$") { // a bulk string: return all of it
		var b strings.Builder
		for {
			l, err := r.ReadString('\n')
			b.WriteString(l)
			if err != nil || strings.TrimSpace(l) == "" {
				break
			}
		}
		return b.String()
	}
	return line
}

// startSentinelSet starts a primary, two replicas and three sentinels
// (quorum 2, down after 1 s) and returns the primary and the sentinels'
// addresses once the sentinels know all of them.
func startSentinelSet(t *testing.T) (primary *haNode, sentinels []string) {
	t.Helper()
	primary = startNode(t, nil)
	host, port, _ := net.SplitHostPort(primary.addr)
	for range 2 {
		r := startNode(t, nil, "--replicaof", host, port)
		testwait.For(t, "a replica in sync", func() bool {
			return strings.Contains(redisSays(r.addr, "INFO replication"), "master_link_status:up")
		})
	}
	for range 3 {
		conf := filepath.Join(t.TempDir(), "sentinel.conf")
		text := fmt.Sprintf("sentinel monitor mymaster %s %s 2\nsentinel down-after-milliseconds mymaster 1000\n"+
			"sentinel failover-timeout mymaster 10000\n", host, port)
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		sentinels = append(sentinels, startNode(t, []string{conf, "--sentinel"}).addr)
	}
	for _, s := range sentinels {
		testwait.For(t, "the sentinels to know the replicas and each other", func() bool {
			info := redisSays(s, "INFO sentinel")
			return strings.Contains(info, "slaves=2,sentinels=3")
		})
	}
	return primary, sentinels
}

// startClusterSet starts three cluster masters and joins them.
func startClusterSet(t *testing.T) []string {
	t.Helper()
	var addrs []string
	for range 3 {
		_, busPort, _ := net.SplitHostPort(freeAddr(t))
		n := startNode(t, nil, "--cluster-enabled", "yes", "--cluster-port", busPort,
			"--cluster-config-file", filepath.Join(t.TempDir(), "nodes.conf"), "--cluster-node-timeout", "2000")
		addrs = append(addrs, n.addr)
	}
	out, err := exec.Command("redis-cli", append(append([]string{"--cluster", "create"}, addrs...), "--cluster-yes")...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, a := range addrs {
		testwait.For(t, "cluster_state:ok on "+a, func() bool { return strings.Contains(redisSays(a, "CLUSTER INFO"), "cluster_state:ok") })
	}
	return addrs
}

// fleetRun is the outcome of traffic through a fleet.
type fleetRun struct {
	total, failed int64
	firstFailure  string
	maxLatency    time.Duration
}

// fleetFiles makes a directory for a fleet's config files with a shared
// store key in it, and the buffer its replicas log into: shown when the
// test fails, and checked to hold none of secrets when it ends.
func fleetFiles(t *testing.T, secrets ...string) (dir, keyFile string, logs *syncBuffer) {
	t.Helper()
	dir = t.TempDir()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	keyFile = filepath.Join(dir, "store.key")
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		t.Fatal(err)
	}
	logs = &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("replicas' logs:\n%s", logs.String())
		}
		for _, secret := range secrets {
			if strings.Contains(logs.String(), secret) {
				t.Error("a secret reached a replica's log")
			}
		}
	})
	return dir, keyFile, logs
}

// runFleet starts one sidekey per storage section over shop, connects the
// shop through the first, and sends traffic from 2 workers per replica
// until d has passed, calling during once, at half time, in the middle.
func runFleet(t *testing.T, s *shop, storages []string, d time.Duration, during func(replicas []*child)) fleetRun {
	t.Helper()
	dir, keyFile, logs := fleetFiles(t, s.secret, s.shopSecret)
	var replicas []*child
	for i, st := range storages {
		addr := freeAddr(t)
		path := sidekeyConfig{Listen: addr, Storage: strings.ReplaceAll(st, "KEYFILE", keyFile),
			Top: "log: {level: info, access_log: false}\n"}.write(t, dir, fmt.Sprintf("replica-%d.yaml", i), s)
		replicas = append(replicas, startChild(t, path, addr, logs))
	}
	connectShop(t, replicas[0].base)

	var total, failed, maxLatency atomic.Int64
	var firstFailure atomic.Value
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 10 * time.Second}
	for w := range 2 * len(replicas) {
		base := replicas[w%len(replicas)].base
		wg.Go(func() {
			for time.Now().Before(deadline) {
				start := time.Now()
				resp, err := client.Get(base + "/shop/v1/echo/basket")
				total.Add(1)
				if err != nil {
					failed.Add(1)
					firstFailure.CompareAndSwap(nil, err.Error())
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				took := int64(time.Since(start))
				for cur := maxLatency.Load(); took > cur && !maxLatency.CompareAndSwap(cur, took); cur = maxLatency.Load() {
				}
				if resp.StatusCode != 200 {
					failed.Add(1)
					firstFailure.CompareAndSwap(nil, fmt.Sprintf("%s: %d %s", base, resp.StatusCode, b))
				}
			}
		})
	}
	timer := time.NewTimer(d / 2)
	<-timer.C
	during(replicas)
	wg.Wait()
	run := fleetRun{total: total.Load(), failed: failed.Load(), maxLatency: time.Duration(maxLatency.Load())}
	if f, ok := firstFailure.Load().(string); ok {
		run.firstFailure = f
	}
	return run
}

// TestFleetSentinelFailover runs two sidekey processes on a Sentinel set
// (primary, two replicas, three sentinels; min_replicas_ack 1 by default)
// with a SCAYLE tenant of 6-second tokens and rotating refresh tokens, and
// kills the primary with SIGKILL in the middle of 24 s of traffic: no
// request fails, no refresh token is used twice, rotation goes on after
// the promotion and readyz recovers.
func TestFleetSentinelFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("24 s of traffic; run without -short")
	}
	primary, sentinels := startSentinelSet(t)
	s := newShop(t, "sentinel", 6*time.Second)
	storage := fmt.Sprintf(`{type: redis, key_file: KEYFILE, redis: {prefix: fleet, sentinel: {master: mymaster, addrs: [%s]}}}`,
		strings.Join(sentinels, ", "))
	var refreshesAtKill int64
	var killed time.Time
	run := runFleet(t, s, []string{storage, storage}, 24*time.Second, func(replicas []*child) {
		refreshesAtKill = s.sim.RefreshRequests()
		killed = time.Now()
		primary.kill()
		for _, r := range replicas {
			testwait.For(t, "readyz to recover after the promotion", func() bool {
				resp, err := http.Get(r.base + "/_sidekey/readyz")
				if err != nil {
					return false
				}
				resp.Body.Close()
				return resp.StatusCode == 200
			})
		}
		t.Logf("readyz recovered %v after the primary was killed", time.Since(killed).Round(time.Millisecond))
	})
	refreshes := s.sim.RefreshRequests()
	t.Logf("sentinel: %d requests over 2 replicas, %d failed, max latency %v, %d refreshes (%d after the kill), %d refresh-token reuses",
		run.total, run.failed, run.maxLatency.Round(time.Millisecond), refreshes, refreshes-refreshesAtKill, s.sim.RefreshReuse())
	if run.failed != 0 {
		t.Errorf("%d of %d requests failed; first: %s", run.failed, run.total, run.firstFailure)
	}
	if s.sim.RefreshReuse() != 0 {
		t.Errorf("refresh tokens reused %d times; want 0", s.sim.RefreshReuse())
	}
	if refreshes-refreshesAtKill < 2 {
		t.Errorf("%d refreshes after the promotion; want rotation to go on (12 s of 6-second tokens)", refreshes-refreshesAtKill)
	}
}

// TestFleetCluster runs three sidekey processes on a three-master Redis
// Cluster with a SCAYLE tenant of 2-second tokens and rotating refresh
// tokens for 12 s: no request fails, no refresh token is used twice, and
// the fleet refreshes about once per half-life, not once per replica.
func TestFleetCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("12 s of traffic; run without -short")
	}
	nodes := startClusterSet(t)
	s := newShop(t, "cluster", 2*time.Second)
	storage := fmt.Sprintf(`{type: redis, key_file: KEYFILE, redis: {prefix: fleet, cluster: {addrs: [%s]}, min_replicas_ack: 0}}`,
		strings.Join(nodes, ", "))
	run := runFleet(t, s, []string{storage, storage, storage}, 12*time.Second, func([]*child) {})
	refreshes := s.sim.RefreshRequests()
	t.Logf("cluster: %d requests over 3 replicas, %d failed, max latency %v, %d refreshes fleet-wide, %d refresh-token reuses",
		run.total, run.failed, run.maxLatency.Round(time.Millisecond), refreshes, s.sim.RefreshReuse())
	if run.failed != 0 {
		t.Errorf("%d of %d requests failed; first: %s", run.failed, run.total, run.firstFailure)
	}
	if s.sim.RefreshReuse() != 0 {
		t.Errorf("refresh tokens reused %d times; want 0", s.sim.RefreshReuse())
	}
	// 12 s of 2-second tokens refreshed at half-life: about 12 fleet-wide;
	// one refresh per replica would be about 36.
	if refreshes < 5 || refreshes > 20 {
		t.Errorf("%d refreshes fleet-wide; want about 12", refreshes)
	}
}

// TestFleetRotationWaitsForTheReplica runs sidekey on a primary with one
// replica and min_replicas_ack: 1, with a SCAYLE tenant of 12-second tokens
// (refreshed at 6 s) and rotating refresh tokens, and stops the replica
// (SIGSTOP) for 4 s across a due refresh: no token obtained while only the
// primary could hold it is used (the refresh lease itself waits for the
// replica, so the refresh waits), requests go on with the previous token,
// and once the replica is back the rotation happens and its token is used —
// no request fails and no refresh token is used twice.
func TestFleetRotationWaitsForTheReplica(t *testing.T) {
	if testing.Short() {
		t.Skip("40 s of traffic; run without -short")
	}
	primary := startNode(t, nil)
	host, port, _ := net.SplitHostPort(primary.addr)
	replica := startNode(t, nil, "--replicaof", host, port)
	testwait.For(t, "the replica in sync", func() bool {
		return strings.Contains(redisSays(replica.addr, "INFO replication"), "master_link_status:up")
	})
	s := newShop(t, "wait", 12*time.Second)
	storage := fmt.Sprintf(`{type: redis, key_file: KEYFILE, redis: {addr: "%s", min_replicas_ack: 1}}`, primary.addr)
	var refreshesWhileStopped int64
	// Traffic runs 40 s; the stop starts at 20 s and needs at most 6+3+4+4 s.
	run := runFleet(t, s, []string{storage}, 40*time.Second, func([]*child) {
		// Line up with the token's life: a refresh has just happened, so the
		// next is due 6 s later and the current token lives 12 s.
		before := s.sim.RefreshRequests()
		testwait.For(t, "a refresh", func() bool { return s.sim.RefreshRequests() > before && s.sim.LatestTokenUsed() })
		phase := time.NewTimer(3 * time.Second) // stop the replica 3 s before the next refresh is due
		<-phase.C
		if err := replica.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		resumed := false
		resume := func() {
			if !resumed {
				_ = replica.cmd.Process.Signal(syscall.SIGCONT)
				resumed = true
			}
		}
		defer resume()
		stopped := s.sim.RefreshRequests()
		until := time.Now().Add(4 * time.Second) // across the due refresh, within the token's life
		for time.Now().Before(until) {
			if s.sim.RefreshRequests() > stopped && s.sim.LatestTokenUsed() {
				t.Error("a token obtained while the replica was stopped was used before the replica acknowledged it")
				break
			}
			time.Sleep(10 * time.Millisecond) // polling interval over a fixed observation window
		}
		refreshesWhileStopped = s.sim.RefreshRequests() - stopped
		resume()
		testwait.For(t, "a rotation, and its token in use, once the replica is back", func() bool {
			return s.sim.RefreshRequests() > stopped && s.sim.LatestTokenUsed()
		})
	})
	t.Logf("replica stopped 4 s across a due refresh: %d requests, %d failed, max latency %v, %d refreshes (%d while stopped), %d refresh-token reuses",
		run.total, run.failed, run.maxLatency.Round(time.Millisecond), s.sim.RefreshRequests(), refreshesWhileStopped, s.sim.RefreshReuse())
	if run.failed != 0 {
		t.Errorf("%d of %d requests failed; first: %s", run.failed, run.total, run.firstFailure)
	}
	if s.sim.RefreshReuse() != 0 {
		t.Errorf("refresh tokens reused %d times; want 0", s.sim.RefreshReuse())
	}
}

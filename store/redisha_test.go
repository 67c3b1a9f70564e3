package store

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sidekey/sidekey/internal/testwait"
)

// Highly available Redis topologies for tests, all real processes on
// 127.0.0.1, each stopped by its PID when the test ends.

// freePort returns a loopback port nobody listens on right now.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}

// launchRedisArgs starts redis-server with args before the usual port,
// bind and log arguments (a config file must come first), on a free port.
func launchRedisArgs(t *testing.T, first []string, args ...string) *redisServer {
	t.Helper()
	var lastErr error
	for range 3 {
		port := freePort(t)
		s := &redisServer{t: t, addr: "127.0.0.1:" + port, log: filepath.Join(t.TempDir(), "redis.log")}
		s.args = append(append(append([]string{}, first...), "--port", port, "--bind", "127.0.0.1", "--logfile", s.log), args...)
		if lastErr = s.start(); lastErr == nil {
			t.Cleanup(s.kill)
			return s
		}
	}
	t.Fatalf("starting redis-server: %v", lastErr)
	return nil
}

// startPrimary starts a server that replicas may sync from: its own
// directory, since a full sync writes an RDB file there.
func startPrimary(t *testing.T) *redisServer {
	t.Helper()
	return startRedis(t, "--dir", t.TempDir())
}

// startReplica starts a replica of primary (which startPrimary started),
// in its own directory.
func startReplica(t *testing.T, primary *redisServer) *redisServer {
	t.Helper()
	host, port, _ := net.SplitHostPort(primary.addr)
	s := startRedis(t, "--replicaof", host, port, "--dir", t.TempDir())
	c := rawRedis(t, s)
	waitForRedis(t, "the replica to sync with its primary", func(ctx context.Context) bool {
		info, err := c.Info(ctx, "replication").Result()
		return err == nil && strings.Contains(info, "master_link_status:up")
	})
	return s
}

// haMaster is the name the test sentinels monitor.
const haMaster = "mymaster"

// startSentinels starts n sentinels monitoring primary as haMaster with a
// quorum of 2, declaring it down after 1 s of silence, and waits until
// each knows the replicas.
func startSentinels(t *testing.T, primary *redisServer, n, replicas int) []*redisServer {
	t.Helper()
	host, port, _ := net.SplitHostPort(primary.addr)
	var out []*redisServer
	for range n {
		conf := filepath.Join(t.TempDir(), "sentinel.conf") // sentinel rewrites it: one each, writable
		text := fmt.Sprintf("sentinel monitor %s %s %s 2\n"+
			"sentinel down-after-milliseconds %[1]s 1000\n"+
			"sentinel failover-timeout %[1]s 10000\n"+
			"sentinel parallel-syncs %[1]s 1\n", haMaster, host, port)
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		out = append(out, launchRedisArgs(t, []string{conf, "--sentinel"}, "--dir", t.TempDir()))
	}
	for _, s := range out {
		c := rawRedis(t, s)
		waitForRedis(t, "the sentinels to know every replica and each other", func(ctx context.Context) bool {
			m, err := c.Do(ctx, "SENTINEL", "MASTER", haMaster).Result()
			return err == nil && fieldIs(m, "num-slaves", fmt.Sprint(replicas)) && fieldIs(m, "num-other-sentinels", fmt.Sprint(n-1))
		})
	}
	return out
}

// fieldIs reports whether a SENTINEL MASTER answer (a flat list or a map)
// has name = want.
func fieldIs(reply any, name, want string) bool {
	switch r := reply.(type) {
	case []any:
		for i := 0; i+1 < len(r); i += 2 {
			if fmt.Sprint(r[i]) == name {
				return fmt.Sprint(r[i+1]) == want
			}
		}
	case map[any]any:
		return fmt.Sprint(r[name]) == want
	}
	return false
}

// addrs returns the servers' addresses.
func addrs(servers []*redisServer) []string {
	var out []string
	for _, s := range servers {
		out = append(out, s.addr)
	}
	return out
}

// startCluster starts n cluster-enabled servers (their bus on another free
// port), joins them as n masters with redis-cli --cluster create, and
// waits until every node reports cluster_state:ok.
func startCluster(t *testing.T, n int) []*redisServer {
	t.Helper()
	return startClusterReplicas(t, n, 0)
}

// startClusterReplicas is startCluster with replicas replicas per master:
// the first n nodes returned are the masters.
func startClusterReplicas(t *testing.T, n, replicas int) []*redisServer {
	t.Helper()
	var nodes []*redisServer
	for range n * (1 + replicas) {
		nodes = append(nodes, startRedis(t, "--dir", t.TempDir(), "--cluster-enabled", "yes", "--cluster-port", freePort(t),
			"--cluster-config-file", filepath.Join(t.TempDir(), "nodes.conf"), "--cluster-node-timeout", "2000"))
	}
	args := append([]string{"--cluster", "create"}, addrs(nodes)...)
	out, err := exec.Command("redis-cli", append(args, "--cluster-replicas", fmt.Sprint(replicas), "--cluster-yes")...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, s := range nodes {
		c := rawRedis(t, s)
		waitForRedis(t, "the cluster to be ok on "+s.addr, func(ctx context.Context) bool {
			info, err := c.ClusterInfo(ctx).Result()
			return err == nil && strings.Contains(info, "cluster_state:ok")
		})
	}
	return nodes
}

// pause stops the server's process (SIGSTOP): it neither answers nor
// acknowledges replication until resume.
func (s *redisServer) pause() {
	s.t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(s.resume) // never leave a stopped process behind
}

// resume continues a paused server (SIGCONT). Calling it again is harmless.
func (s *redisServer) resume() { s.cmd.Process.Signal(syscall.SIGCONT) }

// waitForRedis polls cond, each call with its own short deadline, until it
// holds or 30 s pass (a failover takes longer than testwait.Timeout).
func waitForRedis(t *testing.T, what string, cond func(ctx context.Context) bool) {
	t.Helper()
	testwait.Within(t, 30*time.Second, what, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return cond(ctx)
	})
}

package main

import (
	"fmt"
	"io"
	"net"
	"os/exec"
	"testing"
	"time"
)

// redisServer is a real redis-server on a loopback port, with an
// append-only file so a restart keeps its data.
type redisServer struct {
	t    *testing.T
	addr string
	dir  string
	cmd  *exec.Cmd
}

func startRedis(t *testing.T) *redisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal("redis-server is not installed: `make test` installs it (apt-get install redis-server)")
	}
	r := &redisServer{t: t, addr: freeAddr(t), dir: t.TempDir()}
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *redisServer) start() {
	_, port, _ := net.SplitHostPort(r.addr)
	r.cmd = exec.Command("redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "",
		"--appendonly", "yes", "--appendfsync", "always", "--dir", r.dir)
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.Dial("tcp", r.addr); err == nil {
			_, _ = c.Write([]byte("PING\r\n"))
			buf := make([]byte, 7)
			_ = c.SetReadDeadline(time.Now().Add(time.Second))
			n, _ := io.ReadFull(c, buf)
			c.Close()
			if string(buf[:n]) == "+PONG\r\n" {
				return
			}
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("redis-server on %s did not answer PING", r.addr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (r *redisServer) stop() {
	if r.cmd != nil && r.cmd.Process != nil {
		_ = r.cmd.Process.Kill()
		_ = r.cmd.Wait()
		r.cmd = nil
	}
}

// TestFleetSharesOneTokenThroughRedis runs three sidekey processes over one
// Redis with a SCAYLE tenant (2-second tokens, rotating refresh tokens), and
// spreads 15 s of traffic over all three while Redis is restarted once:
// every request succeeds, no refresh token is used twice, and the fleet
// refreshes about once per token half-life, not once per replica.
func TestFleetSharesOneTokenThroughRedis(t *testing.T) {
	if testing.Short() {
		t.Skip("15 s of traffic; run without -short")
	}
	redis := startRedis(t)
	shop := newShop(t, "fleet", 2*time.Second)
	sc := shop.sim
	storage := fmt.Sprintf(`{type: redis, key_file: KEYFILE, redis: {addr: "%s", prefix: fleet}}`, redis.addr)
	// Restart Redis in the middle of the run; the cached tokens carry the
	// fleet across the gap.
	run := runFleet(t, shop, []string{storage, storage, storage}, 15*time.Second, func([]*child) {
		redis.stop()
		redis.start()
	})

	refreshes := sc.RefreshRequests()
	t.Logf("%d requests over 3 replicas, %d failed, %d refreshes fleet-wide, %d refresh-token reuses", run.total, run.failed, refreshes, sc.RefreshReuse())
	if run.failed != 0 {
		t.Errorf("%d of %d requests failed; first: %v", run.failed, run.total, run.firstFailure)
	}
	if sc.RefreshReuse() != 0 {
		t.Errorf("refresh tokens reused %d times; want 0", sc.RefreshReuse())
	}
	// 15 s of 2-second tokens refreshed at half-life: about 15 fleet-wide;
	// one refresh per replica would be about 45.
	if refreshes < 7 || refreshes > 24 {
		t.Errorf("%d refreshes fleet-wide; want about 15", refreshes)
	}
}

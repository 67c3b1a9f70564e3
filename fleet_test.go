package main

import (
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
	dir := t.TempDir()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	keyFile := filepath.Join(dir, "store.key")
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	var replicas []*child
	for i := range 3 {
		addr := freeAddr(t)
		path := sidekeyConfig{Listen: addr,
			Storage: fmt.Sprintf(`{type: redis, key_file: %s, redis: {addr: "%s", prefix: fleet}}`, keyFile, redis.addr),
			Top:     "log: {level: info, access_log: false}\n"}.write(t, dir, fmt.Sprintf("replica-%d.yaml", i), shop)
		replicas = append(replicas, startChild(t, path, addr, logs))
	}
	connectShop(t, replicas[0].base)

	var total, failed atomic.Int64
	var firstFailure atomic.Value
	deadline := time.Now().Add(15 * time.Second)
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 5 * time.Second}
	for w := range 6 {
		base := replicas[w%3].base
		wg.Go(func() {
			for time.Now().Before(deadline) {
				resp, err := client.Get(base + "/shop/v1/echo/basket")
				total.Add(1)
				if err != nil {
					failed.Add(1)
					firstFailure.CompareAndSwap(nil, err.Error())
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
					firstFailure.CompareAndSwap(nil, fmt.Sprintf("%s: %d %s", base, resp.StatusCode, b))
				}
			}
		})
	}
	// Restart Redis in the middle of the run; the cached tokens carry the
	// fleet across the gap.
	timer := time.NewTimer(7 * time.Second)
	<-timer.C
	redis.stop()
	redis.start()
	wg.Wait()

	refreshes := sc.RefreshRequests()
	t.Logf("%d requests over 3 replicas, %d failed, %d refreshes fleet-wide, %d refresh-token reuses", total.Load(), failed.Load(), refreshes, sc.RefreshReuse())
	if failed.Load() != 0 {
		t.Errorf("%d of %d requests failed; first: %v", failed.Load(), total.Load(), firstFailure.Load())
	}
	if sc.RefreshReuse() != 0 {
		t.Errorf("refresh tokens reused %d times; want 0", sc.RefreshReuse())
	}
	// 15 s of 2-second tokens refreshed at half-life: about 15 fleet-wide;
	// one refresh per replica would be about 45.
	if refreshes < 7 || refreshes > 24 {
		t.Errorf("%d refreshes fleet-wide; want about 15", refreshes)
	}
	if strings.Contains(logs.String(), shop.secret) || strings.Contains(logs.String(), shop.shopSecret) {
		t.Error("a secret reached a replica's log")
	}
}

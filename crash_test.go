package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sidekey/sidekey/internal/testwait"
)

// TestMain lets the test binary act as `sidekey serve` in a child process,
// so crash tests can kill -9 a real sidekey.
func TestMain(m *testing.M) {
	if path := os.Getenv("SIDEKEY_TEST_SERVE"); path != "" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM) // as main does
		defer stop()
		if err := run(ctx, []string{"serve", "--config", path}, os.Stdout, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, "sidekey:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// child is a sidekey serve process started from the test binary.
type child struct {
	cmd  *exec.Cmd
	base string
}

func startChild(t *testing.T, configPath, addr string, logs io.Writer) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "SIDEKEY_TEST_SERVE="+configPath)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, base: "http://" + addr}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(c.base + "/_sidekey/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return c
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("child sidekey not ready at %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill ends the child with SIGKILL: no shutdown, no flush.
func (c *child) kill() {
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	_ = c.cmd.Wait()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// syncBuffer collects the children's logs for the leak scan.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestKill9DuringRotationLosesNothing runs SCAYLE (3-second tokens, rotating
// refresh tokens) through a real sidekey process for 10 s of traffic and
// kills it with SIGKILL at random moments, restarting it over the same file
// store each time. Every answer sidekey gives is a 200, no refresh token is
// ever used twice, and no new consent is needed; secrets never reach its
// logs or its store file in plain text.
//
// One window no client can close is kept out of the kills: after the
// platform has rotated the refresh token and before its answer reaches the
// store. Before each kill the simulator holds new token requests short of
// the grant (a held request of the killed process is dropped unprocessed,
// as if the crash came before it arrived) and the test waits until the
// token issued last has been used at the API — which sidekey does only
// once the token is stored. Kills still land before a refresh is sent,
// while one is held at the platform, and just after one was stored.
// TestSIGTERMDuringRefreshStoresTheRotatedToken covers the graceful stop in
// that window.
func TestKill9DuringRotationLosesNothing(t *testing.T) {
	shop := newShop(t, "kill9", 3*time.Second)
	sc, secret, shopSecret := shop.sim, shop.secret, shop.shopSecret
	p := startShop(t, shop, "log: {level: debug, access_log: false}\n", "")
	c, logs := p.child, p.logs

	base := c.base // the same address across restarts
	var answered, failed atomic.Int64
	var firstFailure atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 5 * time.Second}
	for range 3 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := client.Get(base + "/shop/v1/echo/basket")
				if err != nil {
					continue // the process is down: no answer is no failure
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				answered.Add(1)
				if resp.StatusCode != 200 {
					failed.Add(1)
					firstFailure.CompareAndSwap(nil, fmt.Sprintf("%d %s", resp.StatusCode, b))
				}
			}
		})
	}
	kills := 0
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		wait := time.Duration(500+rand.IntN(2000)) * time.Millisecond
		timer := time.NewTimer(wait)
		<-timer.C
		release := sc.HoldTokenRequests()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		stored := sc.WaitLatestTokenUsed(ctx)
		cancel()
		if !stored {
			release()
			t.Fatal("the token issued last was not used within 10 s: sidekey did not store it, or does not serve")
		}
		c.kill()
		kills++
		testwait.For(t, "the killed process's held token request to be dropped", func() bool { return sc.TokenRequestsHeld() == 0 })
		release()
		p.restart(t)
		c = p.child
	}
	close(stop)
	wg.Wait()
	t.Logf("%d kills, %d answers, %d refreshes, %d reuses", kills, answered.Load(), sc.RefreshRequests(), sc.RefreshReuse())
	if failed.Load() != 0 {
		t.Errorf("%d of %d answers were not 200; first: %v", failed.Load(), answered.Load(), firstFailure.Load())
	}
	if sc.RefreshReuse() != 0 {
		t.Errorf("a refresh token was used twice (%d times)", sc.RefreshReuse())
	}
	if answered.Load() < 100 {
		t.Errorf("only %d answers; the test did not exercise sidekey", answered.Load())
	}
	c.kill()

	// Nothing secret in the logs (debug level) or in the store file.
	db, err := os.ReadFile(filepath.Join(p.store, "sidekey.db"))
	if err != nil {
		t.Fatal(err)
	}
	lastToken := strings.TrimPrefix(sc.LastAPIRequest().Header.Get("Authorization"), "Bearer ")
	if lastToken == "" {
		t.Fatal("the simulator saw no token")
	}
	for _, s := range []string{secret, shopSecret, lastToken, `"refresh_token":"`, `"access_token":"`} {
		for _, line := range strings.Split(logs.String(), "\n") {
			if strings.Contains(line, s) {
				t.Errorf("%q appears in sidekey's logs: %.300s", s, line)
				break
			}
		}
		if strings.Contains(string(db), s) {
			t.Errorf("%q appears in the store file in plain text", s)
		}
	}
}

// TestSIGTERMDuringRefreshStoresTheRotatedToken stops sidekey with SIGTERM
// (as Kubernetes does on every rollout) while SCAYLE has rotated the refresh
// token and its answer is still on the way: sidekey waits for the answer,
// stores it, exits 0, and after a restart serves with the new refresh token
// — none is used twice, no consent is needed.
func TestSIGTERMDuringRefreshStoresTheRotatedToken(t *testing.T) {
	shop := newShop(t, "term", 2*time.Second)
	sc := shop.sim
	p := startShop(t, shop, "shutdown_timeout: 20s\nlog: {level: info, access_log: false}\n", "")
	c, logs := p.child, p.logs
	getOK := func(c *child) {
		t.Helper()
		resp, err := http.Get(c.base + "/shop/v1/echo/basket")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("GET through sidekey: %d %s", resp.StatusCode, b)
		}
	}
	getOK(c)

	// From now on SCAYLE answers a refresh 3 s after rotating. Requests go
	// on until sidekey's refresh ahead (at half of the 2 s life) is there.
	sc.SetTokenResponseDelay(3 * time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for sc.LatestTokenUsed() {
		if time.Now().After(deadline) {
			t.Fatal("no refresh within 10 s")
		}
		getOK(c)
		time.Sleep(20 * time.Millisecond)
	}
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Wait(); err != nil {
		t.Fatalf("sidekey after SIGTERM: %v\n%s", err, logs.String())
	}
	if sc.LatestTokenUsed() {
		t.Fatal("the token of the pending refresh was used; the test did not stop sidekey mid-refresh")
	}

	sc.SetTokenResponseDelay(0)
	p.restart(t)
	c = p.child
	getOK(c)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if !sc.WaitLatestTokenUsed(ctx) {
		t.Error("the restarted sidekey never used the latest token")
	}
	if n := sc.RefreshReuse(); n != 0 {
		t.Errorf("a refresh token was used twice (%d times): the rotated one was lost at shutdown\n%s", n, logs.String())
	}
	c.kill()
}

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
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sidekey/sidekey/providers/providertest"
)

// TestMain lets the test binary act as `sidekey serve` in a child process,
// so crash tests can kill -9 a real sidekey.
func TestMain(m *testing.M) {
	if path := os.Getenv("SIDEKEY_TEST_SERVE"); path != "" {
		ctx, stop := context.WithCancel(context.Background())
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
func TestKill9DuringRotationLosesNothing(t *testing.T) {
	const shopSecret, secret = "shop-secret-kill9-test", "client-secret-kill9-test"
	sc := providertest.NewSCAYLE(providertest.SCAYLEOptions{
		SimOptions: providertest.SimOptions{ClientID: "kill9", ClientSecret: secret, TokenLifetime: 3 * time.Second},
		ShopID:     "1001", ShopSecret: shopSecret, IdpKey: "google",
	})
	defer sc.Close()
	dir := t.TempDir()
	addr := freeAddr(t)
	cfgPath := filepath.Join(dir, "sidekey.yaml")
	cfg := fmt.Sprintf(`listen: %s
storage: {type: file, path: %s}
log: {level: debug, access_log: false}
tenants:
  shop:
    provider: scayle
    tenant_space: acme
    shop_id: "1001"
    idp_key: google
    client_id: kill9
    client_secret: %s
    shop_secret: %s
    auth_url: %s
    token_url: %s
    api_url: %s
`, addr, filepath.Join(dir, "data"), secret, shopSecret, sc.AuthURL(), sc.TokenURL(), sc.APIURL())
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	c := startChild(t, cfgPath, addr, logs)
	resp, err := http.Get(c.base + "/_sidekey/oauth/connect/shop") // follows the simulator's consent to the callback
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("consent: %d", resp.StatusCode)
	}

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
		c.kill()
		kills++
		c = startChild(t, cfgPath, addr, logs)
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
	db, err := os.ReadFile(filepath.Join(dir, "data", "sidekey.db"))
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

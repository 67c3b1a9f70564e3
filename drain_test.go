package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sidekey/sidekey/internal/testwait"
)

// TestDrainDelayKeepsServingThroughSIGTERM: a client that keeps calling a
// real sidekey process through its SIGTERM sees no failure — readyz turns
// 503 first, and sidekey goes on serving for drain_delay, long enough for
// the client (a load balancer polling readyz) to stop sending.
func TestDrainDelayKeepsServingThroughSIGTERM(t *testing.T) {
	api := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer api.Close()
	addr := freeAddr(t)
	path := writeConfig(t, fmt.Sprintf(`listen: %s
storage: {type: memory}
drain_delay: 2s
tenants:
  api:
    provider: static
    token: drain-test-key
    api_url: %s
`, addr, api.URL))
	c := startChild(t, path, addr, io.Discard)
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	status := func(path string) (int, error) {
		resp, err := client.Get(c.base + path)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}

	var calls, failures atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // the caller: one request after another until told to stop
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			calls.Add(1)
			if code, err := status("/api/v1/x"); err != nil || code != 200 {
				failures.Add(1)
			}
		}
	}()
	testwait.For(t, "traffic to flow", func() bool { return calls.Load() >= 20 })

	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, "readyz to answer 503", func() bool {
		code, err := status("/_sidekey/readyz")
		return err == nil && code == http.StatusServiceUnavailable
	})
	// The load balancer has seen 503; it may send a little longer.
	after := calls.Load()
	testwait.For(t, "more calls after readyz turned 503", func() bool { return calls.Load() >= after+20 })
	close(stop)
	<-done
	if n := failures.Load(); n != 0 {
		t.Errorf("%d of %d calls failed through the SIGTERM; want 0", n, calls.Load())
	}
	if err := c.cmd.Wait(); err != nil {
		t.Errorf("sidekey exited with %v after SIGTERM; want 0", err)
	}
}

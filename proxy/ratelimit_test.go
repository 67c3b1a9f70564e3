package proxy_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sidekey/sidekey/config"
	"github.com/sidekey/sidekey/proxy"
)

// limitedRoute is staticRoute with a rate limit.
func limitedRoute(t *testing.T, apiURL string, rl proxy.RateLimit) *proxy.Route {
	t.Helper()
	return staticRoute(t, "acme", apiURL, config.Tenant{}, func(o *proxy.RouteOptions) { o.Limit = rl })
}

func TestRateLimitQueuesThenRefuses(t *testing.T) {
	up, got := recordingUpstream(t)
	const rps, burst, maxWait = 10, 2, 250 * time.Millisecond
	fe := frontend(t, proxy.Options{}, limitedRoute(t, up.URL, proxy.RateLimit{RPS: rps, Burst: burst, MaxWait: maxWait}))
	const n = 12
	start := time.Now()
	var wg sync.WaitGroup
	var ok, limited atomic.Int64
	var retryAfter atomic.Value
	for range n {
		wg.Go(func() {
			resp, err := http.Get(fe.URL + "/acme/v1/x")
			if err != nil {
				t.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			switch {
			case resp.StatusCode == 200:
				ok.Add(1)
			case resp.StatusCode == 429 && resp.Header.Get(proxy.ErrorHeader) == proxy.CodeRateLimited:
				limited.Add(1)
				retryAfter.Store(resp.Header.Get("Retry-After"))
			default:
				t.Errorf("status %d %q", resp.StatusCode, resp.Header.Get(proxy.ErrorHeader))
			}
		})
	}
	wg.Wait()
	// The bucket admits the burst, then rps per second of the time the
	// requests took to arrive plus the queue's max_wait; the rest are
	// refused. (Bounded by the elapsed time, so a slow machine that spreads
	// the requests out cannot fail the test.)
	elapsed := time.Since(start)
	most := burst + int64((elapsed+maxWait).Seconds()*rps) + 1
	if ok.Load() < burst || ok.Load() > most || limited.Load() != n-ok.Load() || (most < n && limited.Load() == 0) {
		t.Errorf("%d admitted, %d refused in %v; want %d to %d admitted and the rest refused", ok.Load(), limited.Load(), elapsed, burst, most)
	}
	if ra, _ := retryAfter.Load().(string); limited.Load() > 0 && ra == "" {
		t.Error("a refused request had no Retry-After")
	}
	got.mu.Lock()
	defer got.mu.Unlock()
	if int64(len(got.reqs)) != ok.Load() {
		t.Errorf("upstream saw %d requests; want only the %d admitted", len(got.reqs), ok.Load())
	}
}

func TestUpstream429IsWaitedOutAndReplayed(t *testing.T) {
	var calls atomic.Int64
	var bodies sync.Map
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		b, _ := io.ReadAll(r.Body)
		bodies.Store(n, string(b))
		if n == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		fmt.Fprint(w, `{"ok":true}`)
	}))
	defer up.Close()
	fe := frontend(t, proxy.Options{}, limitedRoute(t, up.URL, proxy.RateLimit{MaxWait: 5 * time.Second}))
	resp, err := http.Post(fe.URL+"/acme/v1/orders", "application/json", strings.NewReader(`{"n":1}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || calls.Load() != 2 {
		t.Fatalf("got %d after %d upstream calls; want 200 after a replay", resp.StatusCode, calls.Load())
	}
	if b, _ := bodies.Load(int64(2)); b != `{"n":1}` {
		t.Errorf("replayed body %q; want the original", b)
	}
}

func TestUpstream429BeyondMaxWaitPausesTheTenant(t *testing.T) {
	var calls atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Retry-After", "30")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer up.Close()
	fe := frontend(t, proxy.Options{}, limitedRoute(t, up.URL, proxy.RateLimit{MaxWait: time.Second}))
	first, err := http.Get(fe.URL + "/acme/v1/x")
	if err != nil {
		t.Fatal(err)
	}
	first.Body.Close()
	if first.StatusCode != 429 || first.Header.Get(proxy.ErrorHeader) != "" || first.Header.Get("Retry-After") != "30" {
		t.Errorf("first: %d %q Retry-After %q; want the upstream's own 429 passed through",
			first.StatusCode, first.Header.Get(proxy.ErrorHeader), first.Header.Get("Retry-After"))
	}
	second, err := http.Get(fe.URL + "/acme/v1/x")
	if err != nil {
		t.Fatal(err)
	}
	second.Body.Close()
	if second.StatusCode != 429 || second.Header.Get(proxy.ErrorHeader) != proxy.CodeRateLimited {
		t.Errorf("second: %d %q; want sidekey's own rate_limited while the tenant is paused", second.StatusCode, second.Header.Get(proxy.ErrorHeader))
	}
	if calls.Load() != 1 {
		t.Errorf("upstream called %d times; want 1 (the pause holds the rest back)", calls.Load())
	}
}

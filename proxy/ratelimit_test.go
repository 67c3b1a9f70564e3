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
	fe := frontend(t, proxy.Options{}, limitedRoute(t, up.URL, proxy.RateLimit{RPS: 10, Burst: 2, MaxWait: 250 * time.Millisecond}))
	const n = 12
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
	// Burst 2 plus 10/s over a 250 ms queue admits about 4–5; the rest are refused.
	if ok.Load() < 3 || ok.Load() > 6 || limited.Load() != n-ok.Load() {
		t.Errorf("%d admitted, %d refused; want about 4 admitted and the rest refused", ok.Load(), limited.Load())
	}
	if ra, _ := retryAfter.Load().(string); ra == "" {
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

package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sidekey/sidekey/providers/providertest"
)

// arrivals records when requests reach an upstream, in front of it.
type arrivals struct {
	mu    sync.Mutex
	times []time.Time // guarded by mu
}

// front returns a server that records each request's arrival and passes
// it on to upstream.
func (a *arrivals) front(t *testing.T, upstream string) *httptest.Server {
	u, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		a.times = append(a.times, time.Now())
		a.mu.Unlock()
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// busiestSecond returns the most requests that arrived within any one
// second, and resets the record.
func (a *arrivals) busiestSecond() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	times := slices.SortedFunc(slices.Values(a.times), func(x, y time.Time) int { return x.Compare(y) })
	a.times = nil
	most := 0
	for i := range times {
		n := 0
		for j := i; j < len(times) && times[j].Sub(times[i]) < time.Second; j++ {
			n++
		}
		most = max(most, n)
	}
	return most
}

// TestFleetRateLimitHoldsAcrossReplicas runs three sidekey processes on one
// Redis with an Istores tenant (documented limit 2 requests per second,
// burst 2) and sends 18 requests at once spread over the three: the
// platform never sees more than limit plus burst in any second, and every
// request is served within max_wait. With Redis gone, each replica keeps
// its share of the limit (limit ÷ 3), never none.
func TestFleetRateLimitHoldsAcrossReplicas(t *testing.T) {
	redis := startRedis(t)
	ist := providertest.NewIstores(providertest.SimOptions{ClientID: "ist-id", ClientSecret: "ist-secret-do-not-leak"})
	t.Cleanup(ist.Close)
	var seen arrivals
	api := seen.front(t, ist.APIURL())

	dir, keyFile, logs := fleetFiles(t, "ist-secret-do-not-leak")
	var replicas []*child
	for i := range 3 {
		addr := freeAddr(t)
		cfg := fmt.Sprintf(`listen: %s
storage: {type: redis, key_file: %s, redis: {addr: "%s", prefix: fleetrl}}
log: {level: info, access_log: false}
tenants:
  ist:
    provider: istores
    client_id: ist-id
    client_secret: ist-secret-do-not-leak
    scopes: [products:read]
    auth_url: %s
    token_url: %s
    api_url: %s
`, addr, keyFile, redis.addr, ist.AuthURL(), ist.TokenURL(), api.URL)
		path := filepath.Join(dir, fmt.Sprintf("replica-%d.yaml", i))
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		replicas = append(replicas, startChild(t, path, addr, logs))
	}
	resp, err := http.Get(replicas[0].base + "/_sidekey/oauth/connect/ist") // follows the consent to the callback
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("consent: %d", resp.StatusCode)
	}

	// burst sends n requests at once, spread over the replicas, and
	// returns how many were answered 200.
	burst := func(n int) int {
		client := &http.Client{Timeout: 20 * time.Second}
		var mu sync.Mutex
		ok := 0
		var wg sync.WaitGroup
		for i := range n {
			base := replicas[i%len(replicas)].base
			wg.Go(func() {
				resp, err := client.Get(base + "/ist/products/10/1")
				if err != nil {
					t.Error(err)
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Errorf("%s: %d %s", base, resp.StatusCode, b)
					return
				}
				mu.Lock()
				ok++
				mu.Unlock()
			})
		}
		wg.Wait()
		return ok
	}
	const limit, bucket = 2, 2 // Istores' documented rate, and its default burst
	// Every replica's token comes from the store before the measured run,
	// so that the runs measure only the limit.
	for _, r := range replicas {
		if resp, err := http.Get(r.base + "/ist/products/10/1"); err == nil {
			resp.Body.Close()
		}
	}
	seen.busiestSecond()
	start := time.Now()
	served := burst(18)
	most := seen.busiestSecond()
	t.Logf("fleet-wide: 18 requests over 3 replicas, %d served in %v; busiest second at the platform: %d", served, time.Since(start).Round(time.Millisecond), most)
	if served != 18 {
		t.Errorf("%d of 18 requests served; want all within max_wait", served)
	}
	if most > limit+bucket {
		t.Errorf("the platform saw %d requests in one second; want at most limit+burst = %d", most, limit+bucket)
	}

	// Redis gone: each replica admits its share, limit/3 with a burst of 1.
	redis.stop()
	served = burst(9)
	most = seen.busiestSecond()
	t.Logf("redis down: 9 requests over 3 replicas, %d served; busiest second at the platform: %d", served, most)
	if most > limit+len(replicas) {
		t.Errorf("with redis down the platform saw %d requests in one second; want at most %d (each replica's share)", most, limit+len(replicas))
	}
	if served != 9 {
		t.Errorf("with redis down %d of 9 requests served; want all within max_wait", served)
	}
}

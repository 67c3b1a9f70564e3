package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/sidekey/sidekey/bench/internal/loadgen"
	"github.com/sidekey/sidekey/providers/providertest"
)

type herdOptions struct {
	tenants      int           // cold tenants
	requests     int           // concurrent requests, spread evenly
	tokenLatency time.Duration // the token endpoint's delay
}

// herdResult is one herd's outcome.
type herdResult struct {
	tokenRequests int64
	latency       loadgen.Samples // from the release of the herd
	wall          time.Duration
	failures      int
	firstFailure  string
}

// herd fires the cold herd, then the same herd warm.
func herd(ctx context.Context, o herdOptions) (string, error) {
	sim := providertest.NewSimpleStore(providertest.SimOptions{TokenLatency: o.tokenLatency})
	defer sim.Close()
	p, err := startSidekey(sim, o.tenants)
	if err != nil {
		return "", err
	}
	defer p.stop()
	// One connection per request, opened before the herd is released, so
	// the herd measures sidekey rather than 1,000 TCP handshakes.
	client := loadgen.NewClient(o.requests)
	if err := preconnect(ctx, client, p.base+"/_sidekey/healthz", o.requests); err != nil {
		return "", fmt.Errorf("preconnect: %w", err)
	}

	cold := fire(ctx, client, p, o, sim)
	warmRes := fire(ctx, client, p, o, sim)

	var b strings.Builder
	fmt.Fprintf(&b, "### Cold start: %d concurrent requests across %d cold tenants\n\n", o.requests, o.tenants)
	fmt.Fprintf(&b, "SimpleStore simulator with a %s token endpoint; sidekey in-process; %d keep-alive connections opened before the herd is released; latency from the release.\n\n", o.tokenLatency, o.requests)
	b.WriteString("| herd | token requests | failed requests | p50 ms | p99 ms | max ms | herd done in ms |\n")
	b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	row := func(name string, r herdResult) {
		fmt.Fprintf(&b, "| %s | %d | %d | %.1f | %.1f | %.1f | %.1f |\n", name, r.tokenRequests, r.failures,
			msf(r.latency.Quantile(0.5)), msf(r.latency.Quantile(0.99)), msf(r.latency.Max()), msf(r.wall))
	}
	row("cold", cold)
	row("warm (again, at once)", warmRes)
	b.WriteString("\n")

	var problems []string
	if cold.tokenRequests != int64(o.tenants) {
		problems = append(problems, fmt.Sprintf("cold herd made %d token requests, want exactly %d", cold.tokenRequests, o.tenants))
	}
	if warmRes.tokenRequests != 0 {
		problems = append(problems, fmt.Sprintf("warm herd made %d token requests, want 0", warmRes.tokenRequests))
	}
	for _, r := range []herdResult{cold, warmRes} {
		if r.failures > 0 {
			problems = append(problems, fmt.Sprintf("%d requests failed, first: %s", r.failures, r.firstFailure))
		}
	}
	if len(problems) > 0 {
		return b.String(), fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	fmt.Fprintf(&b, "Exactly %d token requests for %d concurrent requests: every tenant's waiters shared one fetch.\n\n", o.tenants, o.requests)
	return b.String(), nil
}

// fire releases o.requests requests at once, request i for tenant
// i%tenants, and waits for all of them.
func fire(ctx context.Context, client *http.Client, p *proxy, o herdOptions, sim *providertest.SimpleStore) herdResult {
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		res     herdResult
		release = make(chan struct{})
		ready   sync.WaitGroup
	)
	before := sim.TokenRequests()
	var start time.Time
	for i := range o.requests {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.url(i%o.tenants), nil)
		wg.Add(1)
		ready.Add(1)
		go func() {
			defer wg.Done()
			ready.Done()
			<-release
			resp, err := client.Do(req)
			if err == nil {
				err = drainClose(resp)
				if err == nil && resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("status %d (%s)", resp.StatusCode, resp.Header.Get("X-Sidekey-Error"))
				}
			}
			d := time.Since(start)
			mu.Lock()
			defer mu.Unlock()
			res.latency = append(res.latency, d)
			if err != nil {
				res.failures++
				if res.firstFailure == "" {
					res.firstFailure = err.Error()
				}
			}
		}()
	}
	ready.Wait()
	start = time.Now()
	close(release)
	wg.Wait()
	res.wall = time.Since(start)
	res.latency.Sort()
	res.tokenRequests = sim.TokenRequests() - before
	return res
}

// preconnect opens n keep-alive connections by n concurrent requests to
// url, leaving them idle in client's pool.
func preconnect(ctx context.Context, client *http.Client, url string, n int) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		gate  = make(chan struct{})
	)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			if _, err := get(ctx, client, url); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		}()
	}
	close(gate)
	wg.Wait()
	return first
}

func drainClose(resp *http.Response) error {
	_, err := io.Copy(io.Discard, resp.Body)
	if cerr := resp.Body.Close(); err == nil {
		err = cerr
	}
	return err
}

func msf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

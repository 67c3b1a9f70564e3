package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sidekey/sidekey/bench/internal/loadgen"
	"github.com/sidekey/sidekey/providers/providertest"
)

type refreshOptions struct {
	tenants      int           // tenants sharing the load
	rate         float64       // requests per second, spread over tenants
	lifetime     time.Duration // token lifetime while refreshing
	tokenLatency time.Duration // the token endpoint's delay (both variants)
	window       time.Duration // one measured window
	rounds       int           // windows per variant, alternating
}

// variant is one sidekey in front of its own simulator.
type variant struct {
	name    string
	sim     *providertest.SimpleStore
	proxy   *proxy
	samples []loadgen.Result
	tokens  []int64 // token requests during each window
	watch   watcher // /_sidekey/status during the windows
}

// refresh compares latency while tokens are refreshed in the background
// with latency while they are not.
func refresh(ctx context.Context, o refreshOptions) (string, error) {
	vs := []*variant{
		{name: "no refresh (1 h tokens)"},
		{name: fmt.Sprintf("refreshing (%s tokens, %s token endpoint)", o.lifetime, o.tokenLatency)},
	}
	lifetimes := []time.Duration{time.Hour, o.lifetime}
	for i, v := range vs {
		v.sim = providertest.NewSimpleStore(providertest.SimOptions{TokenLifetime: lifetimes[i], TokenLatency: o.tokenLatency})
		defer v.sim.Close()
		p, err := startSidekey(v.sim, o.tenants)
		if err != nil {
			return "", err
		}
		defer p.stop()
		v.proxy = p
	}
	// Both get their first tokens at once (each fetch takes tokenLatency).
	errs := make(chan error, len(vs))
	for _, v := range vs {
		go func() {
			if err := warm(ctx, loadgen.NewClient(64), v.proxy, o.tenants); err != nil {
				errs <- fmt.Errorf("%s: warm-up: %w", v.name, err)
				return
			}
			errs <- nil
		}()
	}
	for range vs {
		if err := <-errs; err != nil {
			return "", err
		}
	}
	// Watch both from now on, between windows too: refreshes run on timers,
	// with or without traffic.
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	for _, v := range vs {
		go v.watch.watch(wctx, v.proxy.base+"/_sidekey/status", 25*time.Millisecond)
	}
	for r := range o.rounds {
		for _, v := range vs {
			before := v.sim.TokenRequests()
			res, err := loadgen.Run(ctx, loadgen.Options{
				URLs:        v.proxy.urls(o.tenants),
				Concurrency: 64,
				Rate:        o.rate,
				Duration:    o.window,
				Warmup:      500 * time.Millisecond,
			})
			if err != nil {
				return "", err
			}
			v.samples = append(v.samples, res)
			v.tokens = append(v.tokens, v.sim.TokenRequests()-before)
			if res.Errors > 0 {
				return "", fmt.Errorf("%s, round %d: %d failed requests, first: %s", v.name, r+1, res.Errors, res.FirstError)
			}
		}
	}

	var b strings.Builder
	fmt.Fprintf(&b, "### Refresh never shows in latency\n\n")
	margin := o.lifetime - min(5*time.Second, o.lifetime/10) - o.lifetime/2 - o.tokenLatency
	fmt.Fprintf(&b, "%d tenants, %.0f req/s spread over them (Go open loop; a request sent late because every connection was busy counts from its scheduled time), %d alternating windows of %s per variant; both token endpoints take %s. With %s tokens sidekey refreshes each tenant in the background about every %s (half the lifetime, plus the fetch), so every window sees each tenant refreshed at least once. By design (a refresh at half the lifetime counted from the token request, an effective expiry a tenth of the lifetime early) the new token arrives %.1f s before the old one's effective expiry.\n\n",
		o.tenants, o.rate, o.rounds, o.window, o.tokenLatency, o.lifetime, (o.lifetime/2 + o.tokenLatency).Round(time.Second), margin.Seconds())
	b.WriteString("| variant | window | token requests in window | requests | p50 µs | p99 µs | p99.9 µs | max µs | errors |\n")
	b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, v := range vs {
		for i, s := range v.samples {
			fmt.Fprintf(&b, "| %s | %d | %d | %d | %.0f | %.0f | %.0f | %.0f | %d |\n", v.name, i+1, v.tokens[i], s.Requests,
				loadgen.Micros(s.Latency.Quantile(0.5)), loadgen.Micros(s.Latency.Quantile(0.99)),
				loadgen.Micros(s.Latency.Quantile(0.999)), loadgen.Micros(s.Latency.Max()), s.Errors)
		}
	}
	b.WriteString("\n")
	p99 := func(v *variant) []float64 {
		var xs []float64
		for _, s := range v.samples {
			xs = append(xs, loadgen.Micros(s.Latency.Quantile(0.99)))
		}
		return xs
	}
	base, ref := medianOf(p99(vs[0])), medianOf(p99(vs[1]))
	var refreshes int64
	for _, n := range vs[1].tokens {
		refreshes += n
	}
	fmt.Fprintf(&b, "Median p99: %.0f µs without refresh, %.0f µs with %d refreshes during the windows (difference %+.0f µs).\n\n", base, ref, refreshes, ref-base)
	var slowest time.Duration
	var total int64
	for _, s := range vs[1].samples {
		slowest = max(slowest, s.Latency.Max())
		total += s.Requests
	}
	stopWatch()
	polls, invalid, renewals, margin := vs[1].watch.summary()
	fmt.Fprintf(&b, "Seen from /_sidekey/status (polled every 25 ms from the first window to the last, %d polls): %d new tokens; the closest one was seen %.0f ms before the old token's effective expiry (negative: after it); a tenant was seen without a valid token in %d of %d tenant observations.\n\n",
		polls, renewals, msf(margin), invalid, polls*o.tenants)
	if invalid == 0 {
		fmt.Fprintf(&b, "No tenant was ever without a valid token, so no request waited for a fetch: the slowest of the %d requests while refreshing took %.1f ms (a fetch takes %s).\n\n", total, msf(slowest), o.tokenLatency)
	} else {
		fmt.Fprintf(&b, "Requests that arrived while their tenant had no valid token waited for the rest of the fetch in flight: the slowest of the %d requests while refreshing took %.1f ms (a whole fetch takes %s).\n\n", total, msf(slowest), o.tokenLatency)
	}
	if refreshes == 0 {
		return b.String(), fmt.Errorf("no refresh happened during the measured windows")
	}
	if invalid > 0 {
		return b.String(), fmt.Errorf("tenants were without a valid token while refreshing (%d observations): requests in those gaps waited for the fetch", invalid)
	}
	if slowest >= o.tokenLatency/2 {
		return b.String(), fmt.Errorf("a request took %s: it waited for a token fetch", slowest)
	}
	return b.String(), nil
}

// medianOf returns the median of xs (0 for none).
func medianOf(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

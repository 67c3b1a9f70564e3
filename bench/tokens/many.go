package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/sidekey/sidekey/bench/internal/loadgen"
	"github.com/sidekey/sidekey/bench/internal/procstat"
	"github.com/sidekey/sidekey/providers/providertest"
)

type manyOptions struct {
	tenants int           // configured, and all made active
	rate    float64       // requests per second, round-robin over tenants
	window  time.Duration // measured
	// heapProfile, when set, receives a heap profile taken once every
	// tenant has its token.
	heapProfile string
}

// heap is the live heap after a full collection, in bytes.
func heap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// many configures o.tenants tenants, gives every one its token, and
// reports memory per tenant and latency spread over all of them.
func many(ctx context.Context, o manyOptions) (string, error) {
	sim := providertest.NewSimpleStore(providertest.SimOptions{})
	defer sim.Close()
	h0 := heap()
	started := time.Now()
	p, err := startSidekey(sim, o.tenants)
	if err != nil {
		return "", err
	}
	defer p.stop()
	startup := time.Since(started)
	h1 := heap()
	started = time.Now()
	if err := warm(ctx, loadgen.NewClient(64), p, o.tenants); err != nil {
		return "", fmt.Errorf("warm-up: %w", err)
	}
	warmup := time.Since(started)
	h2 := heap()
	if o.heapProfile != "" {
		if err := writeHeapProfile(o.heapProfile); err != nil {
			return "", err
		}
	}
	res, err := loadgen.Run(ctx, loadgen.Options{
		URLs:        p.urls(o.tenants),
		Concurrency: 64,
		Rate:        o.rate,
		Duration:    o.window,
		Warmup:      500 * time.Millisecond,
	})
	if err != nil {
		return "", err
	}
	st, _ := procstat.Read(pidSelf())

	var b strings.Builder
	fmt.Fprintf(&b, "### Many tenants: %d configured, all active\n\n", o.tenants)
	fmt.Fprintf(&b, "%d SimpleStore tenants in the configuration, each given its token by one request (%d token requests in %s); then %.0f req/s round-robin over all of them for %s. Everything runs in one process (simulator, sidekey, load generator), so RSS is an upper bound; the heap growth is measured after a full GC.\n\n",
		o.tenants, sim.TokenRequests(), warmup.Round(time.Millisecond), o.rate, o.window)
	b.WriteString("| measure | value |\n| --- | ---: |\n")
	fmt.Fprintf(&b, "| startup (config, %d engines) | %s |\n", o.tenants, startup.Round(time.Millisecond))
	fmt.Fprintf(&b, "| heap per configured tenant, no token yet | %.1f KiB |\n", perTenantKiB(h1, h0, o.tenants))
	fmt.Fprintf(&b, "| heap per tenant with its token (includes the simulator's record of it) | %.1f KiB |\n", perTenantKiB(h2, h0, o.tenants))
	fmt.Fprintf(&b, "| process RSS / peak | %.0f / %.0f MiB |\n", float64(st.RSS)/(1<<20), float64(st.HWM)/(1<<20))
	fmt.Fprintf(&b, "| latency p50 / p99 / p99.9 | %.0f / %.0f / %.0f µs |\n",
		loadgen.Micros(res.Latency.Quantile(0.5)), loadgen.Micros(res.Latency.Quantile(0.99)), loadgen.Micros(res.Latency.Quantile(0.999)))
	fmt.Fprintf(&b, "| failed requests | %d |\n\n", res.Errors)
	if res.Errors > 0 {
		return b.String(), fmt.Errorf("%d failed requests, first: %s", res.Errors, res.FirstError)
	}
	return b.String(), nil
}

func perTenantKiB(after, before uint64, n int) float64 {
	if after < before {
		return 0
	}
	return float64(after-before) / float64(n) / 1024
}

func writeHeapProfile(name string) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Command connections measures sidekey with many tenants: N connections
// stored under one app, of which A are active (engine.max_active = A). It
// reports the process's memory, the latency of requests to loaded tenants,
// and the latency of the first request to an evicted tenant (load from the
// store, token from the store, no platform round trip).
//
// sidekey, the SimpleStore simulator and the load run in this one process
// on loopback; memory is read before and after, so the figures are what the
// connections add. The memory store is used: it keeps all N sealed records
// in process memory (a file or Redis store would keep them out of it), so
// the RSS figure is an upper bound.
//
//	go run ./bench/connections -n 100000 -active 10000
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/sidekey/sidekey/bench/internal/benchutil"
	"github.com/sidekey/sidekey/config"
	"github.com/sidekey/sidekey/providers/providertest"
	"github.com/sidekey/sidekey/server"
)

func main() {
	n := flag.Int("n", 100000, "connections in the store")
	active := flag.Int("active", 10000, "engine.max_active (and the size of the active set)")
	requests := flag.Int("requests", 50000, "requests to loaded tenants for the latency figures")
	conc := flag.Int("c", 16, "concurrent clients")
	heapProfile = flag.String("heapprofile", "", "write a heap profile here at the end")
	flag.Parse()
	if err := run(*n, *active, *requests, *conc); err != nil {
		log.Fatal(err)
	}
}

var heapProfile *string

func run(n, active, requests, conc int) error {
	sim := providertest.NewSimpleStore(providertest.SimOptions{ClientID: "bench", ClientSecret: "bench-secret"})
	defer sim.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	off := false
	cfg := &config.Config{
		Listen:  ln.Addr().String(),
		Storage: config.Storage{Type: "memory"},
		Log:     config.Log{Level: "error", AccessLog: &off},
		Engine:  config.Engine{MaxActive: active},
		Apps: map[string]*config.Tenant{"simple": {Provider: "simplestore", ClientID: "bench", ClientSecret: "bench-secret",
			TokenURL: sim.TokenURL(), APIURL: sim.APIURL()}},
	}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	srv, err := server.New(server.Options{Config: cfg})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = srv.RunListener(ctx, ln) }()
	base := "http://" + ln.Addr().String()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc * 2}}

	runtime.GC()
	before := benchutil.Sample()
	t0 := time.Now()
	err = benchutil.Parallel(n, conc, func(i int) error {
		body := fmt.Sprintf(`{"tenant":"shop-%d","app":"simple"}`, i)
		resp, err := client.Post(base+"/_sidekey/admin/connections", "application/json", strings.NewReader(body))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			b, _ := io.ReadAll(resp.Body)
			return fmt.Errorf("create shop-%d: %s %s", i, resp.Status, b)
		}
		return nil
	})
	if err != nil {
		return err
	}
	created := time.Since(t0)
	runtime.GC()
	stored := benchutil.Sample()

	// Warm the active set: one request each (a token fetch each).
	get := func(i int) (time.Duration, error) {
		start := time.Now()
		resp, err := client.Get(fmt.Sprintf("%s/shop-%d/v1/cart/1", base, i))
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return 0, fmt.Errorf("shop-%d: %s", i, resp.Status)
		}
		return time.Since(start), nil
	}
	first, err := benchutil.Timed(active, conc, func(i int) (time.Duration, error) { return get(i) })
	if err != nil {
		return err
	}
	runtime.GC()
	warm := benchutil.Sample()

	// Latency of loaded tenants.
	loaded, err := benchutil.Timed(requests, conc, func(i int) (time.Duration, error) { return get((i * 7919) % active) })
	if err != nil {
		return err
	}

	// Evict the first half of the active set by touching as many others,
	// then measure their first request again: load from the store, token
	// from the store.
	half := active / 2
	if err := benchutil.Parallel(half, conc, func(i int) error { _, err := get(active + i); return err }); err != nil {
		return err
	}
	tokensBefore := sim.TokenRequests()
	reloaded, err := benchutil.Timed(min(half, 5000), conc, func(i int) (time.Duration, error) { return get(i) })
	if err != nil {
		return err
	}
	extraTokens := sim.TokenRequests() - tokensBefore
	runtime.GC()
	end := benchutil.Sample()

	var out bytes.Buffer
	fmt.Fprintf(&out, "connections: %d stored, engine.max_active %d, %d clients, %s/%s, %d cores\n\n", n, active, conc, runtime.GOOS, runtime.GOARCH, runtime.NumCPU())
	fmt.Fprintf(&out, "| figure | value |\n| --- | --- |\n")
	fmt.Fprintf(&out, "| create %d connections (admin API) | %.1f s (%.0f/s) |\n", n, created.Seconds(), float64(n)/created.Seconds())
	fmt.Fprintf(&out, "| RSS added by %d stored connections (memory store) | %.1f MiB |\n", n, benchutil.MiB(stored.RSS-before.RSS))
	fmt.Fprintf(&out, "| RSS added by %d active engines | %.1f MiB (%.1f KiB each) |\n", active, benchutil.MiB(warm.RSS-stored.RSS), float64(warm.RSS-stored.RSS)/1024/float64(active))
	fmt.Fprintf(&out, "| Go heap in use at the end | %.1f MiB |\n", benchutil.MiB(end.Heap))
	fmt.Fprintf(&out, "| first request, never-loaded tenant (store + token request) | p50 %s, p99 %s |\n", benchutil.Percentile(first, 50), benchutil.Percentile(first, 99))
	fmt.Fprintf(&out, "| request to a loaded tenant | p50 %s, p99 %s, p99.9 %s |\n", benchutil.Percentile(loaded, 50), benchutil.Percentile(loaded, 99), benchutil.Percentile(loaded, 99.9))
	fmt.Fprintf(&out, "| first request after eviction (store load, stored token) | p50 %s, p99 %s; %d token requests for %d reloads |\n", benchutil.Percentile(reloaded, 50), benchutil.Percentile(reloaded, 99), extraTokens, len(reloaded))
	fmt.Fprintf(&out, "| peak RSS (VmHWM) | %.1f MiB |\n", benchutil.MiB(end.HWM))
	if *heapProfile != "" {
		f, err := os.Create(*heapProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.WriteHeapProfile(f); err != nil {
			return err
		}
	}
	_, err = os.Stdout.Write(out.Bytes())
	return err
}

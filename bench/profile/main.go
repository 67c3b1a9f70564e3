// Command profile serves sidekey's whole handler (server.New with one
// static tenant, as `sidekey serve` builds it) or the bare reverse proxy
// in-process, under runtime/pprof, so the request path can be profiled
// without changing sidekey. Point a load generator at the printed URL; after
// -d it prints requests, CPU and heap allocations per request, and writes
// the CPU and allocation profiles.
//
//	profile -mode sidekey -upstream http://127.0.0.1:18000 -d 15s -cpuprofile cpu.out -memprofile mem.out &
//	wrk -t1 -c32 -d12s http://127.0.0.1:PORT/bench/v1/cart/42
//	go tool pprof -top cpu.out
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sidekey/sidekey/bench/internal/bare"
	"github.com/sidekey/sidekey/bench/internal/loadgen"
	"github.com/sidekey/sidekey/config"
	"github.com/sidekey/sidekey/server"
)

const token = "bench-token"

func main() {
	var (
		mode     = flag.String("mode", "sidekey", "sidekey, bare or bare-tuned")
		upstream = flag.String("upstream", "", "upstream base `URL`")
		addr     = flag.String("addr", "127.0.0.1:0", "listen `address`")
		dur      = flag.Duration("d", 15*time.Second, "how long to serve after the first request")
		cpuOut   = flag.String("cpuprofile", "", "write a CPU profile to `file`")
		memOut   = flag.String("memprofile", "", "write an allocation profile to `file`")
	)
	flag.Parse()
	if err := run(*mode, *upstream, *addr, *dur, *cpuOut, *memOut); err != nil {
		fmt.Fprintln(os.Stderr, "profile:", err)
		os.Exit(1)
	}
}

func run(mode, upstream, addr string, dur time.Duration, cpuOut, memOut string) error {
	u, err := url.Parse(upstream)
	if err != nil || u.Host == "" {
		return fmt.Errorf("-upstream %q: want http://host:port", upstream)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	var h http.Handler
	switch mode {
	case "sidekey":
		srv, err := sidekey(ln.Addr().String(), upstream)
		if err != nil {
			return err
		}
		defer func() { _ = srv.Shutdown(context.Background()) }()
		h = srv.Handler()
	case "bare":
		h = bare.New(u, "/bench", token)
	case "bare-tuned":
		h = bare.NewTuned(u, "/bench", token)
	default:
		return fmt.Errorf("-mode %q: want sidekey, bare or bare-tuned", mode)
	}

	var served atomic.Int64
	first := make(chan struct{})
	var once atomic.Bool
	// Handler time of every request (the first 256Ki), to tell a slow handler from
	// a process that was not running.
	times := make([]time.Duration, 1<<18)
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if once.CompareAndSwap(false, true) {
			close(first)
		}
		start := time.Now()
		h.ServeHTTP(w, r)
		if i := served.Add(1) - 1; int(i) < len(times) {
			times[i] = time.Since(start)
		}
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	defer hs.Close()
	fmt.Printf("serving %s at http://%s/bench/v1/cart/42\n", mode, ln.Addr())

	select {
	case <-first:
	case <-time.After(time.Minute):
		return fmt.Errorf("no request within a minute")
	}
	if cpuOut != "" {
		f, err := os.Create(cpuOut)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	n0, c0, t0 := served.Load(), cpuTime(), time.Now()
	time.Sleep(dur) // the measurement window: the load runs meanwhile
	n1, c1, elapsed := served.Load(), cpuTime(), time.Since(t0)
	runtime.ReadMemStats(&m1)
	if cpuOut != "" {
		pprof.StopCPUProfile()
	}
	n := float64(n1 - n0)
	if n == 0 {
		return fmt.Errorf("no requests in the window")
	}
	fmt.Printf("%s: %.0f requests in %s (%.0f req/s); per request: %.1f µs CPU, %.1f allocations, %.0f bytes allocated; GCs: %d\n",
		mode, n, elapsed.Round(time.Millisecond), n/elapsed.Seconds(),
		float64(c1-c0)/float64(time.Microsecond)/n,
		float64(m1.Mallocs-m0.Mallocs)/n, float64(m1.TotalAlloc-m0.TotalAlloc)/n, m1.NumGC-m0.NumGC)
	window := loadgen.Samples(slices.Clone(times[min(int(n0), len(times)):min(int(n1), len(times))]))
	window.Sort()
	fmt.Printf("%s: handler time µs: p50 %.0f  p99 %.0f  p99.9 %.0f  max %.0f\n", mode,
		loadgen.Micros(window.Quantile(0.5)), loadgen.Micros(window.Quantile(0.99)),
		loadgen.Micros(window.Quantile(0.999)), loadgen.Micros(window.Max()))
	if memOut != "" {
		f, err := os.Create(memOut)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
			return err
		}
	}
	return nil
}

// sidekey builds sidekey's server as `sidekey serve` would for the
// harness's configuration: one static tenant, memory storage, no logs.
func sidekey(listen, upstream string) (*server.Server, error) {
	off := false
	cfg := &config.Config{
		Listen:  listen,
		Storage: config.Storage{Type: "memory"},
		Log:     config.Log{Level: "warn", AccessLog: &off},
		Tenants: map[string]*config.Tenant{"bench": {Provider: "static", Token: token, APIURL: upstream}},
	}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return server.New(server.Options{Config: cfg})
}

// cpuTime is the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

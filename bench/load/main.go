// Command load is the harness's load generator (package loadgen) on the
// command line.
//
// Closed loop, throughput at saturation (32 connections, 10 s):
//
//	load -url http://127.0.0.1:18004/bench/v1/cart/42 -c 32 -d 10s
//
// Open loop, latency at a fixed rate with coordinated-omission correction
// (each request's latency counts from when it was due):
//
//	load -url http://127.0.0.1:18004/bench/v1/cart/42 -rate 2000 -d 10s
//
// -json prints the result as one JSON object instead of text.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/sidekey/sidekey/bench/internal/loadgen"
)

// headers collects repeated -H "Name: value" flags.
type headers http.Header

func (h headers) String() string { return "" }

func (h headers) Set(s string) error {
	k, v, ok := strings.Cut(s, ":")
	if !ok {
		return fmt.Errorf("want \"Name: value\", got %q", s)
	}
	http.Header(h).Add(strings.TrimSpace(k), strings.TrimSpace(v))
	return nil
}

func main() {
	hdr := headers{}
	urls := flag.String("url", "", "comma-separated `URLs`, requested in turn")
	conc := flag.Int("c", 32, "concurrency (closed loop) or maximum in-flight requests (open loop)")
	rate := flag.Float64("rate", 0, "requests per second (open loop); 0: closed loop at -c")
	dur := flag.Duration("d", 10*time.Second, "measured `duration`")
	warm := flag.Duration("warmup", time.Second, "unmeasured warm-up `duration`")
	asJSON := flag.Bool("json", false, "print JSON")
	flag.Var(hdr, "H", "extra request header `Name: value` (repeatable)")
	flag.Parse()
	if *urls == "" {
		fmt.Fprintln(os.Stderr, "load: -url is required")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := loadgen.Run(ctx, loadgen.Options{
		URLs:        strings.Split(*urls, ","),
		Header:      http.Header(hdr),
		Concurrency: *conc,
		Rate:        *rate,
		Duration:    *dur,
		Warmup:      *warm,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
	q := func(p float64) float64 { return loadgen.Micros(res.Latency.Quantile(p)) }
	if *asJSON {
		_ = json.NewEncoder(os.Stdout).Encode(map[string]any{
			"requests": res.Requests, "errors": res.Errors, "rps": res.RPS(),
			"p50_us": q(0.5), "p99_us": q(0.99), "p999_us": q(0.999),
			"max_us": loadgen.Micros(res.Latency.Max()), "first_error": res.FirstError,
		})
	} else {
		fmt.Printf("%d requests (%d errors) in %v: %.0f req/s\n", res.Requests, res.Errors, res.Elapsed.Round(time.Millisecond), res.RPS())
		fmt.Printf("latency µs: p50 %.0f  p99 %.0f  p99.9 %.0f  max %.0f\n", q(0.5), q(0.99), q(0.999), loadgen.Micros(res.Latency.Max()))
		if res.FirstError != "" {
			fmt.Println("first error:", res.FirstError)
		}
	}
	if res.Errors > 0 {
		os.Exit(1)
	}
}

// Command compare measures sidekey's proxy overhead side by side with the
// alternatives, in one run on one machine: the upstream called directly, a
// bare httputil.ReverseProxy (as is, and tuned), Caddy, nginx and sidekey
// with a cached token,
// each in front of the same upstream and each injecting the same
// Authorization header.
//
// It starts the upstream and every contender on loopback ports, then runs
// rounds; each round measures every contender in turn (the order rotates
// each round), so slow drifts of a shared machine hit all of them alike.
// Per contender and round: requests/s at saturation (fixed concurrency,
// wrk or the Go closed loop), latency quantiles at a fixed rate (the Go
// open loop, corrected for coordinated omission), the contender's CPU time
// per 1,000 requests in both phases (utime+stime from /proc) and its
// memory (VmRSS, VmHWM). It prints medians over the rounds as a markdown
// table, with ratios to sidekey, and stops every process it started.
//
// bench/run.sh builds the binaries and runs this; see BENCHMARKS.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

func main() {
	var (
		bin         = flag.String("bin", "", "`directory` holding upstream, bareproxy, sidekey and (optionally) caddy")
		nginx       = flag.String("nginx", lookPath("nginx", "/usr/sbin/nginx"), "nginx `binary`; empty: skip nginx")
		wrk         = flag.String("wrk", lookPath("wrk"), "wrk `binary` for saturation; empty: the Go closed loop")
		caddyNote   = flag.String("caddy-note", "", "why caddy is missing, reported when it is")
		names       = flag.String("contenders", "direct,bare,bare-tuned,caddy,nginx,sidekey", "comma-separated contenders, in order (also: sidekey-p1, sidekey with GOMAXPROCS=1)")
		rounds      = flag.Int("rounds", 3, "rounds; medians are over rounds")
		conc        = flag.Int("c", 32, "saturation concurrency (connections)")
		satDur      = flag.Duration("sat", 6*time.Second, "saturation phase duration")
		rate        = flag.Float64("rate", 2000, "fixed-rate phase, requests per second")
		rateDur     = flag.Duration("rate-d", 8*time.Second, "fixed-rate phase duration")
		warmup      = flag.Duration("warmup", time.Second, "unmeasured warm-up before each phase")
		out         = flag.String("out", "", "also write the report to this `file`")
		keepWorkdir = flag.Bool("keep", false, "keep the work directory (configs, logs)")
	)
	flag.Parse()
	if *bin == "" {
		fmt.Fprintln(os.Stderr, "compare: -bin is required")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	p := plan{wrk: *wrk, concurrency: *conc, satDuration: *satDur, rate: *rate, rateDuration: *rateDur, warmup: *warmup}
	report, err := run(ctx, runOptions{
		setup:    setup{bin: *bin, nginx: *nginx, caddyNote: *caddyNote},
		names:    strings.Split(*names, ","),
		rounds:   *rounds,
		plan:     p,
		keepWork: *keepWorkdir,
		progress: os.Stderr,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
	fmt.Print(report)
	if *out != "" {
		if err := os.WriteFile(*out, []byte(report), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "compare:", err)
			os.Exit(1)
		}
	}
}

// lookPath returns the first of names found in PATH or as a path, or "".
func lookPath(names ...string) string {
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	return ""
}

type runOptions struct {
	setup    setup
	names    []string
	rounds   int
	plan     plan
	keepWork bool
	progress io.Writer
}

// run starts everything, measures, stops everything and returns the
// markdown report.
func run(ctx context.Context, o runOptions) (string, error) {
	dir, err := os.MkdirTemp("", "sidekey-bench-")
	if err != nil {
		return "", err
	}
	if o.keepWork {
		fmt.Fprintln(o.progress, "work directory:", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	l := &launcher{dir: dir}
	defer l.stopAll()

	port, err := freePort()
	if err != nil {
		return "", err
	}
	upAddr := fmt.Sprintf("127.0.0.1:%d", port)
	o.setup.upstream = "http://" + upAddr
	if _, err := l.start("upstream", nil, filepath.Join(o.setup.bin, "upstream"), "-addr", upAddr, "-token", token); err != nil {
		return "", err
	}
	direct := &contender{url: o.setup.upstream + path}
	if err := waitReady(ctx, direct.url, map[string][]string{"Authorization": {"Bearer " + token}}, nil); err != nil {
		return "", fmt.Errorf("upstream: %w; log: %s", err, l.logTail("upstream"))
	}

	var cs []*contender
	for _, n := range o.names {
		c := startContender(ctx, l, o.setup, strings.TrimSpace(n))
		if c.skipped != "" {
			fmt.Fprintf(o.progress, "%s: not measured: %s\n", c.name, c.skipped)
		}
		cs = append(cs, c)
	}
	m := newMachine()
	results := make(map[string][]sample)
	started := time.Now()
	for r := range o.rounds {
		for i := range cs {
			c := cs[(i+r)%len(cs)]
			if c.skipped != "" {
				continue
			}
			s, err := measure(ctx, o.plan, c)
			if ctx.Err() != nil {
				return "", ctx.Err()
			}
			if err != nil {
				fmt.Fprintf(o.progress, "round %d %s: %v\n", r+1, c.name, err)
				continue
			}
			fmt.Fprintf(o.progress, "round %d %-8s %8.0f req/s  p50 %6.0fµs  p99 %6.0fµs  p99.9 %7.0fµs  errors %d\n",
				r+1, c.name, s.satRPS, us(s.p50), us(s.p99), us(s.p999), s.errors)
			results[c.name] = append(results[c.name], s)
		}
	}
	m.finish(time.Since(started))
	return render(m, o, cs, results), nil
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

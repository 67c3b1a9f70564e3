// Command tokens measures sidekey's token engine end to end, in-process
// (simulated SimpleStore token endpoint and API, sidekey's server package
// on a loopback listener, the harness's load generator):
//
//   - herd: N concurrent requests across T cold tenants whose token
//     endpoint takes a while. Exactly T token requests must reach the
//     endpoint; every request must succeed. Then the same herd again,
//     warm: no token request at all.
//   - refresh: latency at a fixed rate while tokens live a few seconds
//     and the token endpoint takes 2 s, so refreshes run all the time,
//     against the same setup with hour-long tokens (no refresh). Measured
//     in alternating windows; refresh must not show in the quantiles.
//   - many: T tenants configured and all active (each with its token):
//     memory per tenant and latency at a fixed rate spread over all.
//
// It prints markdown and exits 1 when an invariant fails (a token request
// count other than expected, or a failed request).
//
//	tokens -scenario herd,refresh,many
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	var (
		scenarios = flag.String("scenario", "herd,refresh,many", "comma-separated scenarios: herd, refresh, many")
		quick     = flag.Bool("quick", false, "shorter windows, fewer rounds")
		out       = flag.String("out", "", "also write the report to this `file`")
		lifetime  = flag.Duration("lifetime", 6*time.Second, "refresh: token lifetime while refreshing")
		fetch     = flag.Duration("fetch", 2*time.Second, "refresh: token endpoint latency")
		rounds    = flag.Int("rounds", 3, "refresh: windows per variant")
		heapOut   = flag.String("heapprofile", "", "many: write a heap profile to `file` once every tenant has its token")
	)
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	list := strings.Split(*scenarios, ",")
	if len(list) > 1 {
		// One process per scenario, so that one's memory does not show in
		// the next one's RSS.
		os.Exit(each(ctx, list, *quick, *out))
	}
	var report strings.Builder
	failed := false
	for _, sc := range list {
		var (
			text string
			err  error
		)
		start := time.Now()
		switch strings.TrimSpace(sc) {
		case "herd":
			text, err = herd(ctx, herdOptions{tenants: 100, requests: 1000, tokenLatency: 200 * time.Millisecond})
		case "refresh":
			o := refreshOptions{tenants: 10, rate: 1000, lifetime: *lifetime, tokenLatency: *fetch, window: 8 * time.Second, rounds: *rounds}
			if *quick {
				o.window, o.rounds = 5*time.Second, 1
			}
			text, err = refresh(ctx, o)
		case "many":
			o := manyOptions{tenants: 10000, rate: 1000, window: 5 * time.Second, heapProfile: *heapOut}
			if *quick {
				o.tenants, o.window = 2000, 2*time.Second
			}
			text, err = many(ctx, o)
		default:
			err = fmt.Errorf("unknown scenario %q", sc)
		}
		report.WriteString(text)
		if err != nil {
			failed = true
			fmt.Fprintf(&report, "\n**%s failed: %v**\n\n", sc, err)
		}
		fmt.Fprintf(os.Stderr, "%s: done in %s\n", sc, time.Since(start).Round(time.Second))
	}
	fmt.Print(report.String())
	if *out != "" {
		if err := os.WriteFile(*out, []byte(report.String()), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "tokens:", err)
			os.Exit(1)
		}
	}
	if failed {
		os.Exit(1)
	}
}

// each runs every scenario in a child process of this program, prints
// the reports in order, and returns the exit code.
func each(ctx context.Context, list []string, quick bool, out string) int {
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "tokens:", err)
		return 1
	}
	var report strings.Builder
	code := 0
	for _, sc := range list {
		args := []string{"-scenario", sc}
		if quick {
			args = append(args, "-quick")
		}
		cmd := exec.CommandContext(ctx, self, args...)
		cmd.Stderr = os.Stderr
		cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
		b, err := cmd.Output()
		report.Write(b)
		fmt.Print(string(b))
		if err != nil {
			code = 1
		}
	}
	if out != "" {
		if err := os.WriteFile(out, []byte(report.String()), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "tokens:", err)
			return 1
		}
	}
	return code
}

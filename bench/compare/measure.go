package main

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/sidekey/sidekey/bench/internal/loadgen"
	"github.com/sidekey/sidekey/bench/internal/procstat"
)

// plan is what one measurement of one contender does.
type plan struct {
	wrk          string        // wrk binary; "" runs the Go closed loop instead
	concurrency  int           // saturation connections
	satDuration  time.Duration // saturation, measured
	rate         float64       // fixed-rate phase, requests per second
	rateDuration time.Duration // fixed-rate, measured
	warmup       time.Duration // before each phase, unmeasured
}

// sample is one contender's numbers from one round.
type sample struct {
	satRPS     float64
	satCPU1k   float64 // CPU ms per 1,000 requests at saturation; <0: n/a
	p50        time.Duration
	p99        time.Duration
	p999       time.Duration
	max        time.Duration
	rateCPU1k  float64 // CPU ms per 1,000 requests at the fixed rate; <0: n/a
	rss, hwm   int64   // bytes after the round; 0: n/a
	errors     int64   // failed requests in both phases
	firstError string
}

// measure runs one round against c: a saturation phase, then a fixed-rate
// phase, each after a warm-up, reading the contender's CPU around each.
func measure(ctx context.Context, p plan, c *contender) (sample, error) {
	s := sample{satCPU1k: -1, rateCPU1k: -1}
	pid := c.pid()
	cpu := func() time.Duration {
		if pid == 0 {
			return 0
		}
		st, err := procstat.Read(pid)
		if err != nil {
			return 0
		}
		return st.CPU
	}

	warm, err := loadgen.Run(ctx, loadgen.Options{
		URLs: []string{c.url}, Header: c.header, Concurrency: p.concurrency, Duration: p.warmup,
	})
	if err != nil {
		return s, fmt.Errorf("warm-up: %w", err)
	}
	if warm.Errors > 0 {
		return s, fmt.Errorf("warm-up: %d errors, first: %s", warm.Errors, warm.FirstError)
	}
	before := cpu()
	reqs, rps, errs, firstErr, err := saturateCounted(ctx, p, c, p.satDuration)
	if err != nil {
		return s, err
	}
	if pid != 0 && reqs > 0 {
		s.satCPU1k = ms(cpu()-before) * 1000 / float64(reqs)
	}
	s.satRPS, s.errors, s.firstError = rps, errs, firstErr

	res, err := loadgen.Run(ctx, loadgen.Options{
		URLs:        []string{c.url},
		Header:      c.header,
		Concurrency: 64,
		Rate:        p.rate,
		Duration:    p.rateDuration,
		Warmup:      p.warmup,
		OnStart:     func() { before = cpu() },
	})
	if err != nil {
		return s, err
	}
	if pid != 0 && res.Requests > 0 {
		s.rateCPU1k = ms(cpu()-before) * 1000 / float64(res.Requests)
	}
	s.p50, s.p99, s.p999, s.max = res.Latency.Quantile(0.5), res.Latency.Quantile(0.99), res.Latency.Quantile(0.999), res.Latency.Max()
	s.errors += res.Errors
	if s.firstError == "" {
		s.firstError = res.FirstError
	}
	if pid != 0 {
		if st, err := procstat.Read(pid); err == nil {
			s.rss, s.hwm = st.RSS, st.HWM
		}
	}
	return s, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// saturateCounted runs the closed loop for d with wrk (when available) or
// the Go generator, and returns completed requests, requests/s, errors and
// the first error's text.
func saturateCounted(ctx context.Context, p plan, c *contender, d time.Duration) (int64, float64, int64, string, error) {
	if p.wrk == "" {
		res, err := loadgen.Run(ctx, loadgen.Options{
			URLs: []string{c.url}, Header: c.header, Concurrency: p.concurrency, Duration: d,
		})
		return res.Requests, res.RPS(), res.Errors, res.FirstError, err
	}
	secs := max(1, int(d.Round(time.Second)/time.Second))
	args := []string{"-t1", "-c" + strconv.Itoa(p.concurrency), "-d" + strconv.Itoa(secs) + "s", "--timeout", "5s"}
	for k, vs := range c.header {
		for _, v := range vs {
			args = append(args, "-H", k+": "+v)
		}
	}
	args = append(args, c.url)
	out, err := exec.CommandContext(ctx, p.wrk, args...).CombinedOutput()
	if err != nil {
		return 0, 0, 0, "", fmt.Errorf("wrk: %w: %s", err, out)
	}
	return parseWrk(string(out))
}

var (
	wrkTotal  = regexp.MustCompile(`(\d+) requests in`)
	wrkRate   = regexp.MustCompile(`Requests/sec:\s+([\d.]+)`)
	wrkNon2xx = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	wrkSocket = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

// parseWrk reads requests, requests/s and errors from wrk's report.
func parseWrk(out string) (int64, float64, int64, string, error) {
	t, r := wrkTotal.FindStringSubmatch(out), wrkRate.FindStringSubmatch(out)
	if t == nil || r == nil {
		return 0, 0, 0, "", fmt.Errorf("wrk: unexpected output: %s", out)
	}
	total, _ := strconv.ParseInt(t[1], 10, 64)
	rps, _ := strconv.ParseFloat(r[1], 64)
	var errs int64
	var first string
	if m := wrkNon2xx.FindStringSubmatch(out); m != nil {
		n, _ := strconv.ParseInt(m[1], 10, 64)
		errs += n
		first = m[0]
	}
	if m := wrkSocket.FindStringSubmatch(out); m != nil {
		for _, f := range m[1:] {
			n, _ := strconv.ParseInt(f, 10, 64)
			errs += n
		}
		if first == "" {
			first = strings.TrimSpace(m[0])
		}
	}
	return total, rps, errs, first, nil
}

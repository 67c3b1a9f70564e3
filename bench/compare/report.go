package main

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

// machine describes where and when the run happened.
type machine struct {
	cores             int
	cpu, kernel, goV  string
	loadStart, loadUp string
	start             time.Time
	took              time.Duration
}

func newMachine() *machine {
	return &machine{
		cores:     runtime.NumCPU(),
		cpu:       cpuModel(),
		kernel:    strings.TrimSpace(readFile("/proc/sys/kernel/osrelease")),
		goV:       runtime.Version(),
		loadStart: loadAvg(),
		start:     time.Now().UTC(),
	}
}

func (m *machine) finish(took time.Duration) {
	m.took = took
	m.loadUp = loadAvg()
}

func readFile(name string) string {
	b, _ := os.ReadFile(name)
	return string(b)
}

func cpuModel() string {
	for line := range strings.SplitSeq(readFile("/proc/cpuinfo"), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

// loadAvg is the 1-minute load average.
func loadAvg() string {
	f := strings.Fields(readFile("/proc/loadavg"))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

// median of xs (the mean of the middle two for an even count); ok is
// false when xs is empty.
func median(xs []float64) (float64, bool) {
	if len(xs) == 0 {
		return 0, false
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2], true
	}
	return (s[n/2-1] + s[n/2]) / 2, true
}

// summary is a contender's medians.
type summary struct {
	rps, p50, p99, p999, satCPU, rateCPU, rss, hwm float64
	hasCPU                                         bool
	errors                                         int64
	rounds                                         int
}

func summarize(ss []sample) summary {
	pick := func(f func(sample) float64) float64 {
		xs := make([]float64, 0, len(ss))
		for _, s := range ss {
			xs = append(xs, f(s))
		}
		m, _ := median(xs)
		return m
	}
	out := summary{
		rps:     pick(func(s sample) float64 { return s.satRPS }),
		p50:     pick(func(s sample) float64 { return us(s.p50) }),
		p99:     pick(func(s sample) float64 { return us(s.p99) }),
		p999:    pick(func(s sample) float64 { return us(s.p999) }),
		satCPU:  pick(func(s sample) float64 { return s.satCPU1k }),
		rateCPU: pick(func(s sample) float64 { return s.rateCPU1k }),
		rss:     pick(func(s sample) float64 { return float64(s.rss) / (1 << 20) }),
		hwm:     pick(func(s sample) float64 { return float64(s.hwm) / (1 << 20) }),
		hasCPU:  len(ss) > 0 && ss[0].satCPU1k >= 0,
		rounds:  len(ss),
	}
	for _, s := range ss {
		out.errors += s.errors
	}
	return out
}

// ratio formats a/b to two places, or "–".
func ratio(a, b float64) string {
	if a <= 0 || b <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", a/b)
}

func render(m *machine, o runOptions, cs []*contender, results map[string][]sample) string {
	var b strings.Builder
	p := o.plan
	sat := "wrk -t1 -c" + fmt.Sprint(p.concurrency)
	if p.wrk == "" {
		sat = fmt.Sprintf("Go closed loop, %d connections", p.concurrency)
	}
	fmt.Fprintf(&b, "### Proxy overhead — %s\n\n", m.start.Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "Machine: %d cores (%s), Linux %s, %s. Load average %s at the start, %s at the end (a shared machine: others were compiling). Took %s.\n\n",
		m.cores, m.cpu, m.kernel, m.goV, m.loadStart, m.loadUp, m.took.Round(time.Second))
	fmt.Fprintf(&b, "Plan: %d interleaved rounds (the order rotates each round). Saturation: %s for %s. Fixed rate: %.0f req/s for %s (Go open loop, 64 connections at most; a request sent late because every connection was busy counts from its scheduled time). %s warm-up before each phase. Every value is the median over rounds.\n\n",
		o.rounds, sat, p.satDuration, p.rate, p.rateDuration, p.warmup)

	sums := map[string]summary{}
	for _, c := range cs {
		if len(results[c.name]) > 0 {
			sums[c.name] = summarize(results[c.name])
		}
	}
	sk, haveSK := sums["sidekey"]
	fmt.Fprintf(&b, "| contender | req/s at c=%d | ÷ sidekey | p50 µs | p99 µs | p99.9 µs | p99 ÷ sidekey | CPU ms/1k req, saturated | CPU ms/1k req, %.0f/s | CPU ÷ sidekey | RSS MiB | peak RSS MiB | errors |\n",
		p.concurrency, p.rate)
	b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, c := range cs {
		s, ok := sums[c.name]
		if !ok {
			why := c.skipped
			if why == "" {
				why = "every round failed"
			}
			fmt.Fprintf(&b, "| %s | not measured: %s | | | | | | | | | | | |\n", c.name, oneLine(why))
			continue
		}
		cpuSat, cpuRate, cpuRatio, rss, hwm := "–", "–", "–", "–", "–"
		if s.hasCPU {
			cpuSat, cpuRate = fmt.Sprintf("%.1f", s.satCPU), fmt.Sprintf("%.1f", s.rateCPU)
			rss, hwm = fmt.Sprintf("%.1f", s.rss), fmt.Sprintf("%.1f", s.hwm)
			if haveSK {
				cpuRatio = ratio(s.satCPU, sk.satCPU)
			}
		}
		rpsRatio, p99Ratio := "–", "–"
		if haveSK {
			rpsRatio, p99Ratio = ratio(s.rps, sk.rps), ratio(s.p99, sk.p99)
		}
		fmt.Fprintf(&b, "| %s | %.0f | %s | %.0f | %.0f | %.0f | %s | %s | %s | %s | %s | %s | %d |\n",
			c.name, s.rps, rpsRatio, s.p50, s.p99, s.p999, p99Ratio, cpuSat, cpuRate, cpuRatio, rss, hwm, s.errors)
	}
	b.WriteString("\n")
	writeBest(&b, cs, results)
	writeTargets(&b, sums, results)
	writeRounds(&b, cs, results)
	return b.String()
}

// best is a contender's best round in each measure: noise on a shared
// machine only ever lowers throughput and raises latency and CPU, so the
// best round is the closest to a quiet machine.
type best struct {
	rps, p50, p99, p999, satCPU, rateCPU float64
}

func bestOf(ss []sample) best {
	b := best{p50: math.Inf(1), p99: math.Inf(1), p999: math.Inf(1), satCPU: math.Inf(1), rateCPU: math.Inf(1)}
	for _, s := range ss {
		b.rps = max(b.rps, s.satRPS)
		b.p50, b.p99, b.p999 = min(b.p50, us(s.p50)), min(b.p99, us(s.p99)), min(b.p999, us(s.p999))
		b.satCPU, b.rateCPU = min(b.satCPU, s.satCPU1k), min(b.rateCPU, s.rateCPU1k)
	}
	return b
}

// writeBest prints every contender's best round in each measure.
func writeBest(b *strings.Builder, cs []*contender, results map[string][]sample) {
	b.WriteString("Best round of each measure (noise only lowers throughput and raises latency and CPU, so this is the closest to a quiet machine):\n\n")
	b.WriteString("| contender | req/s | p50 µs | p99 µs | p99.9 µs | CPU ms/1k req, saturated | CPU ms/1k req, fixed rate |\n")
	b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, c := range cs {
		ss := results[c.name]
		if len(ss) == 0 {
			continue
		}
		x := bestOf(ss)
		cpuSat, cpuRate := "–", "–"
		if x.satCPU >= 0 {
			cpuSat, cpuRate = fmt.Sprintf("%.1f", x.satCPU), fmt.Sprintf("%.1f", x.rateCPU)
		}
		fmt.Fprintf(b, "| %s | %.0f | %.0f | %.0f | %.0f | %s | %s |\n", c.name, x.rps, x.p50, x.p99, x.p999, cpuSat, cpuRate)
	}
	b.WriteString("\n")
}

// writeTargets checks issue 6's targets that this run can answer.
func writeTargets(b *strings.Builder, sums map[string]summary, results map[string][]sample) {
	sk, ok := sums["sidekey"]
	if !ok {
		return
	}
	b.WriteString("Targets:\n\n")
	verdict := func(met bool) string {
		if met {
			return "met"
		}
		return "**missed**"
	}
	if bare, ok := sums["bare"]; ok {
		r := sk.rps / bare.rps
		fmt.Fprintf(b, "- sidekey ≥ 0.9× the bare Go reverse proxy's throughput: %.2f× — %s\n", r, verdict(r >= 0.9))
	}
	if caddy, ok := sums["caddy"]; ok {
		r := sk.rps / caddy.rps
		fmt.Fprintf(b, "- sidekey ≥ Caddy's throughput: %.2f× — %s\n", r, verdict(r >= 1))
	}
	if direct, ok := sums["direct"]; ok {
		d := sk.p99 - direct.p99
		q := bestOf(results["sidekey"]).p99 - bestOf(results["direct"]).p99
		fmt.Fprintf(b, "- added p99 over direct ≤ 1 ms at a moderate rate: %+.0f µs (medians) — %s; %+.0f µs between the best rounds — %s\n",
			d, verdict(d <= 1000), q, verdict(q <= 1000))
	}
	b.WriteString("\n")
}

// writeRounds lists every round's raw numbers, so the spread is visible.
func writeRounds(b *strings.Builder, cs []*contender, results map[string][]sample) {
	b.WriteString("<details><summary>Every round</summary>\n\n")
	b.WriteString("| contender | round | req/s | p50 µs | p99 µs | p99.9 µs | max µs | CPU ms/1k sat | CPU ms/1k rate | errors |\n")
	b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, c := range cs {
		for i, s := range results[c.name] {
			fmt.Fprintf(b, "| %s | %d | %.0f | %.0f | %.0f | %.0f | %.0f | %s | %s | %d |\n",
				c.name, i+1, s.satRPS, us(s.p50), us(s.p99), us(s.p999), us(s.max), cpuCell(s.satCPU1k), cpuCell(s.rateCPU1k), s.errors)
			if s.firstError != "" {
				fmt.Fprintf(b, "| | | first error: %s | | | | | | | |\n", oneLine(s.firstError))
			}
		}
	}
	b.WriteString("\n</details>\n")
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	s = strings.ReplaceAll(s, "|", "/")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// cpuCell formats CPU ms per 1,000 requests; negative means not measured.
func cpuCell(v float64) string {
	if v < 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f", v)
}

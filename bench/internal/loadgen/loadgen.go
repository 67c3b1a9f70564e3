// Package loadgen is the harness's HTTP load generator. It runs in two
// modes over keep-alive connections:
//
//   - closed loop (Rate == 0): Concurrency workers each send a request as
//     soon as the previous one is answered, which measures throughput at
//     saturation;
//   - open loop (Rate > 0): requests are due on a fixed schedule (request i
//     at start + i/Rate). A request that could not be sent when it was due,
//     because every worker was still waiting for an answer, has its
//     latency measured from when it was due, not from when it was sent: a
//     stalled server therefore charges every request that should have been
//     sent meanwhile (the coordinated-omission correction of wrk2 and
//     HdrHistogram). A request whose worker was idle, sleeping until it was
//     due, is measured from when it was sent, so that the timer's own
//     oversleeping (up to a millisecond on a busy VM) is not counted.
//
// Every response body is read to the end; a response with another status
// than Options.Status, or a transport error, counts as an error.
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Options configures a run. Zero values mean the defaults given.
type Options struct {
	// URLs are requested in turn (request i gets URLs[i%len]). Required.
	URLs []string
	// Header is added to every request (e.g. Authorization when calling
	// the upstream directly).
	Header http.Header
	// Concurrency is the number of workers and connections. Default 32.
	Concurrency int
	// Rate is the open-loop schedule in requests per second; 0 runs a
	// closed loop.
	Rate float64
	// Duration is the measured time. Default 10s.
	Duration time.Duration
	// Warmup runs the same load first, unmeasured. Default 0.
	Warmup time.Duration
	// Status is the expected response status. Default 200.
	Status int
	// OnStart, when set, is called after the warmup, just before the
	// measured run (to take a CPU reading, say).
	OnStart func()
	// Client sends the requests. Default: a keep-alive transport sized
	// for Concurrency.
	Client *http.Client
}

// Result is the outcome of a measured run.
type Result struct {
	Requests int64         // completed requests (errors included)
	Errors   int64         // transport errors and unexpected statuses
	Elapsed  time.Duration // measured wall time
	// Latency is per request: in open loop from when the request was due
	// or, when its worker was idle until then, sent (coordinated-omission
	// corrected); in closed loop from when it was sent.
	Latency Samples
	// Service is per request from when it was actually sent, in both
	// modes.
	Service Samples
	// FirstError describes the first error seen, if any.
	FirstError string
}

// RPS is completed requests per second of measured time.
func (r Result) RPS() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// NewClient returns a client with a keep-alive pool of n connections per
// host, no compression, HTTP/1.1 only.
func NewClient(n int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		MaxIdleConns:        n,
		MaxIdleConnsPerHost: n,
		MaxConnsPerHost:     n,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}}
}

func (o Options) withDefaults() (Options, error) {
	if len(o.URLs) == 0 {
		return o, errors.New("loadgen: no URLs")
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 32
	}
	if o.Duration <= 0 {
		o.Duration = 10 * time.Second
	}
	if o.Status == 0 {
		o.Status = http.StatusOK
	}
	if o.Client == nil {
		o.Client = NewClient(o.Concurrency)
	}
	return o, nil
}

// Run performs the warmup (if any) and the measured run, then returns the
// measured result. It stops early when ctx is done.
func Run(ctx context.Context, opts Options) (Result, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return Result{}, err
	}
	if opts.Warmup > 0 {
		w := opts
		w.Duration = opts.Warmup
		if _, err := run(ctx, w); err != nil {
			return Result{}, err
		}
	}
	if opts.OnStart != nil {
		opts.OnStart()
	}
	return run(ctx, opts)
}

// worker is one sender's private tally, merged at the end.
type worker struct {
	latency, service Samples
	requests, errors int64
	firstErr         string
}

// maxCachedURLs is the most URLs for which each worker keeps its own
// prepared requests.
const maxCachedURLs = 64

func run(ctx context.Context, opts Options) (Result, error) {
	proto := make([]*http.Request, len(opts.URLs))
	for i, u := range opts.URLs {
		r, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return Result{}, fmt.Errorf("loadgen: %w", err)
		}
		for k, v := range opts.Header {
			r.Header[k] = v
		}
		proto[i] = r
	}
	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		workers = make([]*worker, opts.Concurrency)
		start   = time.Now().Add(time.Millisecond)
		end     = start.Add(opts.Duration)
	)
	var interval float64 // nanoseconds between due times; 0: closed loop
	if opts.Rate > 0 {
		interval = float64(time.Second) / opts.Rate
	}
	for w := range workers {
		wk := &worker{}
		workers[w] = wk
		// A Request must not be shared by concurrent round trips: each
		// worker clones its own, ahead for a few URLs, per request for
		// many (thousands of tenants).
		var reqs []*http.Request
		if len(proto) <= maxCachedURLs {
			reqs = make([]*http.Request, len(proto))
			for i, r := range proto {
				reqs[i] = r.Clone(ctx)
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				now := time.Now()
				due, waited := now, false
				if interval > 0 {
					due = start.Add(time.Duration(float64(i) * interval))
					if !due.Before(end) {
						return
					}
					if d := due.Sub(now); d > 0 {
						sleep(ctx, d)
						waited = true
					}
				} else if !due.Before(end) {
					return
				}
				sent := time.Now()
				if waited {
					// The worker was idle until the request was due: how
					// late its timer fired is the generator's slack (Go
					// timers oversleep by up to a millisecond on a busy
					// VM), not the server's doing.
					due = sent
				}
				var req *http.Request
				if reqs != nil {
					req = reqs[int(i%int64(len(reqs)))]
				} else {
					req = proto[int(i%int64(len(proto)))].Clone(ctx)
				}
				err := send(opts.Client, req, opts.Status)
				done := time.Now()
				wk.requests++
				if err != nil {
					wk.errors++
					if wk.firstErr == "" {
						wk.firstErr = err.Error()
					}
				}
				if interval > 0 {
					wk.latency = append(wk.latency, done.Sub(due))
				} else {
					wk.latency = append(wk.latency, done.Sub(sent))
				}
				wk.service = append(wk.service, done.Sub(sent))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if interval > 0 {
		elapsed = opts.Duration // the schedule, not the stragglers' tail
	}
	res := Result{Elapsed: elapsed}
	for _, wk := range workers {
		res.Requests += wk.requests
		res.Errors += wk.errors
		res.Latency = append(res.Latency, wk.latency...)
		res.Service = append(res.Service, wk.service...)
		if res.FirstError == "" {
			res.FirstError = wk.firstErr
		}
	}
	res.Latency.Sort()
	res.Service.Sort()
	return res, ctx.Err()
}

// send makes one request and reads the whole answer.
func send(c *http.Client, req *http.Request, want int) error {
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		return fmt.Errorf("status %d (error header %q)", resp.StatusCode, resp.Header.Get("X-Sidekey-Error"))
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

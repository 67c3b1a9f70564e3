package proxy

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// RateLimit is a tenant's outbound request budget: a token bucket of Burst
// requests refilled at RPS per second. A request that would wait longer
// than MaxWait for its turn is refused with 429 rate_limited instead. The
// zero value (RPS 0) means no limit.
type RateLimit struct {
	RPS     float64       // sustained requests per second; 0: unlimited
	Burst   int           // bucket size; default max(1, ceil(RPS))
	MaxWait time.Duration // longest a request queues for its turn; default 10s
	// Shared is the tenant's bucket shared by every replica
	// (store.SharedBucket with a redis store): requests are admitted
	// fleet-wide, and an upstream 429's Retry-After pauses every replica.
	// While it cannot be reached each replica admits RPS and Burst divided
	// by the replicas last seen alive, never without a limit. Nil: the
	// bucket is this process's own.
	Shared SharedBucket
}

// SharedBucket is a request budget shared by several processes (a GCRA in
// Redis; store.RateBucket implements it). It must be safe for concurrent
// use.
type SharedBucket interface {
	// Reserve takes the next turn of a bucket admitting rps requests per
	// second in bursts of burst and returns the wait for it; when the wait
	// would exceed maxWait it takes nothing and returns ok false. An error
	// means the shared bucket cannot be reached.
	Reserve(ctx context.Context, rps float64, burst int, maxWait time.Duration) (wait time.Duration, ok bool, err error)
	// Pause holds every sharer's requests back for d.
	Pause(ctx context.Context, d time.Duration) error
	// Sharers is how many processes share the bucket, at least 1.
	Sharers() int
}

// sharedTimeout bounds one round trip to the shared bucket: past it the
// request is admitted by the per-replica fallback instead.
const sharedTimeout = 500 * time.Millisecond

// maxUpstreamPause caps how long an upstream 429's Retry-After pauses a
// tenant, so a bogus header cannot stall it for hours.
const maxUpstreamPause = 60 * time.Second

// limiter paces one tenant's requests: its own bucket, and a pause set when
// the upstream itself answered 429 with Retry-After.
type limiter struct {
	bucket  *rate.Limiter // nil: no own limit
	maxWait time.Duration
	pause   atomic.Int64 // unix nanos until which the upstream asked us to wait

	shared     SharedBucket // nil: bucket is the limit
	rps        float64      // the limit, for shared
	burst      int
	fallbackMu sync.Mutex    // guards fallback and fallbackN
	fallback   *rate.Limiter // this replica's share while shared is unreachable
	fallbackN  int           // the sharers fallback was sized for
}

func newLimiter(rl RateLimit) *limiter {
	l := &limiter{maxWait: rl.MaxWait}
	if l.maxWait <= 0 {
		l.maxWait = 10 * time.Second
	}
	if rl.RPS > 0 {
		burst := rl.Burst
		if burst <= 0 {
			burst = max(1, int(rl.RPS+0.999))
		}
		if rl.Shared != nil {
			l.shared, l.rps, l.burst = rl.Shared, rl.RPS, burst
			return l
		}
		l.bucket = rate.NewLimiter(rate.Limit(rl.RPS), burst)
	}
	return l
}

// rateLimitedError says how long the caller should wait before retrying.
type rateLimitedError struct{ retryAfter time.Duration }

// Error says when to retry.
func (e *rateLimitedError) Error() string {
	return "too many requests for this tenant: retry after " + e.retryAfter.Round(time.Second).String()
}

// wait blocks until the request may go, or returns a *rateLimitedError when
// its turn is more than maxWait (or the caller's deadline) away, or ctx's
// error when the caller gives up. It reports how long it waited.
func (l *limiter) wait(ctx context.Context) (time.Duration, error) {
	if l.shared != nil {
		return l.waitShared(ctx)
	}
	return l.waitOn(ctx, l.bucket)
}

// waitShared is wait with the fleet's bucket, or this replica's share of
// it while the bucket cannot be reached.
func (l *limiter) waitShared(ctx context.Context) (time.Duration, error) {
	limit := l.maxWait
	if dl, ok := ctx.Deadline(); ok {
		limit = min(limit, time.Until(dl))
	}
	sctx, cancel := context.WithTimeout(ctx, sharedTimeout)
	delay, ok, err := l.shared.Reserve(sctx, l.rps, l.burst, limit)
	cancel()
	switch {
	case err != nil && ctx.Err() != nil:
		return 0, ctx.Err()
	case err != nil:
		return l.waitOn(ctx, l.fallbackBucket())
	case !ok:
		return 0, &rateLimitedError{retryAfter: delay}
	}
	if until := l.pause.Load(); until > time.Now().UnixNano() {
		delay = max(delay, time.Duration(until-time.Now().UnixNano()))
	}
	if delay > limit {
		return 0, &rateLimitedError{retryAfter: delay}
	}
	if delay == 0 {
		return 0, nil
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
		return delay, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// fallbackBucket returns this replica's share of the shared limit: RPS and
// Burst divided by the sharers last seen.
func (l *limiter) fallbackBucket() *rate.Limiter {
	n := max(l.shared.Sharers(), 1)
	l.fallbackMu.Lock()
	defer l.fallbackMu.Unlock()
	if l.fallback == nil || l.fallbackN != n {
		l.fallback = rate.NewLimiter(rate.Limit(l.rps/float64(n)), max(1, l.burst/n))
		l.fallbackN = n
	}
	return l.fallback
}

// waitOn is wait with bucket (nil: none) and the upstream's pause.
func (l *limiter) waitOn(ctx context.Context, bucket *rate.Limiter) (time.Duration, error) {
	if bucket == nil && l.pause.Load() == 0 {
		return 0, nil // the common case: no limit, never paused
	}
	now := time.Now()
	delay := time.Duration(0)
	if until := l.pause.Load(); until > now.UnixNano() {
		delay = time.Duration(until - now.UnixNano())
	}
	var res *rate.Reservation
	if bucket != nil {
		res = bucket.ReserveN(now.Add(delay), 1)
		if !res.OK() {
			return 0, &rateLimitedError{retryAfter: l.maxWait}
		}
		delay += res.DelayFrom(now.Add(delay))
	}
	if delay == 0 {
		return 0, nil
	}
	limit := l.maxWait
	if dl, ok := ctx.Deadline(); ok {
		limit = min(limit, time.Until(dl))
	}
	if delay > limit {
		if res != nil {
			res.CancelAt(now)
		}
		return 0, &rateLimitedError{retryAfter: delay}
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
		return delay, nil
	case <-ctx.Done():
		if res != nil {
			res.Cancel()
		}
		return 0, ctx.Err()
	}
}

// pauseFor holds the tenant's requests back for d (capped), after the
// upstream answered 429.
func (l *limiter) pauseFor(d time.Duration) {
	d = min(d, maxUpstreamPause)
	if l.shared != nil {
		// Every replica's next turn waits for the pause. Should the bucket
		// be unreachable, this replica still pauses; the others learn of
		// the pause from their own 429s.
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), sharedTimeout)
			defer cancel()
			_ = l.shared.Pause(ctx, d)
		}()
	}
	until := time.Now().Add(d).UnixNano()
	for {
		cur := l.pause.Load()
		if cur >= until || l.pause.CompareAndSwap(cur, until) {
			return
		}
	}
}

// retryAfter parses a Retry-After header (seconds or an HTTP date); ok is
// false when absent or unparsable.
func retryAfter(h http.Header) (time.Duration, bool) {
	v := h.Get("Retry-After")
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.Atoi(v); err == nil && secs >= 0 {
		return time.Duration(secs) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0), true
	}
	return 0, false
}

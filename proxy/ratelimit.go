package proxy

import (
	"context"
	"net/http"
	"strconv"
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
}

// maxUpstreamPause caps how long an upstream 429's Retry-After pauses a
// tenant, so a bogus header cannot stall it for hours.
const maxUpstreamPause = 60 * time.Second

// limiter paces one tenant's requests: its own bucket, and a pause set when
// the upstream itself answered 429 with Retry-After.
type limiter struct {
	bucket  *rate.Limiter // nil: no own limit
	maxWait time.Duration
	pause   atomic.Int64 // unix nanos until which the upstream asked us to wait
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
	if l.bucket == nil && l.pause.Load() == 0 {
		return 0, nil // the common case: no limit, never paused
	}
	now := time.Now()
	delay := time.Duration(0)
	if until := l.pause.Load(); until > now.UnixNano() {
		delay = time.Duration(until - now.UnixNano())
	}
	var res *rate.Reservation
	if l.bucket != nil {
		res = l.bucket.ReserveN(now.Add(delay), 1)
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

package store

import (
	"context"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// A redis store also keeps request budgets that every process sharing it
// draws from: one GCRA bucket per name (a tenant), a pause an upstream
// 429 asked for, and a heartbeat per process so that each knows how many
// share the budget when Redis cannot be reached.
//
// Keys: {Prefix}:rl:{name}:tat (the bucket's theoretical arrival time, ms)
// and {Prefix}:rl:{name}:pause (unix ms until which the upstream asked to
// wait) share the hash tag {name}, so the script reading both runs on one
// cluster slot; {Prefix}:rl:replicas is a sorted set of process ids scored
// by when their heartbeat runs out.

// Heartbeats: each process renews its own every heartbeatEvery; one not
// renewed for heartbeatTTL no longer counts.
const (
	heartbeatEvery = 2 * time.Second
	heartbeatTTL   = 3 * heartbeatEvery
)

// RateBucket is one name's request budget, shared by every process on the
// store. It is safe for concurrent use.
type RateBucket interface {
	// Reserve takes the next turn of a bucket admitting rps requests per
	// second with bursts of burst, and returns how long the caller must
	// wait for it (0: go now). When that wait would exceed maxWait it
	// takes nothing and returns ok false with the wait. An error means the
	// shared bucket cannot be reached (it matches ErrUnavailable).
	Reserve(ctx context.Context, rps float64, burst int, maxWait time.Duration) (wait time.Duration, ok bool, err error)
	// Pause holds every process's requests back for d from now (an
	// upstream 429's Retry-After); a longer pause already set stays.
	Pause(ctx context.Context, d time.Duration) error
	// Sharers returns how many processes share the bucket: those whose
	// heartbeat was seen last, at least 1.
	Sharers() int
}

// SharedBucket returns name's request budget shared by every process on
// s, or nil when s is not shared with other processes (memory and file
// stores): the caller then limits on its own. The first call starts the
// store's heartbeat, which ends with Close.
func SharedBucket(s Store, name string) RateBucket {
	if sb, ok := s.(interface{ sharedBucket(string) RateBucket }); ok {
		return sb.sharedBucket(name)
	}
	return nil
}

// sharedBucket implements SharedBucket for a sealed store: buckets hold no
// secret, so they live unsealed in the inner store.
func (ss *sealedStore) sharedBucket(name string) RateBucket { return SharedBucket(ss.inner, name) }

// sharedBucket implements SharedBucket.
func (r *redisStore) sharedBucket(name string) RateBucket {
	r.fleetOnce.Do(r.startHeartbeat)
	return &redisBucket{r: r, name: name}
}

// fleet is a redis store's heartbeat state.
type fleet struct {
	id      string       // this process's member in the heartbeat set
	sharers atomic.Int64 // processes seen at the last heartbeat
}

// startHeartbeat registers this process and keeps its heartbeat until
// Close.
func (r *redisStore) startHeartbeat() {
	r.fleet.id = newOwner()
	r.fleet.sharers.Store(1)
	r.heartbeat()
	go func() {
		t := time.NewTicker(heartbeatEvery)
		defer t.Stop()
		for {
			select {
			case <-r.base.Done():
				return // the heartbeat runs out after heartbeatTTL
			case <-t.C:
				r.heartbeat()
			}
		}
	}()
}

// heartbeat renews this process's heartbeat and counts the live ones.
func (r *redisStore) heartbeat() {
	ctx, cancel := context.WithTimeout(r.base, redisIOTimeout)
	defer cancel()
	n, err := r.rate.heartbeat.Run(ctx, r.client, []string{r.replicasKey()}, r.fleet.id, heartbeatTTL.Milliseconds()).Int64()
	if err != nil {
		if !r.isClosed() {
			r.log.Debug("rate-limit heartbeat failed; keeping the last count", zap.Error(r.fail(ctx, "heartbeat", err)))
		}
		return
	}
	r.fleet.sharers.Store(max(n, 1))
}

// Keys of the shared rate limits.
func (r *redisStore) bucketKey(name, what string) string {
	return r.prefix + "rl:{" + name + "}:" + what
}
func (r *redisStore) replicasKey() string { return r.prefix + "rl:replicas" }

// redisBucket is one name's RateBucket in a redis store.
type redisBucket struct {
	r    *redisStore
	name string
}

// Reserve implements RateBucket with the GCRA script.
func (b *redisBucket) Reserve(ctx context.Context, rps float64, burst int, maxWait time.Duration) (time.Duration, bool, error) {
	if rps <= 0 || math.IsInf(rps, 0) || math.IsNaN(rps) {
		return 0, false, fmt.Errorf("store: rate %v is not a positive number", rps)
	}
	if b.r.isClosed() {
		return 0, false, ErrClosed
	}
	emission := 1000 / rps // ms between requests
	res, err := b.r.rate.gcra.Run(ctx, b.r.client,
		[]string{b.r.bucketKey(b.name, "tat"), b.r.bucketKey(b.name, "pause")},
		emission, max(burst, 1), maxWait.Milliseconds()).Int64Slice()
	if err != nil {
		return 0, false, b.r.fail(ctx, fmt.Sprintf("rate limit %q", b.name), err)
	}
	if len(res) != 2 {
		return 0, false, fmt.Errorf("store: rate limit %q: unexpected answer %v", b.name, res)
	}
	return time.Duration(res[1]) * time.Millisecond, res[0] == 1, nil
}

// Pause implements RateBucket.
func (b *redisBucket) Pause(ctx context.Context, d time.Duration) error {
	if b.r.isClosed() {
		return ErrClosed
	}
	err := b.r.rate.pause.Run(ctx, b.r.client, []string{b.r.bucketKey(b.name, "pause")}, max(d.Milliseconds(), 1)).Err()
	return b.r.fail(ctx, fmt.Sprintf("pause %q", b.name), err)
}

// Sharers implements RateBucket.
func (b *redisBucket) Sharers() int { return int(max(b.r.fleet.sharers.Load(), 1)) }

// Scripts of the shared rate limits. Time is the server's (TIME), so the
// processes' clocks need not agree.
const (
	// gcraLua: KEYS[1] the bucket's tat, KEYS[2] its pause; ARGV ms
	// between requests, burst, longest wait in ms. Returns {1, wait ms}
	// with the turn taken, or {0, wait ms} when the wait is too long.
	gcraLua = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local emission = tonumber(ARGV[1])
local tolerance = emission * tonumber(ARGV[2])
local start = math.max(now, tonumber(redis.call('GET', KEYS[2]) or '0'))
local tat = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), start)
local newtat = tat + emission
local wait = math.ceil(math.max(newtat - tolerance, start) - now)
if wait > tonumber(ARGV[3]) then
  return {0, wait}
end
redis.call('SET', KEYS[1], string.format('%.3f', newtat), 'PX', math.ceil(newtat - now) + 1000)
return {1, wait}`

	// pauseLua: KEYS[1] the pause; ARGV its length in ms. Keeps a later
	// pause already set.
	pauseLua = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local untl = now + tonumber(ARGV[1])
if untl > tonumber(redis.call('GET', KEYS[1]) or '0') then
  redis.call('SET', KEYS[1], string.format('%d', untl), 'PX', ARGV[1])
end
return 1`

	// heartbeatLua: KEYS[1] the heartbeat set; ARGV member, ttl in ms.
	// Renews the member, drops the ones that ran out, returns the count.
	heartbeatLua = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return redis.call('ZCARD', KEYS[1])`
)

// rateScripts are the shared rate limits' scripts.
type rateScripts struct {
	gcra, pause, heartbeat *redis.Script
}

// newRateScripts prepares them.
func newRateScripts() rateScripts {
	return rateScripts{gcra: redis.NewScript(gcraLua), pause: redis.NewScript(pauseLua), heartbeat: redis.NewScript(heartbeatLua)}
}

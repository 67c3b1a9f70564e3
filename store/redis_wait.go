package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// ErrNotReplicated matches the error of a write the primary applied but
// fewer than RedisOptions.MinReplicasAck replicas acknowledged in time. It
// also matches ErrUnavailable: the value may be lost in a failover, so the
// caller treats the write as not done — keeps what it used before and
// writes again. A retried CompareAndSwap that finds its new value already
// stored reports a swap and waits for the replicas again (see Seal).
var ErrNotReplicated = errors.New("store: write not acknowledged by enough replicas")

// notReplicatedError is the error for a write fewer replicas acknowledged
// than the store needs.
type notReplicatedError struct {
	addr      string        // the deployment
	op        string        // the write
	got, want int           // replicas that acknowledged, and needed
	wait      time.Duration // how long WAIT waited
}

// Error says how many replicas acknowledged the write.
func (e *notReplicatedError) Error() string {
	return fmt.Sprintf("store: redis at %s: %s: acknowledged by %d of %d replicas within %v; the primary alone holds it",
		e.addr, e.op, e.got, e.want, e.wait)
}

// Unwrap returns ErrNotReplicated and ErrUnavailable.
func (e *notReplicatedError) Unwrap() []error { return []error{ErrNotReplicated, ErrUnavailable} }

// write runs do, a write of the value key, against its primary. When the
// store waits for replicas and do reports that it changed something, it
// then sends WAIT on the same connection, so that Redis counts the replicas
// holding this very write, and returns a notReplicatedError when too few
// acknowledge it within the store's AckTimeout.
func (r *redisStore) write(ctx context.Context, key, op string, do func(c redis.Scripter) (changed bool, err error)) error {
	return r.writeRedisKey(ctx, r.dataKey(key), op, func(c redis.Cmdable) (bool, error) { return do(c) })
}

// writeRedisKey is write for any Redis key the store keeps (a lock lease,
// too).
func (r *redisStore) writeRedisKey(ctx context.Context, redisKey, op string, do func(c redis.Cmdable) (changed bool, err error)) error {
	if r.acks == 0 {
		_, err := do(r.client)
		return err
	}
	primary, err := r.primaryFor(ctx, redisKey)
	if err != nil {
		return err
	}
	conn := primary.Conn()
	defer conn.Close()
	changed, err := do(conn)
	if err != nil || !changed {
		return err
	}
	n, err := conn.Wait(ctx, r.acks, r.ackWait).Result()
	if err != nil {
		return err
	}
	if int(n) < r.acks {
		return &notReplicatedError{addr: r.addr, op: op, got: int(n), want: r.acks, wait: r.ackWait}
	}
	return nil
}

// warnFewReplicas logs a warning when the primary has fewer replicas
// connected than the store waits for: every write fails until they
// connect (a cluster without replicas needs min_replicas_ack 0).
func (r *redisStore) warnFewReplicas(ctx context.Context) {
	primary, err := r.primaryFor(ctx, r.metaKey(canaryRecord))
	if err != nil {
		return
	}
	info, err := primary.Info(ctx, "replication").Result()
	if err != nil {
		return
	}
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "connected_slaves:"); ok {
			if n, err := strconv.Atoi(v); err == nil && n < r.acks {
				r.log.Warn("the redis primary has fewer replicas than min_replicas_ack: every token write fails until enough connect",
					zap.Int("replicas", n), zap.Int("min_replicas_ack", r.acks))
			}
			return
		}
	}
}

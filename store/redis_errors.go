package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// fail turns a go-redis error from operation op into ours: nil stays nil,
// a closed client is ErrClosed, the caller's cancellation stays the
// caller's, an error reply from a working server is passed on, and
// anything else — no connection, a timeout, a server that is loading or
// read-only — is an unavailableError.
func (r *redisStore) fail(ctx context.Context, op string, err error) error {
	var reply redis.Error
	var unacked *notReplicatedError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &unacked):
		return err // already says where and what
	case r.isClosed() || errors.Is(err, redis.ErrClosed):
		return ErrClosed
	case ctx.Err() != nil:
		return fmt.Errorf("store: redis at %s: %s: %w", r.addr, op, ctx.Err())
	case deadlinePassed(ctx):
		// go-redis bounds the socket by ctx's deadline: its i/o timeout
		// can come a moment before ctx says so itself. It is the caller's
		// deadline, not Redis going away.
		return fmt.Errorf("store: redis at %s: %s: %w", r.addr, op, context.DeadlineExceeded)
	case errors.As(err, &reply) && !serverUnavailable(err):
		return fmt.Errorf("store: redis at %s: %s: %w", r.addr, op, err)
	}
	if cc, ok := r.client.(*redis.ClusterClient); ok {
		// A master may have failed over: go-redis reloads the slot map on
		// MOVED, but not when the old master stops answering.
		cc.ReloadState(ctx)
	}
	return &unavailableError{addr: r.addr, op: op, err: err}
}

// deadlinePassed reports whether ctx has a deadline and it has passed.
func deadlinePassed(ctx context.Context) bool {
	dl, ok := ctx.Deadline()
	return ok && !time.Now().Before(dl)
}

// serverUnavailable reports whether an error reply means the server cannot
// serve for now rather than that the request is wrong.
func serverUnavailable(err error) bool {
	return redis.IsLoadingError(err) || redis.IsReadOnlyError(err) || redis.IsMasterDownError(err) ||
		redis.IsTryAgainError(err) || redis.IsClusterDownError(err) || redis.IsMaxClientsError(err) ||
		redis.HasErrorPrefix(err, "BUSY")
}

// unavailableError is the error for a Redis server that cannot be reached.
// It matches ErrUnavailable and the underlying error.
type unavailableError struct {
	addr string // the server
	op   string // what was being done
	err  error  // from go-redis
}

// Error names the server and the operation.
func (e *unavailableError) Error() string {
	return fmt.Sprintf("store: redis at %s is unavailable (%s): %v", e.addr, e.op, e.err)
}

// Unwrap returns ErrUnavailable and the cause.
func (e *unavailableError) Unwrap() []error { return []error{ErrUnavailable, e.err} }

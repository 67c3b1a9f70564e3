package store

import (
	"context"
	"errors"
	"net"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// Watch timing: a quiet subscription is pinged every watchPing and counts
// as broken when the next watchPing passes without an answer; a broken one
// is resubscribed after a jittered wait that starts at watchRetryMin and
// doubles up to watchRetryMax.
const (
	watchPing     = 30 * time.Second
	watchRetryMin = 100 * time.Millisecond
	watchRetryMax = 2 * time.Second
)

// Watch implements Watcher across every process sharing the server: every
// write through any store on the same server, DB and prefix publishes the
// key's name on the channel {prefix}:changes. Watch returns once its
// subscription is in place (or an error matching ErrUnavailable). When the
// subscription breaks — Redis restarted, the connection dropped — it
// resubscribes by itself and then reports every key under prefix once,
// since changes made meanwhile went unseen.
func (r *redisStore) Watch(ctx context.Context, prefix string) (<-chan string, error) {
	if err := r.beginPrefix(ctx, prefix); err != nil {
		return nil, err
	}
	ps, err := r.subscribe(ctx)
	if err != nil {
		return nil, err
	}
	out := make(chan string, watchBuffer)
	go r.watch(ctx, prefix, ps, out)
	return out, nil
}

// subscribe subscribes to the changes channel and waits for Redis to
// confirm it.
func (r *redisStore) subscribe(ctx context.Context) (*redis.PubSub, error) {
	ps := r.client.Subscribe(ctx, r.changes())
	msg, err := ps.ReceiveTimeout(ctx, redisIOTimeout)
	if err == nil {
		if _, ok := msg.(*redis.Subscription); !ok {
			err = errors.New("no subscription confirmation")
		}
	}
	if err != nil {
		ps.Close()
		return nil, r.fail(ctx, "watch", err)
	}
	return ps, nil
}

// watch forwards changed names under prefix to out until ctx is done or the
// store is closed, then closes out. ps is the first subscription.
func (r *redisStore) watch(ctx context.Context, prefix string, ps *redis.PubSub, out chan<- string) {
	defer close(out)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(r.base, cancel)
	defer stop()
	for {
		err := r.receive(ctx, ps, prefix, out)
		ps.Close()
		if ctx.Err() != nil {
			return
		}
		r.log.Warn("redis change notifications interrupted; resubscribing", zap.Error(r.fail(ctx, "watch", err)))
		if ps = r.resubscribe(ctx); ps == nil {
			return
		}
		r.log.Info("redis change notifications resumed")
		keys, err := r.List(ctx, prefix)
		if err != nil {
			continue // receive sees the same trouble and we come back here
		}
		for _, k := range keys {
			offer(out, k)
		}
	}
}

// receive forwards messages from ps until ctx is done or ps breaks, and
// returns why it stopped.
func (r *redisStore) receive(ctx context.Context, ps *redis.PubSub, prefix string, out chan<- string) error {
	stop := context.AfterFunc(ctx, func() { ps.Close() }) // wakes a blocked read
	defer stop()
	pinged := false
	for {
		msg, err := ps.ReceiveTimeout(ctx, watchPing)
		var ne net.Error
		switch {
		case err == nil:
		case errors.As(err, &ne) && ne.Timeout() && !pinged && ctx.Err() == nil:
			pinged = true // quiet: the next answer, or the lack of one, tells whether the line is alive
			if err := ps.Ping(ctx); err != nil {
				return err
			}
			continue
		default:
			return err
		}
		pinged = false
		// Anyone who may publish on the server can publish here: pass on
		// only well-formed key names.
		if m, ok := msg.(*redis.Message); ok && strings.HasPrefix(m.Payload, prefix) && checkKey(m.Payload) == nil {
			offer(out, m.Payload)
		}
	}
}

// resubscribe subscribes again, waiting between attempts, until it
// succeeds or ctx is done (then it returns nil).
func (r *redisStore) resubscribe(ctx context.Context) *redis.PubSub {
	wait := watchRetryMin
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(jitter(wait)):
		}
		if ps, err := r.subscribe(ctx); err == nil {
			return ps
		}
		wait = min(2*wait, watchRetryMax)
	}
}

package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// Polling for a lock someone else holds starts at lockPollMin and doubles
// up to lockPollMax, each wait jittered.
const (
	lockPollMin = 5 * time.Millisecond
	lockPollMax = 100 * time.Millisecond
)

// Lock implements Store with a lease in Redis: SET {prefix}:lock:{name}
// {owner} NX PX {LockTTL}, with a fresh random owner per acquisition. While
// the lock is held a goroutine extends the lease every LockTTL/3 if the
// owner still holds it; unlock stops that and deletes the lease if the
// owner still holds it, so a stale unlock never frees someone else's lock.
// Within the process, callers first queue on an in-process lock, so only
// one of them polls Redis for a given name. A failure to reach Redis is
// returned at once, matching ErrUnavailable.
func (r *redisStore) Lock(ctx context.Context, name string) (func(), error) {
	if err := checkLockName(name); err != nil {
		return nil, err
	}
	if r.isClosed() {
		return nil, ErrClosed
	}
	unlockLocal, err := r.locks.lock(ctx, name)
	if err != nil {
		return nil, err
	}
	l, err := r.acquire(ctx, name)
	if err != nil {
		unlockLocal()
		return nil, err
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			l.release()
			unlockLocal()
		})
	}, nil
}

// lease is a held Redis lock.
type lease struct {
	r     *redisStore
	name  string        // lock name, for logs
	key   string        // its Redis key
	owner string        // this acquisition's random token
	stop  chan struct{} // closed by release: stops renewing
	done  chan struct{} // closed when the renewing goroutine has returned
}

// acquire takes the lease on name, polling while someone else holds it,
// until ctx is done or the store is closed.
func (r *redisStore) acquire(ctx context.Context, name string) (*lease, error) {
	key, owner := r.lockKey(name), newOwner()
	wait := lockPollMin
	for {
		// With replicas to wait for, a lease counts once they hold it: a
		// lease only the old primary knew would let a second replica
		// refresh after a promotion.
		ok := false
		err := r.writeRedisKey(ctx, key, fmt.Sprintf("lock %q", name), func(c redis.Cmdable) (bool, error) {
			var err error
			ok, err = c.SetNX(ctx, key, owner, r.ttl).Result()
			return ok, err
		})
		if err != nil {
			// The SET may have been applied all the same (the caller gave
			// up, or the reply was lost): free the lease if it is ours, so
			// nobody waits for it to run out.
			go r.releaseOwner(key, owner, name)
			return nil, r.fail(ctx, fmt.Sprintf("lock %q", name), err)
		}
		if ok {
			l := &lease{r: r, name: name, key: key, owner: owner, stop: make(chan struct{}), done: make(chan struct{})}
			go l.keep()
			return l, nil
		}
		t := time.NewTimer(jitter(wait))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-r.base.Done():
			t.Stop()
			return nil, ErrClosed
		}
		wait = min(2*wait, lockPollMax)
	}
}

// keep renews the lease until release or Close. A lease found gone or
// taken by another owner is logged as lost and no longer renewed; a failed
// renewal is logged once per outage and tried again at the next tick.
func (l *lease) keep() {
	defer close(l.done)
	r := l.r
	if r.renew <= 0 {
		return
	}
	tick := time.NewTicker(r.renew)
	defer tick.Stop()
	failing := false
	for {
		select {
		case <-l.stop:
			return
		case <-r.base.Done():
			return
		case <-tick.C:
		}
		ctx, cancel := context.WithTimeout(r.base, redisIOTimeout)
		held, err := r.scripts.renew.Run(ctx, r.client, []string{l.key}, l.owner, r.ttl.Milliseconds()).Int()
		cancel()
		switch {
		case err != nil && r.isClosed():
			return
		case err != nil:
			if !failing {
				r.log.Warn("could not renew a lock lease; it is lost if this lasts past the lease",
					zap.String("lock", l.name), zap.Duration("lease", r.ttl), zap.Error(r.fail(context.Background(), "renew", err)))
			}
			failing = true
		case held == 0:
			r.log.Warn("lost a lock lease: it ran out or Redis lost it, and another holder may have the lock; writes are fenced by compare-and-swap",
				zap.String("lock", l.name))
			return
		default:
			if failing {
				r.log.Info("renewed a lock lease again", zap.String("lock", l.name))
			}
			failing = false
		}
	}
}

// release stops renewing and deletes the lease if this owner still holds
// it. When Redis cannot be reached the lease runs out by itself.
func (l *lease) release() {
	close(l.stop)
	<-l.done
	if err := l.r.releaseOwner(l.key, l.owner, l.name); err != nil {
		l.r.log.Warn("could not release a lock; it frees when its lease runs out",
			zap.String("lock", l.name), zap.Duration("lease", l.r.ttl), zap.Error(err))
	}
}

// releaseOwner deletes the lease at key if owner holds it. After Close it
// does nothing: the lease runs out by itself.
func (r *redisStore) releaseOwner(key, owner, name string) error {
	if r.isClosed() {
		return nil
	}
	ctx, cancel := context.WithTimeout(r.base, redisIOTimeout)
	defer cancel()
	err := r.scripts.release.Run(ctx, r.client, []string{key}, owner).Err()
	if err = r.fail(ctx, fmt.Sprintf("unlock %q", name), err); errors.Is(err, ErrClosed) {
		return nil
	}
	return err
}

// newOwner returns a random owner token for one acquisition.
func newOwner() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // never fails: crypto/rand crashes the program rather than return an error
	return hex.EncodeToString(b)
}

// jitter returns a random duration between d/2 and d.
func jitter(d time.Duration) time.Duration {
	return d/2 + mrand.N(d/2+1)
}

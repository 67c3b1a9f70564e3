package store

import (
	"context"
	"sync"
)

// lockTable is a set of named in-process locks whose waiters honour a
// context. It starts no goroutines; an entry lives only while someone holds
// or waits for its lock. The zero value is not usable: call newLockTable.
type lockTable struct {
	mu      sync.Mutex            // guards entries
	entries map[string]*lockEntry // by lock name
	closed  chan struct{}         // closed by close: wakes every waiter
	once    sync.Once             // guards close(closed)
}

// lockEntry is one named lock.
type lockEntry struct {
	held chan struct{} // capacity 1: full while the lock is held
	refs int           // holders and waiters; guarded by lockTable.mu
}

// newLockTable returns an empty lock table.
func newLockTable() *lockTable {
	return &lockTable{entries: make(map[string]*lockEntry), closed: make(chan struct{})}
}

// lock acquires the lock called name (already validated), waiting until it
// is free, ctx is done or the table is closed. The returned unlock is
// idempotent.
func (t *lockTable) lock(ctx context.Context, name string) (func(), error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	select {
	case <-t.closed:
		return nil, ErrClosed
	default:
	}

	t.mu.Lock()
	e := t.entries[name]
	if e == nil {
		e = &lockEntry{held: make(chan struct{}, 1)}
		t.entries[name] = e
	}
	e.refs++
	t.mu.Unlock()

	select {
	case e.held <- struct{}{}:
		var once sync.Once
		return func() {
			once.Do(func() {
				<-e.held
				t.release(name, e)
			})
		}, nil
	case <-ctx.Done():
		t.release(name, e)
		return nil, ctx.Err()
	case <-t.closed:
		t.release(name, e)
		return nil, ErrClosed
	}
}

// release drops one reference to e and forgets it when nobody holds or
// waits for it any more.
func (t *lockTable) release(name string, e *lockEntry) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e.refs--
	if e.refs == 0 {
		delete(t.entries, name)
	}
}

// close wakes every waiter with ErrClosed and makes later lock calls fail.
// It is idempotent.
func (t *lockTable) close() {
	t.once.Do(func() { close(t.closed) })
}

// size returns the number of live entries (for tests).
func (t *lockTable) size() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.entries)
}

package store

import (
	"context"
	"strings"
	"sync"
)

// watchBuffer is how many changed key names a watcher's channel holds
// before further names are dropped.
const watchBuffer = 64

// changeFeed fans changed key names out to in-process watchers; the memory
// and file stores implement Watcher with it. It starts no goroutines. The
// zero value is not usable: call newChangeFeed.
type changeFeed struct {
	mu     sync.Mutex           // guards subs and closed; held while sending, so no send meets a closed channel
	subs   map[*subscriber]bool // live watchers
	closed bool
}

// subscriber is one Watch call.
type subscriber struct {
	prefix string
	ch     chan string // buffered; closed when the watch ends
}

// newChangeFeed returns a feed without watchers.
func newChangeFeed() *changeFeed {
	return &changeFeed{subs: make(map[*subscriber]bool)}
}

// watch implements Watcher.Watch for a store that publishes to f.
func (f *changeFeed) watch(ctx context.Context, prefix string) (<-chan string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkPrefix(prefix); err != nil {
		return nil, err
	}
	sub := &subscriber{prefix: prefix, ch: make(chan string, watchBuffer)}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, ErrClosed
	}
	f.subs[sub] = true
	context.AfterFunc(ctx, func() { f.remove(sub) })
	return sub.ch, nil
}

// publish tells every watcher whose prefix matches that key changed,
// dropping the name for watchers whose channel is full.
func (f *changeFeed) publish(key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for sub := range f.subs {
		if strings.HasPrefix(key, sub.prefix) {
			offer(sub.ch, key)
		}
	}
}

// remove ends one watch.
func (f *changeFeed) remove(sub *subscriber) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.subs[sub] {
		delete(f.subs, sub)
		close(sub.ch)
	}
}

// close ends every watch and refuses new ones. It is idempotent.
func (f *changeFeed) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	for sub := range f.subs {
		delete(f.subs, sub)
		close(sub.ch)
	}
}

// offer sends name on out unless out is full.
func offer(out chan<- string, name string) {
	select {
	case out <- name:
	default:
	}
}

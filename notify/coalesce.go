package notify

import (
	"sync"
	"time"
)

// coalescer folds each tenant's events within a window: the first goes out
// at once, later ones wait for the window's end and only the last of them
// goes out, and only if its type differs from what went out before.
type coalescer struct {
	window time.Duration // <= 0: nothing is folded
	now    func() time.Time
	emit   func(*Event)
	folded func() // counts an event folded away

	mu      sync.Mutex // guards tenants, stopped
	tenants map[string]*slot
	stopped bool
}

// slot is one tenant's coalescing state.
type slot struct {
	sentAt   time.Time
	sentType string
	pending  *Event      // the latest event waiting for the window's end
	timer    *time.Timer // fires at the window's end while pending is set
}

func newCoalescer(window time.Duration, now func() time.Time, emit func(*Event)) *coalescer {
	return &coalescer{window: window, now: now, emit: emit, tenants: map[string]*slot{}}
}

// offer emits e now, or holds it until the tenant's window ends.
func (c *coalescer) offer(e *Event) {
	if c.window <= 0 {
		c.emit(e)
		return
	}
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return
	}
	now := c.now()
	s := c.tenants[e.Data.Tenant]
	if s == nil {
		s = &slot{}
		c.tenants[e.Data.Tenant] = s
	}
	if s.pending == nil && (s.sentAt.IsZero() || now.Sub(s.sentAt) >= c.window) {
		s.sentAt, s.sentType = now, e.Type
		c.mu.Unlock()
		c.emit(e)
		return
	}
	if s.pending != nil && implies(s.pending.Type, e.Type) {
		// The pending event already says it (a disconnect says consent is
		// required): keep it, so the explicit one is what goes out.
		c.mu.Unlock()
		if c.folded != nil {
			c.folded()
		}
		return
	}
	if s.pending != nil && c.folded != nil {
		c.folded()
	}
	s.pending = e
	if s.timer == nil {
		tenant := e.Data.Tenant
		s.timer = time.AfterFunc(max(s.sentAt.Add(c.window).Sub(now), 0), func() { c.flush(tenant) })
	}
	c.mu.Unlock()
}

// flush ends tenant's window: its pending event goes out if it changes
// what the receiver was last told, and opens a new window.
func (c *coalescer) flush(tenant string) {
	c.mu.Lock()
	s := c.tenants[tenant]
	if c.stopped || s == nil || s.pending == nil {
		c.mu.Unlock()
		return
	}
	e := s.pending
	s.pending, s.timer = nil, nil
	if implies(s.sentType, e.Type) {
		c.mu.Unlock()
		if c.folded != nil {
			c.folded()
		}
		return
	}
	s.sentAt, s.sentType = c.now(), e.Type
	c.mu.Unlock()
	c.emit(e)
}

// stop cancels every pending event.
func (c *coalescer) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopped = true
	for _, s := range c.tenants {
		if s.timer != nil {
			s.timer.Stop()
		}
	}
}

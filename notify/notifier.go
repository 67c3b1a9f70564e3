package notify

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Endpoint is one webhook receiver.
type Endpoint struct {
	// URL receives a POST per event.
	URL string
	// Key is the signing key: the decoded "whsec_" secret (ParseSecret).
	Key []byte
	// Events are the event types it wants. Empty: all of them.
	Events []string
}

// wants reports whether the endpoint takes events of typ.
func (ep *Endpoint) wants(typ string) bool {
	if len(ep.Events) == 0 {
		return true
	}
	for _, t := range ep.Events {
		if t == typ {
			return true
		}
	}
	return false
}

// Options configures a Notifier. Zero values take the defaults given.
type Options struct {
	// Endpoints receive the events. None: Publish does nothing.
	Endpoints []Endpoint
	// Claims is the store replicas share, for sending each event once
	// across the fleet. Nil: no coordination, every event is sent.
	Claims Claims
	// Logger receives delivery failures. Default: nop.
	Logger *zap.Logger
	// Registerer takes the metrics. Nil: they are not registered.
	Registerer prometheus.Registerer
	// Client sends the requests. Default: a client with a 15s timeout.
	// Whatever client is given, redirects are never followed.
	Client *http.Client
	// QueueSize bounds the events waiting for each endpoint (and for the
	// claim step). Default 256.
	QueueSize int
	// MaxAttempts bounds the tries of one delivery. Default 8.
	MaxAttempts int
	// Backoff is the wait before the second attempt; it doubles each time,
	// with jitter, up to MaxBackoff. Defaults 1s and 5m.
	Backoff, MaxBackoff time.Duration
	// Coalesce is the window within which one tenant's events are folded
	// into one. Default 30s; negative: no coalescing.
	Coalesce time.Duration
	// Lease is how long a claim holds before another replica may take an
	// unfinished announcement over. Default 30m: longer than the retry
	// schedule.
	Lease time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Notifier delivers events to webhooks. Create it with New, feed it with
// Publish, stop it with Close. It is safe for concurrent use.
type Notifier struct {
	endpoints []*endpoint
	claims    Claims
	log       *zap.Logger
	client    *http.Client
	metrics   *metrics
	now       func() time.Time
	lease     time.Duration
	attempts  int
	backoff   time.Duration
	maxWait   time.Duration

	coalesce *coalescer
	intake   chan queued // events waiting for their claim
	ctx      context.Context
	cancel   context.CancelFunc
	workers  sync.WaitGroup
	timers   sync.WaitGroup // rechecks scheduled for claims held elsewhere
	closed   atomic.Bool

	mu          sync.Mutex // guards lastError, lastErrorAt, rechecks
	lastError   string
	lastErrorAt time.Time
	rechecks    map[string]bool // tenants with a recheck waiting
}

// New starts a Notifier: one goroutine claims events, one per endpoint
// delivers them.
func New(opts Options) *Notifier {
	n := &Notifier{
		claims:   opts.Claims,
		log:      opts.Logger,
		now:      opts.Now,
		lease:    opts.Lease,
		attempts: opts.MaxAttempts,
		backoff:  opts.Backoff,
		maxWait:  opts.MaxBackoff,
		metrics:  newMetrics(opts.Registerer),
		rechecks: map[string]bool{},
	}
	if n.log == nil {
		n.log = zap.NewNop()
	}
	if n.now == nil {
		n.now = time.Now
	}
	if n.lease <= 0 {
		n.lease = 30 * time.Minute
	}
	if n.attempts <= 0 {
		n.attempts = 8
	}
	if n.backoff <= 0 {
		n.backoff = time.Second
	}
	if n.maxWait <= 0 {
		n.maxWait = 5 * time.Minute
	}
	queue := opts.QueueSize
	if queue <= 0 {
		queue = 256
	}
	window := opts.Coalesce
	if window == 0 {
		window = 30 * time.Second
	}
	n.client = noRedirects(opts.Client)
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.intake = make(chan queued, queue)
	n.coalesce = newCoalescer(window, n.now, n.enqueue)
	n.coalesce.folded = func() { n.metrics.events.WithLabelValues("coalesced").Inc() }
	for i := range opts.Endpoints {
		ep := &endpoint{Endpoint: opts.Endpoints[i], queue: make(chan *delivery, queue)}
		n.endpoints = append(n.endpoints, ep)
		n.workers.Go(func() { n.deliverAll(ep) })
	}
	if len(n.endpoints) > 0 {
		n.workers.Go(n.claimAll)
	}
	return n
}

// noRedirects returns a copy of c (or a default client) that never follows
// a redirect: a signed request goes to the configured URL only.
func noRedirects(c *http.Client) *http.Client {
	out := &http.Client{Timeout: 15 * time.Second}
	if c != nil {
		*out = *c
		if out.Timeout <= 0 {
			out.Timeout = 15 * time.Second
		}
	}
	out.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return out
}

// Publish hands e to the notifier and returns at once. Events of one
// tenant are coalesced (see Options.Coalesce); an event no endpoint wants is
// ignored; when the queue is full the event is dropped and counted.
func (n *Notifier) Publish(e Event) {
	if n.closed.Load() || !n.wanted(e.Type) {
		return
	}
	if e.Time.IsZero() {
		e.Time = n.now()
	}
	n.coalesce.offer(&e)
}

// wanted reports whether any endpoint takes events of typ.
func (n *Notifier) wanted(typ string) bool {
	for _, ep := range n.endpoints {
		if ep.wants(typ) {
			return true
		}
	}
	return false
}

// queued is an event waiting for its claim.
type queued struct {
	e        *Event
	takeover bool // only take over another replica's expired claim of it
}

// enqueue passes an event that survived coalescing on to the claim step.
func (n *Notifier) enqueue(e *Event) { n.enqueueClaim(queued{e: e}) }

// enqueueClaim queues q for the claim step, or drops it when the queue is
// full.
func (n *Notifier) enqueueClaim(q queued) {
	if n.closed.Load() {
		return
	}
	e := q.e
	select {
	case n.intake <- q:
	default:
		n.metrics.events.WithLabelValues("dropped").Inc()
		n.log.Warn("webhook queue full: event dropped", zap.String("type", e.Type), zap.String("tenant", e.Data.Tenant))
	}
}

// claimAll claims each queued event and queues it for its endpoints.
func (n *Notifier) claimAll() {
	for {
		select {
		case <-n.ctx.Done():
			return
		case q := <-n.intake:
			n.dispatch(q)
		}
	}
}

// dispatch claims e and, when this replica is to send it, queues one
// delivery per endpoint that wants it.
func (n *Notifier) dispatch(q queued) {
	e := q.e
	ctx, cancel := context.WithTimeout(n.ctx, 10*time.Second)
	id, out, wait, err := n.claim(ctx, e, q.takeover)
	cancel()
	if err != nil {
		// At least once beats at most once: send without the fleet's
		// agreement rather than not at all.
		n.log.Warn("webhook claim failed; sending anyway", zap.String("tenant", e.Data.Tenant), zap.Error(err))
		id, out = eventID(e.Data.Tenant, e.Type, uint64(n.now().UnixNano())), claimed
	}
	switch out {
	case unannounced:
		n.metrics.events.WithLabelValues("ignored").Inc()
		return
	case duplicate:
		n.metrics.events.WithLabelValues("duplicate").Inc()
		if wait > 0 {
			n.recheck(e, wait)
		}
		return
	}
	body, err := e.marshal()
	if err != nil {
		n.log.Error("webhook body", zap.Error(err))
		return
	}
	var targets []*endpoint
	for _, ep := range n.endpoints {
		if ep.wants(e.Type) {
			targets = append(targets, ep)
		}
	}
	job := &announcement{tenant: e.Data.Tenant, id: id, pending: int32(len(targets))}
	n.metrics.events.WithLabelValues("sent").Inc()
	for _, ep := range targets {
		d := &delivery{job: job, id: id, at: e.Time, body: body}
		select {
		case ep.queue <- d:
		default:
			n.metrics.events.WithLabelValues("dropped").Inc()
			n.log.Warn("webhook queue full: event dropped", zap.String("type", e.Type), zap.String("tenant", e.Data.Tenant))
			job.failed.Store(true)
			n.settle(job)
		}
	}
}

// recheck looks at e again once another replica's claim on it has run out,
// in case that replica died before sending it. One recheck per tenant waits
// at a time.
func (n *Notifier) recheck(e *Event, wait time.Duration) {
	tenant := e.Data.Tenant
	n.mu.Lock()
	if n.rechecks[tenant] {
		n.mu.Unlock()
		return
	}
	n.rechecks[tenant] = true
	n.mu.Unlock()
	n.timers.Go(func() {
		t := time.NewTimer(wait + time.Second)
		defer t.Stop()
		select {
		case <-n.ctx.Done():
		case <-t.C:
			n.enqueueClaim(queued{e: e, takeover: true})
		}
		n.mu.Lock()
		delete(n.rechecks, tenant)
		n.mu.Unlock()
	})
}

// announcement is one claimed event being delivered to its endpoints.
type announcement struct {
	tenant, id string
	pending    int32       // endpoints still delivering
	failed     atomic.Bool // a delivery was dropped or cut short by Close
}

// settle counts one endpoint's delivery as over; after the last one, the
// claim is marked done — unless one was dropped or cut short, so that
// another replica may take it over when the lease runs out.
func (n *Notifier) settle(job *announcement) {
	if atomic.AddInt32(&job.pending, -1) != 0 || job.failed.Load() || n.ctx.Err() != nil {
		return
	}
	ctx, cancel := context.WithTimeout(n.ctx, 10*time.Second)
	defer cancel()
	if err := n.finish(ctx, job.tenant, job.id); err != nil {
		n.log.Warn("webhook: marking the event done failed", zap.String("tenant", job.tenant), zap.Error(err))
	}
}

// Close stops the notifier: queued and retrying deliveries are abandoned
// (their claims expire, so another replica may send them). It waits for
// the workers until ctx is done. Calling it again does nothing.
func (n *Notifier) Close(ctx context.Context) error {
	if n.closed.Swap(true) {
		return nil
	}
	n.coalesce.stop()
	n.cancel()
	done := make(chan struct{})
	go func() {
		n.workers.Wait()
		n.timers.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Status is what /_sidekey/status shows of webhooks: no URL query, no
// secret.
type Status struct {
	Endpoints   int               `json:"endpoints"`
	Deliveries  map[string]uint64 `json:"deliveries"` // attempts by result: success, retry, failure
	Events      map[string]uint64 `json:"events"`     // events by outcome: sent, duplicate, ignored, coalesced, dropped
	LastError   string            `json:"last_error,omitempty"`
	LastErrorAt *time.Time        `json:"last_error_at,omitempty"`
}

// Status reports delivery counts and the last delivery error.
func (n *Notifier) Status() Status {
	st := Status{Endpoints: len(n.endpoints), Deliveries: n.metrics.counts(n.metrics.deliveries, deliveryResults), Events: n.metrics.counts(n.metrics.events, eventResults)}
	n.mu.Lock()
	defer n.mu.Unlock()
	st.LastError = n.lastError
	if !n.lastErrorAt.IsZero() {
		at := n.lastErrorAt.UTC()
		st.LastErrorAt = &at
	}
	return st
}

// recordError keeps msg as the last delivery error.
func (n *Notifier) recordError(msg string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.lastError, n.lastErrorAt = msg, n.now()
}

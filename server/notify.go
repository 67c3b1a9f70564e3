package server

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/sidekey/sidekey/notify"
)

// defaultNotifyInterval is how often tenant states are compared for
// webhooks: a change is announced at most this long after the status shows
// it — or, when the tenant had an event within the coalescing window, at
// that window's end.
const defaultNotifyInterval = 5 * time.Second

// coalesceIntervals is the coalescing window in poll intervals: 30s by
// default, so a tenant flapping between states sends one event per 30s.
const coalesceIntervals = 6

// stateWatch remembers the event type each tenant was last reported in,
// so that only changes are published.
type stateWatch struct {
	mu      sync.Mutex        // guards seen, failing
	seen    map[string]string // tenant → event type last published
	failing map[string]bool   // tenants seen failing once: published if it lasts
}

// newNotifier builds the webhook notifier from notify.webhooks, or returns
// nil when there are none.
func (s *Server) newNotifier(interval time.Duration) (*notify.Notifier, error) {
	hooks := s.cfg.Notify.Webhooks
	if len(hooks) == 0 {
		return nil, nil
	}
	endpoints := make([]notify.Endpoint, 0, len(hooks))
	for i, h := range hooks {
		key, err := notify.ParseSecret(h.Secret.Value())
		if err != nil {
			return nil, fmt.Errorf("server: notify.webhooks[%d]: %w", i, err)
		}
		endpoints = append(endpoints, notify.Endpoint{URL: h.URL, Key: key, Events: h.Events})
	}
	s.states = &stateWatch{seen: map[string]string{}, failing: map[string]bool{}}
	s.notifyEvery = interval
	if s.notifyEvery <= 0 {
		s.notifyEvery = defaultNotifyInterval
	}
	return notify.New(notify.Options{
		Endpoints:  endpoints,
		Claims:     s.store,
		Logger:     s.log.Named("notify"),
		Registerer: s.metrics.reg,
		Coalesce:   coalesceIntervals * s.notifyEvery,
	}), nil
}

// watchStates publishes a webhook event whenever a tenant's status changes
// to a state an event names, until ctx is done. It polls the status every
// notifyEvery: the one place every state change shows, whichever part of
// sidekey caused it.
func (s *Server) watchStates(ctx context.Context) {
	tick := time.NewTicker(s.notifyEvery)
	defer tick.Stop()
	for {
		s.publishChanges()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// publishChanges compares every loaded tenant's status with what was last
// published for it. A tenant failing to fetch tokens is published once it
// has been seen failing at two comparisons in a row.
func (s *Server) publishChanges() {
	current := s.statusMap()
	s.states.mu.Lock()
	defer s.states.mu.Unlock()
	for name := range s.states.seen {
		if _, ok := current[name]; !ok {
			delete(s.states.seen, name) // unloaded; the fleet record remembers it
			delete(s.states.failing, name)
		}
	}
	for name, st := range current {
		typ := eventFor(st)
		if typ != notify.RefreshFailing {
			delete(s.states.failing, name)
		}
		if typ == "" || s.states.seen[name] == typ {
			continue
		}
		if typ == notify.RefreshFailing && !s.states.failing[name] {
			// One failed fetch is retried at once; a failure still there
			// at the next comparison is news.
			s.states.failing[name] = true
			continue
		}
		s.states.seen[name] = typ
		s.notifier.Publish(notify.Event{Type: typ, Data: eventData(name, st)})
	}
}

// eventFor names the event a status is in, or "" for a passing state
// (no token yet, refreshing, expired and not yet fetched again).
func eventFor(st tenantStatus) string {
	switch {
	case st.State == "consent_required":
		return notify.ConsentRequired
	case st.State == "consent_needed_soon":
		return notify.ConsentNeededSoon
	case st.State == "error", st.Valid && st.LastError != "":
		return notify.RefreshFailing
	case st.Valid:
		return notify.Connected
	}
	return ""
}

// eventData is an event's data: names, state, times, the connect URL and
// the engine's error text, which holds no secret.
func eventData(name string, st tenantStatus) notify.Data {
	return notify.Data{
		Tenant: name, Provider: st.Provider, State: st.State, ConnectURL: st.ConnectURL,
		Expiry: st.Expiry, RefreshExpiry: st.RefreshExpiry, LastError: st.LastError,
	}
}

// announceDisconnect wraps the disconnect endpoint: a disconnect that
// succeeded publishes tenant.disconnected.
func (s *Server) announceDisconnect(h http.Handler) http.Handler {
	if s.notifier == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("tenant")
		var data notify.Data
		if t, ok := s.tenantNamed(name); ok {
			data = eventData(name, s.tenantStatus(name, t))
		}
		rec := &statusRecorder{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		if rec.status != http.StatusOK {
			return
		}
		data.Tenant, data.State, data.Expiry, data.RefreshExpiry, data.LastError = name, "disconnected", nil, nil, ""
		s.states.mu.Lock()
		s.states.seen[name] = notify.Disconnected
		s.states.mu.Unlock()
		s.notifier.Publish(notify.Event{Type: notify.Disconnected, Data: data})
	})
}

// statusRecorder remembers the status code a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

// WriteHeader records code and passes it on.
func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// startNotify starts the webhook notifier's state watch, if there are
// webhooks.
func (s *Server) startNotify(ctx context.Context) {
	if s.notifier != nil {
		s.background.Go(func() { s.watchStates(ctx) })
	}
}

// closeNotify stops the notifier: deliveries still retrying are abandoned,
// and their claims expire so that another replica may send them.
func (s *Server) closeNotify(ctx context.Context) {
	if s.notifier == nil {
		return
	}
	if err := s.notifier.Close(ctx); err != nil {
		s.log.Warn("shutdown: the webhook notifier did not stop in time", zap.Error(err))
	}
}

// webhookStatus is what /_sidekey/status shows of webhooks; nil without
// any.
func (s *Server) webhookStatus() *notify.Status {
	if s.notifier == nil {
		return nil
	}
	st := s.notifier.Status()
	return &st
}

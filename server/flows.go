package server

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/sidekey/sidekey/proxy"
)

// Consent and login flows in progress are store records (consentPrefix)
// that a callback takes. The login route is open to anyone, so two bounds
// keep a stranger from filling the store with flows nobody finishes:
// login starts are rate-limited per tenant and replica, and a sweep deletes
// every flow past consentTTL. Together they hold at most
// loginBurst + loginRate × consentTTL pending logins per tenant and
// replica (12,100 at the defaults).
const (
	// loginRate and loginBurst bound GET /_sidekey/login/{tenant} per
	// tenant on each replica.
	loginRate  = 20
	loginBurst = 100
	// flowSweepEvery spaces the sweeps of abandoned flows.
	flowSweepEvery = time.Minute
)

// loginLimits holds each sessions tenant's login-start limiter.
type loginLimits struct {
	mu sync.Mutex // guards byTenant
	// byTenant: at most one limiter per configured tenant, so its size is
	// bounded by the config.
	byTenant map[string]*rate.Limiter
}

// allow reports whether tenant may start one more login at now.
func (l *loginLimits) allow(tenant string, now time.Time) bool {
	l.mu.Lock()
	lim := l.byTenant[tenant]
	if lim == nil {
		if l.byTenant == nil {
			l.byTenant = map[string]*rate.Limiter{}
		}
		lim = rate.NewLimiter(loginRate, loginBurst)
		l.byTenant[tenant] = lim
	}
	l.mu.Unlock()
	return lim.AllowN(now, 1)
}

// refuseLoginFlood answers 429 rate_limited when tenant has started too
// many logins on this replica, and reports whether it did.
func (s *Server) refuseLoginFlood(w http.ResponseWriter, tenant string) bool {
	if s.logins.allow(tenant, s.now()) {
		return false
	}
	proxy.WriteError(w, http.StatusTooManyRequests, proxy.CodeRateLimited, tenant,
		"too many logins are being started for this tenant; try again in a second", time.Second)
	return true
}

// sweepFlowsEvery deletes abandoned flows every flowSweepEvery until ctx is
// done.
func (s *Server) sweepFlowsEvery(ctx context.Context) {
	tick := time.NewTicker(flowSweepEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			s.SweepFlows(ctx)
		}
	}
}

// SweepFlows deletes every consent or login flow started more than
// consentTTL ago (its callback would be refused anyway), and every record
// under consentPrefix that is not a flow. It returns how many it deleted.
func (s *Server) SweepFlows(ctx context.Context) int {
	keys, err := s.store.List(ctx, consentPrefix)
	if err != nil {
		s.log.Warn("flow sweep: listing flows failed", zap.Error(err))
		return 0
	}
	now, deleted := s.now(), 0
	for _, key := range keys {
		b, err := s.store.Load(ctx, key)
		if err != nil {
			continue // taken by its callback meanwhile
		}
		var f flow
		if json.Unmarshal(b, &f) == nil && !f.expired(now) {
			continue
		}
		if err := s.store.Delete(ctx, key); err != nil {
			s.log.Warn("flow sweep: deleting an abandoned flow failed", zap.Error(err))
			continue
		}
		deleted++
	}
	if deleted > 0 {
		s.log.Info("flow sweep: abandoned consent and login flows deleted", zap.Int("deleted", deleted))
	}
	return deleted
}

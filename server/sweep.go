package server

import (
	"context"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/sidekey/sidekey/tokensource"
)

// sweepPace spaces the renewals of one sweep, so that waking a fleet of
// idle tenants never becomes a burst at the platforms.
const sweepPace = time.Second

// sweepIdle renews, now and then, the tokens of connections that no engine
// keeps fresh because nobody used them for engine.idle_refresh: on
// platforms whose refresh tokens lapse when unused, an idle store must not
// silently lose its grant. It runs until ctx is done.
func (s *Server) sweepIdle(ctx context.Context) {
	idle := time.Duration(s.cfg.Engine.IdleRefresh)
	tick := time.NewTicker(max(idle/24, time.Minute))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			s.SweepIdle(ctx, s.now().Add(-idle))
		}
	}
}

// SweepIdle renews every connection not in memory whose token was obtained
// before olderThan and can be refreshed, one per sweepPace. It returns how
// many it renewed.
func (s *Server) SweepIdle(ctx context.Context, olderThan time.Time) int {
	keys, err := s.store.List(ctx, connectionPrefix)
	if err != nil {
		s.log.Warn("idle sweep: listing connections failed", zap.Error(err))
		return 0
	}
	renewed := 0
	pace := time.NewTimer(0)
	defer pace.Stop()
	for _, key := range keys {
		name := strings.TrimPrefix(key, connectionPrefix)
		if s.conns.loaded.Contains(name) {
			continue // its engine keeps it fresh
		}
		b, err := s.store.Load(ctx, tokenKey(name))
		if err != nil {
			continue // none yet, or gone
		}
		info, err := tokensource.ReadStoredInfo(b)
		if err != nil || !info.Renewable || !info.Obtained.Before(olderThan) {
			continue
		}
		select {
		case <-ctx.Done():
			return renewed
		case <-pace.C:
		}
		pace.Reset(sweepPace)
		t, release, err := s.conns.transient(name)
		if err != nil {
			continue // gone meanwhile, or its app no longer builds
		}
		if t.stored == nil {
			release()
			continue
		}
		done, err := t.stored.Renew(ctx, olderThan)
		release()
		switch {
		case err != nil:
			s.log.Warn("idle sweep: renewing failed", zap.String("tenant", name), zap.Error(err))
		case done:
			renewed++
			s.metrics.sweeps.Inc()
			s.log.Info("idle sweep: renewed an idle tenant's token", zap.String("tenant", name), zap.Time("obtained", info.Obtained))
		}
	}
	return renewed
}

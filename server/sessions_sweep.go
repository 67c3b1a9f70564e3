package server

import (
	"context"
	"encoding/json"
	"time"

	"go.uber.org/zap"
)

// sessionSweepEvery spaces the sweeps of ended sessions and stale tickets
// (each reads every session record: an hour keeps that cheap at scale).
const sessionSweepEvery = time.Hour

// sweepSessionsEvery sweeps at start (which also counts the stored
// sessions) and then every sessionSweepEvery, until ctx is done.
func (s *Server) sweepSessionsEvery(ctx context.Context) {
	tick := time.NewTicker(sessionSweepEvery)
	defer tick.Stop()
	for {
		s.SweepSessions(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// SweepSessions stops the engines of sessions unused for an hour (their
// tokens stay in the store), deletes every session past its idle TTL or its
// refresh token's expiry, and every ticket older than 60 seconds (revoking
// its grant, best effort), and recounts the
// stored sessions per tenant. Sessions of tenants that are not (or no
// longer) sessions tenants are left alone: a reload may bring them back.
// It returns how many sessions it deleted.
func (s *Server) SweepSessions(ctx context.Context) int {
	tenants := s.live.Load().tenants
	s.sessions.evictIdle(s.now().Add(-engineIdle))
	keys, err := s.store.List(ctx, sessionPrefix)
	if err != nil {
		s.log.Warn("session sweep: listing sessions failed", zap.Error(err))
		return 0
	}
	counts := map[string]int64{}
	removed := 0
	now := s.now()
	for _, key := range keys {
		name, hash, ok := tenantOf(key, sessionPrefix)
		t := tenants[name]
		if !ok || sessionsConf(t) == nil {
			continue
		}
		b, err := s.store.Load(ctx, key)
		if err != nil {
			continue // gone meanwhile
		}
		var rec sessionRecord
		if json.Unmarshal(b, &rec) == nil && now.Before(rec.expiry(sessionsConf(t).Idle())) {
			counts[name]++
			continue
		}
		if s.sessions.remove(ctx, name, hash) {
			removed++
		}
	}
	s.sessions.mu.Lock()
	s.sessions.counts = counts
	s.sessions.mu.Unlock()
	if removed > 0 {
		s.log.Info("session sweep: ended sessions deleted", zap.Int("sessions", removed))
	}
	s.sweepTickets(ctx, now)
	return removed
}

// sweepTickets deletes tickets nobody redeemed in time, revoking their
// grants (best effort).
func (s *Server) sweepTickets(ctx context.Context, now time.Time) {
	keys, err := s.store.List(ctx, ticketPrefix)
	if err != nil {
		return
	}
	for _, key := range keys {
		b, err := s.store.Load(ctx, key)
		if err != nil {
			continue
		}
		var rec ticketRecord
		if json.Unmarshal(b, &rec) != nil {
			_ = s.store.Delete(ctx, key)
			continue
		}
		if now.Sub(rec.Issued) > ticketTTL {
			if _, err := s.store.Take(ctx, key); err == nil { // not redeemed meanwhile
				s.revokeOrphan(ctx, &rec)
			}
		}
	}
}

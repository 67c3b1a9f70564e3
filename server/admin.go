package server

import (
	"context"
	"errors"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/sidekey/sidekey/providers"
	"github.com/sidekey/sidekey/proxy"
)

// Disconnect forgets tenant's stored token, revoking it first where the
// platform supports that (SCAYLE). The tenant then answers consent_required
// until it is connected again. A failed revocation is logged and does not
// stop the local forget.
func (s *Server) Disconnect(ctx context.Context, name string) (revoked bool, err error) {
	t, ok := s.tenantNamed(name)
	if !ok {
		return false, errUnknownTenant
	}
	if t.stored == nil {
		return false, errFixedKey
	}
	if rv, ok := t.spec.AuthCode.(providers.Revoker); ok {
		if tok, err := t.stored.Stored(ctx); err == nil && tok != nil {
			rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			err := rv.Revoke(rctx, tok)
			cancel()
			if err != nil {
				s.log.Warn("revoking the token at the platform failed; forgetting it anyway", zap.String("tenant", name), zap.Error(err))
			} else {
				revoked = true
			}
		}
	}
	if err := t.stored.Forget(ctx); err != nil {
		return revoked, err
	}
	if _, configured := s.live.Load().tenants[name]; !configured {
		// A connection is deleted whole: it answers unknown_tenant from now on.
		if err := s.store.Delete(ctx, connectionPrefix+name); err != nil {
			return revoked, err
		}
		s.conns.forget(name)
		s.log.Info("connection deleted", zap.String("tenant", name), zap.Bool("revoked", revoked))
		return revoked, nil
	}
	t.engine.Reset()
	t.connectedAt.Store(nil)
	s.log.Info("tenant disconnected", zap.String("tenant", name), zap.Bool("revoked", revoked))
	return revoked, nil
}

var (
	errUnknownTenant = errors.New("unknown tenant")
	errFixedKey      = errors.New("the tenant uses a fixed key; there is nothing to disconnect")
)

// disconnect serves DELETE /_sidekey/admin/connections/{tenant}.
func (s *Server) disconnect(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("tenant")
	revoked, err := s.Disconnect(r.Context(), name)
	switch {
	case errors.Is(err, errUnknownTenant):
		proxy.WriteError(w, http.StatusNotFound, proxy.CodeUnknownTenant, name, "no tenant named "+name, 0)
	case errors.Is(err, errFixedKey):
		proxy.WriteError(w, http.StatusBadRequest, "fixed_key", name, err.Error(), 0)
	case err != nil:
		s.log.Error("disconnect failed", zap.String("tenant", name), zap.Error(err))
		proxy.WriteError(w, http.StatusServiceUnavailable, "store_unavailable", name, "the token store is unavailable", 5*time.Second)
	default:
		writeJSON(w, http.StatusOK, map[string]any{"tenant": name, "disconnected": true, "revoked": revoked})
	}
}

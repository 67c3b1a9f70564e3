package server

import (
	"context"
	"errors"
	"net/http"
	"time"

	"go.uber.org/zap"
	"golang.org/x/oauth2"

	"github.com/sidekey/sidekey/providers"
	"github.com/sidekey/sidekey/proxy"
)

// Revocation is what a disconnect achieved at the platform.
type Revocation struct {
	// Revoked is true when the platform confirmed revoking the grant: the
	// access token and its refresh token (SCAYLE's logout).
	Revoked bool `json:"revoked"`
	// NotRevoked says what may still be alive at the platform, and why;
	// "" when nothing is known to be.
	NotRevoked string `json:"not_revoked,omitempty"`
}

// revokeTimeout bounds the revocation (with a refresh first) of a
// disconnect.
const revokeTimeout = 15 * time.Second

// Disconnect forgets tenant's stored token, revoking its grant first where
// the platform supports that (SCAYLE): a dead access token is refreshed
// first (the rotated refresh token is stored before use), then the platform
// revokes access and refresh token. The tenant then answers
// consent_required until it is connected again. What could not be revoked
// is reported in the Revocation and logged; it does not stop the local
// forget.
func (s *Server) Disconnect(ctx context.Context, name string) (Revocation, error) {
	t, ok := s.tenantNamed(name)
	if !ok {
		return Revocation{}, errUnknownTenant
	}
	if t.stored == nil {
		return Revocation{}, errFixedKey
	}
	rev := s.revoke(ctx, t)
	if rev.NotRevoked != "" {
		s.log.Warn("the grant could not be revoked at the platform; forgetting it anyway",
			zap.String("tenant", name), zap.String("not_revoked", rev.NotRevoked))
	}
	if err := t.stored.Forget(ctx); err != nil {
		return rev, err
	}
	if _, configured := s.live.Load().tenants[name]; !configured {
		// A connection is deleted whole: it answers unknown_tenant from now on.
		if err := s.store.Delete(ctx, connectionPrefix+name); err != nil {
			return rev, err
		}
		s.conns.forget(name)
		s.log.Info("connection deleted", zap.String("tenant", name), zap.Bool("revoked", rev.Revoked))
		return rev, nil
	}
	t.engine.Reset()
	t.connectedAt.Store(nil)
	s.log.Info("tenant disconnected", zap.String("tenant", name), zap.Bool("revoked", rev.Revoked))
	return rev, nil
}

// revoke revokes t's stored grant at the platform. The access token is
// refreshed first when it has expired, or when the platform refuses it as
// dead (401), so that the revocation reaches the refresh token too.
func (s *Server) revoke(ctx context.Context, t *tenant) Revocation {
	ctx, cancel := context.WithTimeout(ctx, revokeTimeout)
	defer cancel()
	tok, err := t.stored.Stored(ctx)
	switch {
	case err != nil:
		return Revocation{NotRevoked: "the stored token could not be read, so nothing was revoked at the platform"}
	case tok == nil:
		return Revocation{}
	}
	rv, ok := t.spec.AuthCode.(providers.Revoker)
	if !ok {
		return Revocation{NotRevoked: t.spec.Provider + " offers no revocation: its tokens stay valid at the platform until they expire"}
	}
	renewed := false
	if !tok.Expiry.IsZero() && !s.now().Before(tok.Expiry) {
		if tok, err = s.renewForRevocation(ctx, t, tok); err != nil || tok == nil {
			return refreshFailed(err)
		}
		renewed = true
	}
	err = rv.Revoke(ctx, tok)
	var te *providers.TokenError
	if errors.As(err, &te) && te.Status == http.StatusUnauthorized && !renewed && tok.RefreshToken != "" {
		if tok, err = s.renewForRevocation(ctx, t, tok); err != nil || tok == nil {
			return refreshFailed(err)
		}
		err = rv.Revoke(ctx, tok)
	}
	if err != nil {
		return Revocation{NotRevoked: "the access and refresh token: " + err.Error()}
	}
	return Revocation{Revoked: true}
}

// renewForRevocation refreshes t's stored token through its StoredSource
// (which stores a rotated refresh token before returning it) and returns
// the token stored now; nil when dead has no refresh token.
func (s *Server) renewForRevocation(ctx context.Context, t *tenant, dead *oauth2.Token) (*oauth2.Token, error) {
	if dead.RefreshToken == "" {
		return nil, nil
	}
	if _, err := t.stored.Renew(ctx, s.now().Add(time.Minute)); err != nil {
		return nil, err
	}
	return t.stored.Stored(ctx)
}

// refreshFailed is the Revocation when the refresh before a revocation
// failed with err (nil: there was no refresh token). A refused refresh
// token, like a missing one, leaves nothing alive to revoke.
func refreshFailed(err error) Revocation {
	if err == nil || errors.Is(err, providers.ErrConsentRequired) {
		return Revocation{}
	}
	return Revocation{NotRevoked: "the refresh token: the access token had expired and refreshing it failed: " + err.Error()}
}

var (
	errUnknownTenant = errors.New("unknown tenant")
	errFixedKey      = errors.New("the tenant uses a fixed key; there is nothing to disconnect")
)

// disconnect serves DELETE /_sidekey/admin/connections/{tenant}.
func (s *Server) disconnect(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("tenant")
	rev, err := s.Disconnect(r.Context(), name)
	switch {
	case errors.Is(err, errUnknownTenant):
		proxy.WriteError(w, http.StatusNotFound, proxy.CodeUnknownTenant, name, "no tenant named "+name, 0)
	case errors.Is(err, errFixedKey):
		proxy.WriteError(w, http.StatusBadRequest, proxy.CodeFixedKey, name, err.Error(), 0)
	case err != nil:
		s.log.Error("disconnect failed", zap.String("tenant", name), zap.Error(err))
		proxy.WriteError(w, http.StatusServiceUnavailable, proxy.CodeStoreUnavailable, name, "the token store is unavailable", 5*time.Second)
	default:
		out := map[string]any{"tenant": name, "disconnected": true, "revoked": rev.Revoked}
		if rev.NotRevoked != "" {
			out["not_revoked"] = rev.NotRevoked
		}
		writeJSON(w, http.StatusOK, out)
	}
}

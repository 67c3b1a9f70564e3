package server

import (
	"context"
	"errors"
	"io/fs"
	"strings"
	"time"

	"go.uber.org/zap"
	"golang.org/x/oauth2"

	"github.com/sidekey/sidekey/store"
)

// watchReplicas follows changes other replicas make to the shared store
// (Redis publishes them), until ctx is done:
//   - a tenant's token changed: when this replica has no valid token for it
//     (a consent completed elsewhere) or the token was deleted (disconnected
//     elsewhere), its engine starts over from the store;
//   - a connection changed: it is reloaded from the store on next use.
//
// A refresh by another replica needs no nudge: every replica refreshes at
// the same moment of a shared token's life, and reads the store first.
func (s *Server) watchReplicas(ctx context.Context) {
	w, ok := s.store.(store.Watcher)
	if !ok {
		return
	}
	watch := func(prefix string, fn func(ctx context.Context, name string)) {
		ch, err := w.Watch(ctx, prefix)
		if err != nil {
			s.log.Warn("cannot follow other replicas' changes", zap.String("prefix", prefix), zap.Error(err))
			return
		}
		s.background.Go(func() {
			for key := range ch {
				fn(ctx, strings.TrimPrefix(key, prefix))
			}
		})
	}
	watch("tokens/", s.tokenChanged)
	watch(connectionPrefix, func(_ context.Context, name string) { s.conns.forget(name) })
}

// tokenChanged restarts tenant name's engine when the store now holds a
// token this replica does not serve but could, or none at all. A stored
// token that can serve nothing (expired, no refresh token: a refused
// refresh token was cleared) changes nothing, so the engine keeps the error
// that says why.
func (s *Server) tokenChanged(ctx context.Context, name string) {
	t, ok := s.live.Load().tenants[name]
	if !ok {
		if t, ok = s.conns.loaded.Peek(name); !ok {
			return // not in memory: it reads the store when next used
		}
	}
	if t.stored == nil {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	tok, err := t.stored.Stored(rctx)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return
	}
	switch {
	case tok == nil:
		t.engine.Reset()
	case !servable(tok, s.now()):
	case !t.engine.Status().Valid:
		t.engine.Reset()
	}
}

// servable reports whether tok can give an access token at now: it is
// still valid, or it can be refreshed.
func servable(tok *oauth2.Token, now time.Time) bool {
	return tok.RefreshToken != "" || tok.Expiry.IsZero() || now.Before(tok.Expiry)
}

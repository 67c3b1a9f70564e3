package server

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/sidekey/sidekey/config"
)

// live is the part of a Server a reload replaces as one: tenants, callers
// and the admin token. Readers load it once per request.
type live struct {
	cfg      *config.Config
	tenants  map[string]*tenant
	callers  *callerSet // nil: none configured
	adminSum []byte     // sha256 of the admin token; nil: admin routes loopback only
}

// newLive builds the live state for cfg. Tenants whose configuration is
// unchanged from prev keep their engine, so their cached tokens survive.
func (s *Server) newLive(cfg *config.Config, prev *live) (*live, error) {
	l := &live{cfg: cfg}
	if cfg.AdminTokenFile != "" {
		b, err := os.ReadFile(cfg.AdminTokenFile)
		if err != nil {
			return nil, fmt.Errorf("server: admin_token_file: %w", err)
		}
		sum := sha256.Sum256([]byte(strings.TrimRight(string(b), "\r\n")))
		l.adminSum = sum[:]
	}
	var err error
	if l.callers, err = newCallerSet(cfg); err != nil {
		return nil, err
	}
	if l.callers.hasSubjects() && s.cfg.TLS.ClientCAFile == "" {
		s.log.Warn("callers with cert_subject cannot authenticate until sidekey restarts with tls.client_ca_file: the listener asks for no client certificate")
	}
	if !s.loopback && cfg.AllowUnauthenticated && l.callers == nil {
		s.log.Warn("listening beyond loopback WITHOUT caller authentication (allow_unauthenticated: true): anyone who can reach " + cfg.Listen + " can use every tenant's credentials")
	}
	var old map[string]*tenant
	if prev != nil {
		old = prev.tenants
	}
	if l.tenants, err = s.buildTenants(cfg, old); err != nil {
		return nil, err
	}
	s.sessions.attach(l.tenants)
	return l, nil
}

// Reload applies a new configuration without dropping a connection or a
// cached token: tenants that did not change keep their engines, new ones
// start, removed ones stop. Settings bound at start (listen, public_url,
// storage, upstream, engine, tls, caller_key_header) keep their old
// values; changing them is logged as needing a restart. A config that
// fails to build is rejected whole, and the running one stays.
func (s *Server) Reload(cfg *config.Config) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	prev := s.live.Load()
	for key, changed := range map[string]bool{
		"listen":     cfg.Listen != prev.cfg.Listen,
		"public_url": cfg.PublicURL != prev.cfg.PublicURL,
		"storage":    !reflect.DeepEqual(cfg.Storage, prev.cfg.Storage),
		"upstream":   cfg.Upstream != prev.cfg.Upstream,
		"engine":     cfg.Engine != prev.cfg.Engine,
		"tls":        !reflect.DeepEqual(cfg.TLS, prev.cfg.TLS),
		// The proxy strips the caller key header it was built with.
		"caller_key_header": cfg.CallerKeyHeader != prev.cfg.CallerKeyHeader,
		// The Guard serves the Host names it was built with.
		"allowed_hosts": !slices.Equal(cfg.AllowedHosts, prev.cfg.AllowedHosts),
		"forward_proxy, local_ca, tenant listen/tls/intercept_hosts": legacyChanged(prev.cfg, cfg),
	} {
		if changed {
			s.log.Warn("reload: this setting only changes on restart", zap.String("key", key))
		}
	}
	// Bound-at-start settings stay as they are.
	next := *cfg
	next.Listen, next.PublicURL, next.Storage = prev.cfg.Listen, prev.cfg.PublicURL, prev.cfg.Storage
	next.Upstream, next.Engine, next.TLS = prev.cfg.Upstream, prev.cfg.Engine, prev.cfg.TLS
	next.CallerKeyHeader = prev.cfg.CallerKeyHeader
	next.AllowedHosts = prev.cfg.AllowedHosts
	l, err := s.newLive(&next, prev)
	if err != nil {
		return fmt.Errorf("%w: %w", errReloadRejected, err)
	}
	s.live.Store(l)
	if !reflect.DeepEqual(prev.cfg.Apps, l.cfg.Apps) {
		s.conns.purge() // connections are rebuilt from their new app on next use
	}
	var kept, started, stopped int
	for name, t := range prev.tenants {
		if l.tenants[name] != t {
			// Requests already routed to t may still need its engine (a
			// 401 replay); stop it once they are surely done.
			time.AfterFunc(retireAfter, t.engine.Close)
			stopped++
		}
	}
	for name, t := range l.tenants {
		if prev.tenants[name] == t {
			kept++
		} else {
			started++
		}
	}
	s.log.Info("configuration reloaded", zap.Int("tenants_kept", kept), zap.Int("tenants_started", started), zap.Int("tenants_stopped", stopped))
	return nil
}

// retireAfter is how long a replaced tenant's engine keeps serving the
// requests that were routed to it before a reload.
const retireAfter = 2 * time.Minute

// errReloadRejected wraps a reload that was refused.
var errReloadRejected = errors.New("server: reload rejected; the running configuration stays")

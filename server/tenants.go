package server

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"

	"github.com/sidekey/sidekey/config"
	"github.com/sidekey/sidekey/providers"
	"github.com/sidekey/sidekey/proxy"
	"github.com/sidekey/sidekey/store"
	"github.com/sidekey/sidekey/tokensource"
)

// tenant is one configured tenant at run time: its provider spec, its token
// engine and the proxy route that uses them.
type tenant struct {
	conf   *config.Tenant // as configured; a reload keeps the tenant while it is unchanged
	spec   *providers.Tenant
	stored *tokensource.StoredSource // nil for fixed keys (static)
	engine *tokensource.Source
	route  *proxy.Route

	connectedAt atomic.Pointer[time.Time] // last consent completed on this replica
}

// tenantStatus is what /_sidekey/status shows of a tenant. It holds no
// token or secret by construction: only times, counters and error text that
// providers guarantee to be secret-free.
type tenantStatus struct {
	Provider string `json:"provider"`
	API      string `json:"api"`
	// State is the tenant's state (see tenantState): connected,
	// consent_needed_soon, consent_required or error.
	State string `json:"state"`
	// Token is the token engine's own state: valid, refreshing, expired,
	// error or empty (see tokensource.Status).
	Token  string     `json:"token"`
	Valid  bool       `json:"valid"`
	Expiry *time.Time `json:"expiry,omitempty"`
	// RefreshExpiry is when the refresh token expires (a person must
	// connect the tenant again by then), when the platform said.
	RefreshExpiry *time.Time `json:"refresh_expiry,omitempty"`
	LastRefresh   *time.Time `json:"last_refresh,omitempty"`
	NextRefresh   *time.Time `json:"next_refresh,omitempty"`
	LastError     string     `json:"last_error,omitempty"`
	Fetches       uint64     `json:"fetches"`
	Failures      uint64     `json:"failures"`
	ConnectURL    string     `json:"connect_url,omitempty"`  // consent-flow tenants: where a person (re)connects it
	ConnectedAt   *time.Time `json:"connected_at,omitempty"` // when a consent last completed on this replica
	Requests      uint64     `json:"requests"`               // proxied by this replica since start
	RateWaits     uint64     `json:"rate_limit_waits"`       // of which queued for the rate limit

	// Sessions counts a sessions tenant's stored customer sessions (sessions.go).
	Sessions *int64 `json:"sessions,omitempty"`
}

// buildTenants resolves every configured tenant and builds its chain:
// provider grant → StoredSource (persist first) → RefreshAhead engine. Fixed
// keys (static) skip the store. Engines fetch on first use.
func (s *Server) buildTenants(cfg *config.Config, old map[string]*tenant) (map[string]*tenant, error) {
	tenants := make(map[string]*tenant, len(cfg.Tenants))
	var problems config.Problems
	var started []*tenant
	for _, name := range slices.Sorted(maps.Keys(cfg.Tenants)) {
		conf := cfg.Tenants[name]
		if t, ok := old[name]; ok && reflect.DeepEqual(t.conf, conf) {
			tenants[name] = t
			continue
		}
		spec, err := providers.Build(name, conf, providers.Options{HTTPClient: s.client, Logger: s.log})
		if err != nil {
			var ps config.Problems
			if errors.As(err, &ps) {
				problems = append(problems, ps...)
			} else {
				problems = append(problems, config.Problem{Key: "tenants." + name, Message: err.Error()})
			}
			continue
		}
		t := s.newTenant(name, spec, providers.RateLimit(conf))
		t.conf = conf
		tenants[name] = t
		started = append(started, t)
	}
	if len(problems) > 0 {
		for _, t := range started {
			t.engine.Close()
		}
		return nil, problems
	}
	return tenants, nil
}

// newTenant builds one tenant's token chain and route.
func (s *Server) newTenant(name string, spec *providers.Tenant, rl config.RateLimit) *tenant {
	t := &tenant{spec: spec}
	var src oauth2.TokenSource = spec.Source
	if !spec.FixedKey() {
		// Every grant reads and writes the stored token: a rotated refresh
		// token of any provider is stored before use (invariant 3).
		t.stored = tokensource.Stored(tokensource.StoredOptions{
			Name: name, Storage: s.store, Key: tokenKey(name), Logger: s.log, Now: s.now,
			Fetch:         spec.Fetch,
			NeedsPerson:   func(prev *oauth2.Token) error { return spec.NeedsPerson(prev, s.now()) },
			CannotRefresh: !spec.CanRefresh(),
			Final:         grantGone,
		})
		src = t.stored
	}
	t.engine = tokensource.RefreshAhead(src, tokensource.Options{
		Name:          name,
		RefreshBefore: spec.RefreshBefore,
		FetchTimeout:  time.Duration(s.cfg.Engine.FetchTimeout),
		Logger:        s.log,
		Observer:      s.metrics,
		Now:           s.now,
		Final:         grantGone,
	})
	t.route = proxy.NewRoute(proxy.RouteOptions{
		Name:     name,
		Upstream: spec.APIURL,
		Tokens:   t.engine,
		Header:   spec.Inject.Header,
		Prefix:   spec.Inject.Prefix,
		Suffix:   spec.Inject.Suffix,
		Headers:  spec.Headers,
		Limit:    s.rateLimit(name, rl),
	})
	return t
}

// rateLimit is tenant name's limit for the proxy: shared by the fleet when
// the store can share it (redis), and only when there is a limit — a
// shared bucket starts the store's replica heartbeat.
func (s *Server) rateLimit(name string, rl config.RateLimit) proxy.RateLimit {
	limit := proxy.RateLimit{RPS: rl.RPS, Burst: rl.Burst, MaxWait: time.Duration(rl.MaxWait)}
	if rl.RPS > 0 {
		if b := store.SharedBucket(s.store, name); b != nil {
			limit.Shared = b
		}
	}
	return limit
}

// tokenKey is a tenant's token record in the store.
func tokenKey(tenant string) string { return "tokens/" + tenant }

// tenantStatus reports one tenant. A consent tenant whose engine holds
// no token and no error yet is described from the store, so that one never
// connected shows consent_required before anyone calls it.
func (s *Server) tenantStatus(name string, t *tenant) tenantStatus {
	st := t.engine.Status()
	now := s.now()
	out := tenantStatus{
		Provider:  t.spec.Provider,
		API:       t.spec.APIURL.String(),
		Token:     st.State,
		Valid:     st.Valid,
		LastError: st.LastError,
		Fetches:   st.Fetches,
		Failures:  st.Failures,
	}
	facts := tokenFacts{
		consent: t.spec.AuthCode != nil, canRefresh: t.spec.CanRefresh(),
		known: st.Valid || !st.Expiry.IsZero(), valid: st.Valid, renewable: st.Renewable,
		expiry: st.Expiry, refreshExpiry: st.RefreshExpiry, lastErr: st.LastErr,
	}
	if facts.consent {
		out.ConnectURL = s.connectURL(name)
		if !facts.known && st.LastErr == nil && t.stored != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			tok, err := t.stored.Stored(ctx)
			cancel()
			if err == nil && tok != nil {
				facts.known, facts.renewable, facts.expiry = true, tok.RefreshToken != "", tok.Expiry
				facts.valid = tok.Expiry.IsZero() || now.Before(tok.Expiry)
				facts.refreshExpiry = tokensource.RefreshExpiry(tok)
			}
		}
	}
	out.State = tenantState(facts, now)
	if t.conf != nil && t.conf.Sessions != nil {
		// Its tokens are its customers': the tenant itself never connects.
		out.State, out.ConnectURL = stateSessions, ""
	}
	out.Expiry = timePtr(st.Expiry)
	out.RefreshExpiry = timePtr(st.RefreshExpiry)
	out.LastRefresh = timePtr(st.LastRefresh)
	out.NextRefresh = timePtr(st.NextRefresh)
	out.ConnectedAt = t.connectedAt.Load()
	out.Requests, out.RateWaits = s.metrics.counts(name)
	return out
}

// grantGone reports whether a token request's error means the tenant's
// grant is gone and a person must connect it again.
func grantGone(err error) bool { return errors.Is(err, providers.ErrConsentRequired) }

// timePtr is t in UTC for JSON; nil when zero.
func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// tokenUnavailable maps a token engine error to what the caller gets:
// consent_required (with the URL that connects the tenant) when a person
// must act, else token_unavailable with the platform's reason.
func (s *Server) tokenUnavailable(tenant string, err error) (int, string, string, time.Duration) {
	if errors.Is(err, providers.ErrConsentRequired) {
		return http.StatusServiceUnavailable, proxy.CodeConsentRequired,
			"tenant " + tenant + " needs consent: open " + s.connectURL(tenant) + " (or run: sidekey connect " + tenant + ")", 0
	}
	retry := 5 * time.Second
	var fe *tokensource.FetchError
	if errors.As(err, &fe) && fe.RetryAfter > 0 {
		retry = fe.RetryAfter
	}
	msg := err.Error()
	if errors.Is(err, context.DeadlineExceeded) {
		msg = "timed out waiting for a token from the provider"
	}
	return http.StatusServiceUnavailable, proxy.CodeTokenUnavailable, "no valid token: " + msg, retry
}

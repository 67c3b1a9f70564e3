package server

import (
	"context"
	"errors"
	"fmt"
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
	Provider string     `json:"provider"`
	API      string     `json:"api"`
	State    string     `json:"state"`
	Valid    bool       `json:"valid"`
	Expiry   *time.Time `json:"expiry,omitempty"`
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
	var src oauth2.TokenSource
	switch {
	case spec.AuthCode != nil:
		t.stored = tokensource.Stored(tokensource.StoredOptions{
			Name: name, Storage: s.store, Key: tokenKey(name), Logger: s.log, Now: s.now,
			Fetch: func(ctx context.Context, prev *oauth2.Token) (*oauth2.Token, error) {
				if prev == nil {
					return nil, fmt.Errorf("%w: tenant %s is not connected", providers.ErrConsentRequired, name)
				}
				if prev.RefreshToken == "" {
					return nil, fmt.Errorf("%w: tenant %s's token ran out and there is no refresh token", providers.ErrConsentRequired, name)
				}
				if exp := tokensource.RefreshExpiry(prev); !exp.IsZero() && !s.now().Before(exp) {
					return nil, fmt.Errorf("%w: tenant %s's refresh token expired at %s", providers.ErrConsentRequired, name, exp.UTC().Format(time.RFC3339))
				}
				return spec.AuthCode.Refresh(ctx, prev.RefreshToken)
			},
			Final: func(err error) bool { return errors.Is(err, providers.ErrConsentRequired) },
		})
		src = t.stored
	case spec.Provider == "static":
		src = spec.Source
	default:
		grant := spec.Source.(providers.ContextTokenSource)
		t.stored = tokensource.Stored(tokensource.StoredOptions{
			Name: name, Storage: s.store, Key: tokenKey(name), Logger: s.log, Now: s.now,
			Fetch: func(ctx context.Context, _ *oauth2.Token) (*oauth2.Token, error) { return grant.TokenContext(ctx) },
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
	})
	t.route = proxy.NewRoute(proxy.RouteOptions{
		Name:     name,
		Upstream: spec.APIURL,
		Tokens:   t.engine,
		Header:   spec.Inject.Header,
		Prefix:   spec.Inject.Prefix,
		Suffix:   spec.Inject.Suffix,
		Headers:  spec.Headers,
		Limit:    proxy.RateLimit{RPS: rl.RPS, Burst: rl.Burst, MaxWait: time.Duration(rl.MaxWait)},
	})
	return t
}

// tokenKey is a tenant's token record in the store.
func tokenKey(tenant string) string { return "tokens/" + tenant }

// consentSoon is how close to expiry a tenant without a refresh grant
// (Istores), or whose refresh token expires at a known time, shows
// "consent_needed_soon".
const consentSoon = 14 * 24 * time.Hour

// status reports one tenant.
func (s *Server) tenantStatus(name string, t *tenant) tenantStatus {
	st := t.engine.Status()
	now := s.now()
	out := tenantStatus{
		Provider:  t.spec.Provider,
		API:       t.spec.APIURL.String(),
		State:     st.State,
		Valid:     st.Valid,
		LastError: st.LastError,
		Fetches:   st.Fetches,
		Failures:  st.Failures,
	}
	if t.spec.AuthCode != nil {
		out.ConnectURL = s.connectURL(name)
		switch {
		case !out.Valid && errors.Is(st.LastErr, providers.ErrConsentRequired):
			out.State = "consent_required"
		case out.Valid && t.spec.Provider == "istores" && !st.Expiry.IsZero() && st.Expiry.Sub(now) < consentSoon:
			out.State = "consent_needed_soon"
		case out.Valid && !st.RefreshExpiry.IsZero() && st.RefreshExpiry.Sub(now) < consentSoon:
			out.State = "consent_needed_soon"
		}
	}
	timePtr := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		t = t.UTC()
		return &t
	}
	out.Expiry = timePtr(st.Expiry)
	out.RefreshExpiry = timePtr(st.RefreshExpiry)
	out.LastRefresh = timePtr(st.LastRefresh)
	out.NextRefresh = timePtr(st.NextRefresh)
	out.ConnectedAt = t.connectedAt.Load()
	out.Requests, out.RateWaits = s.metrics.counts(name)
	return out
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

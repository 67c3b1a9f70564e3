package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"time"

	"go.uber.org/zap"

	"github.com/sidekey/sidekey/config"
	"github.com/sidekey/sidekey/providers"
	"github.com/sidekey/sidekey/proxy"
	"github.com/sidekey/sidekey/tokensource"
)

// tenant is one configured tenant at run time: its provider spec, its token
// engine and the proxy route that uses them.
type tenant struct {
	spec   *providers.Tenant
	engine *tokensource.Source
	route  *proxy.Route
}

// tenantStatus is what /_sidekey/status shows of a tenant. It holds no
// token or secret by construction: only times, counters and error text that
// providers guarantee to be secret-free.
type tenantStatus struct {
	Provider    string     `json:"provider"`
	API         string     `json:"api"`
	State       string     `json:"state"`
	Valid       bool       `json:"valid"`
	Expiry      *time.Time `json:"expiry,omitempty"`
	LastRefresh *time.Time `json:"last_refresh,omitempty"`
	NextRefresh *time.Time `json:"next_refresh,omitempty"`
	LastError   string     `json:"last_error,omitempty"`
	Fetches     uint64     `json:"fetches"`
	Failures    uint64     `json:"failures"`
}

// buildTenants resolves every configured tenant and starts its engine.
func buildTenants(cfg *config.Config, client *http.Client, obs tokensource.Observer, log *zap.Logger) (map[string]*tenant, error) {
	tenants := make(map[string]*tenant, len(cfg.Tenants))
	var problems config.Problems
	names := make([]string, 0, len(cfg.Tenants))
	for name := range cfg.Tenants {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		spec, err := providers.Build(name, cfg.Tenants[name], providers.Options{HTTPClient: client, Logger: log})
		if err != nil {
			var ps config.Problems
			if errors.As(err, &ps) {
				problems = append(problems, ps...)
				continue
			}
			problems = append(problems, config.Problem{Key: "tenants." + name, Message: err.Error()})
			continue
		}
		engine := tokensource.RefreshAhead(spec.Source, tokensource.Options{
			Name:          name,
			RefreshBefore: spec.RefreshBefore,
			FetchTimeout:  time.Duration(cfg.Engine.FetchTimeout),
			Logger:        log,
			Observer:      obs,
		})
		tenants[name] = &tenant{
			spec:   spec,
			engine: engine,
			route: proxy.NewRoute(proxy.RouteOptions{
				Name:     name,
				Upstream: spec.APIURL,
				Tokens:   engine,
				Header:   spec.Inject.Header,
				Prefix:   spec.Inject.Prefix,
				Suffix:   spec.Inject.Suffix,
				Headers:  spec.Headers,
			}),
		}
	}
	if len(problems) > 0 {
		for _, t := range tenants {
			t.engine.Close()
		}
		return nil, problems
	}
	return tenants, nil
}

// status reports one tenant.
func (t *tenant) status() tenantStatus {
	st := t.engine.Status()
	out := tenantStatus{
		Provider:  t.spec.Provider,
		API:       t.spec.APIURL.String(),
		State:     st.State,
		Valid:     st.State == "valid" || st.State == "refreshing",
		LastError: st.LastError,
		Fetches:   st.Fetches,
		Failures:  st.Failures,
	}
	timePtr := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		t = t.UTC()
		return &t
	}
	out.Expiry = timePtr(st.Expiry)
	out.LastRefresh = timePtr(st.LastRefresh)
	out.NextRefresh = timePtr(st.NextRefresh)
	return out
}

// tokenUnavailable maps a token engine error to what the caller gets.
func tokenUnavailable(err error) (int, string, string, time.Duration) {
	retry := 5 * time.Second
	var fe *tokensource.FetchError
	if errors.As(err, &fe) && fe.RetryAfter > 0 {
		retry = fe.RetryAfter
	}
	msg := err.Error()
	if errors.Is(err, context.DeadlineExceeded) {
		msg = "timed out waiting for a token from the provider"
	}
	return http.StatusServiceUnavailable, proxy.CodeTokenUnavailable, fmt.Sprintf("no valid token: %s", msg), retry
}

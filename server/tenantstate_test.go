package server_test

import (
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/sidekey/sidekey/config"
)

// tenantView is what the tests read of a tenant on /_sidekey/status and
// the admin API.
type tenantView struct {
	State     string `json:"state"`
	Token     string `json:"token"`
	Valid     bool   `json:"valid"`
	Fetches   int    `json:"fetches"`
	Failures  int    `json:"failures"`
	LastError string `json:"last_error"`
}

// statusOfTenant reads tenant's entry on /_sidekey/status.
func statusOfTenant(t *testing.T, base, tenant string) tenantView {
	t.Helper()
	var st struct{ Tenants map[string]tenantView }
	got := get(t, base+"/_sidekey/status")
	if err := json.Unmarshal([]byte(got.body), &st); err != nil {
		t.Fatalf("status: %v\n%s", err, got.body)
	}
	return st.Tenants[tenant]
}

// adminStateOf reads tenant's state on the admin API, one and listed.
func adminStateOf(t *testing.T, base, tenant string) (one, listed string) {
	t.Helper()
	var v struct{ State string }
	if got := get(t, base+"/_sidekey/admin/connections/"+tenant); json.Unmarshal([]byte(got.body), &v) != nil {
		t.Fatalf("admin show: %d %s", got.status, got.body)
	}
	var page struct {
		Items []struct{ Name, State string }
	}
	if got := get(t, base+"/_sidekey/admin/connections"); json.Unmarshal([]byte(got.body), &page) != nil {
		t.Fatalf("admin list: %d %s", got.status, got.body)
	}
	for _, it := range page.Items {
		if it.Name == tenant {
			listed = it.State
		}
	}
	return v.State, listed
}

// TestNeverConnectedIsConsentRequiredEverywhere (issue 16): a consent
// tenant nobody connected is consent_required on status, the admin API
// and the metrics before any request; requests to it count no fetch and no
// failure, and it is logged once, not on every request.
func TestNeverConnectedIsConsentRequiredEverywhere(t *testing.T) {
	p := platformNamed(t, "storehippo")
	core, logs := observer.New(zapcore.WarnLevel)
	r := start(t, &config.Config{Tenants: map[string]*config.Tenant{"hippo": p.tenant}}, zap.New(core))

	if st := statusOfTenant(t, r.base, "hippo"); st.State != "consent_required" {
		t.Errorf("status before any request: %+v; want consent_required", st)
	}
	if one, listed := adminStateOf(t, r.base, "hippo"); one != "consent_required" || listed != "consent_required" {
		t.Errorf("admin API before any request: %q, listed %q; want consent_required", one, listed)
	}
	if m := get(t, r.base+"/_sidekey/metrics").body; !strings.Contains(m, `sidekey_tenant_consent_required{tenant="hippo"} 1`) {
		t.Errorf("metrics lack sidekey_tenant_consent_required 1 for hippo")
	}

	for i := range 5 {
		got := get(t, r.base+"/hippo"+p.api)
		if got.status != 503 || got.header.Get("X-Sidekey-Error") != "consent_required" {
			t.Fatalf("request %d: %d %s; want 503 consent_required", i, got.status, got.body)
		}
	}
	st := statusOfTenant(t, r.base, "hippo")
	if st.State != "consent_required" || st.Fetches != 0 || st.Failures != 0 || st.LastError == "" {
		t.Errorf("status after 5 requests: %+v; want consent_required, 0 fetches, 0 failures, the reason shown", st)
	}
	if m := get(t, r.base+"/_sidekey/metrics").body; strings.Contains(m, `sidekey_token_fetches_total{result="error",tenant="hippo"}`) {
		t.Errorf("metrics count fetch errors for a tenant no platform was asked for")
	}
	if n := engineWarnings(logs, "hippo"); n != 1 {
		t.Errorf("%d warnings for the unconnected tenant after 5 requests; want 1:\n%v", n, logs.All())
	}
	if p.tokens() != 0 {
		t.Errorf("%d token requests; want none", p.tokens())
	}
}

// TestTokenThatCannotBeRefreshed (issue 11): Istores' long-lived token is
// never "refreshed" — no attempt past its half-life, no failure counted —
// turns consent_needed_soon 14 days before it expires and consent_required
// at expiry, without a request.
func TestTokenThatCannotBeRefreshed(t *testing.T) {
	p := platformNamed(t, "istores")
	var skew atomic.Int64 // the server's clock runs this far ahead
	core, logs := observer.New(zapcore.WarnLevel)
	r := startServer(t, &config.Config{Tenants: map[string]*config.Tenant{"il": p.tenant}}, zap.New(core),
		func() time.Time { return time.Now().Add(time.Duration(skew.Load())) })
	if got := get(t, callbackURL(t, r.base, "il")); got.status != 200 {
		t.Fatalf("consent: %d %s", got.status, got.body)
	}
	const life = 36_000_000 * time.Second // Istores' expires_in
	at := func(d time.Duration) {         // sets the server's clock d after the consent
		skew.Store(int64(d))
	}
	steps := []struct {
		after time.Duration // since the consent
		code  int           // a request's status
		state string        // then on status and the admin API
	}{
		{0, 200, "connected"},
		{life * 6 / 10, 200, "connected"}, // past half-life: no refresh
		{life - 10*24*time.Hour, 200, "consent_needed_soon"},
		{life + time.Hour, 0, "consent_required"}, // at expiry, before any request
		{life + 2*time.Hour, 503, "consent_required"},
	}
	for _, s := range steps {
		at(s.after)
		if s.code != 0 {
			for range 3 {
				if got := get(t, r.base+"/il"+p.api); got.status != s.code {
					t.Fatalf("%v after consent: %d %s; want %d", s.after, got.status, got.body, s.code)
				}
			}
		}
		st := statusOfTenant(t, r.base, "il")
		one, listed := adminStateOf(t, r.base, "il")
		if st.State != s.state || one != s.state || listed != s.state || st.Failures != 0 {
			t.Errorf("%v after consent: status %+v, admin %q, listed %q; want %s and no failure", s.after, st, one, listed, s.state)
		}
		if n := p.tokens(); n != 1 {
			t.Fatalf("%v after consent: %d token requests; want only the consent's", s.after, n)
		}
	}
	if n := engineWarnings(logs, "il"); n > 1 {
		t.Errorf("%d warnings; want at most one (when the token ran out):\n%v", n, logs.All())
	}
}

// engineWarnings counts the token engine's warnings about tenant (the
// proxy's own line per refused request is not the engine's).
func engineWarnings(logs *observer.ObservedLogs, tenant string) int {
	return logs.FilterField(zap.String("tenant", tenant)).Filter(func(e observer.LoggedEntry) bool {
		return e.LoggerName != "proxy"
	}).Len()
}

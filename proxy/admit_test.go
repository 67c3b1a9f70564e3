package proxy_test

import (
	"net/http"
	"slices"
	"sync"
	"testing"

	"github.com/sidekey/sidekey/config"
	"github.com/sidekey/sidekey/proxy"
)

// TestAdmitSeesTheParsedTenant: Options.Admit runs after the proxy parsed
// the target, with the tenant it names (also an unknown one, before the
// 404); a refusal answers the caller and reaches neither the lookup nor
// the upstream; a target the proxy refuses never reaches Admit.
func TestAdmitSeesTheParsedTenant(t *testing.T) {
	up, got := recordingUpstream(t)
	var mu sync.Mutex
	var asked []string
	fe := frontend(t, proxy.Options{Admit: func(w http.ResponseWriter, r *http.Request, tenant string) bool {
		mu.Lock()
		asked = append(asked, tenant)
		mu.Unlock()
		if tenant == "acme" {
			return true
		}
		proxy.WriteError(w, http.StatusForbidden, proxy.CodeCallerForbidden, tenant, "not yours", 0)
		return false
	}}, staticRoute(t, "acme", up.URL, config.Tenant{}), staticRoute(t, "beta", up.URL, config.Tenant{}))
	addr := fe.Listener.Addr().String()
	tests := []struct {
		target string // request target
		status int    // status the caller gets
		code   string // X-Sidekey-Error
	}{
		{"/acme/v1/x", http.StatusOK, ""},
		{"/beta/v1/x", http.StatusForbidden, proxy.CodeCallerForbidden},
		{"/ghost/v1/x", http.StatusForbidden, proxy.CodeCallerForbidden},
		{"/acme/../beta/v1/x", http.StatusBadRequest, proxy.CodeBadRequest},
		{"/%61cme/v1/x", http.StatusBadRequest, proxy.CodeBadRequest},
	}
	for _, tt := range tests {
		resp := rawRequest(t, addr, "GET "+tt.target+" HTTP/1.1\r\nHost: sidekey\r\nConnection: close\r\n\r\n")
		if resp.StatusCode != tt.status || resp.Header.Get(proxy.ErrorHeader) != tt.code {
			t.Errorf("%s: got %d %q; want %d %q", tt.target, resp.StatusCode, resp.Header.Get(proxy.ErrorHeader), tt.status, tt.code)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"acme", "beta", "ghost"}; !slices.Equal(asked, want) {
		t.Errorf("Admit asked about %q; want %q", asked, want)
	}
	got.mu.Lock()
	defer got.mu.Unlock()
	if len(got.reqs) != 1 {
		t.Errorf("upstream saw %d requests (%q); want 1", len(got.reqs), got.uris)
	}
}

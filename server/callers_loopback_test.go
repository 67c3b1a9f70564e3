package server_test

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"

	"github.com/sidekey/sidekey/config"
)

// TestCallersAreEnforcedOnLoopback: configured callers are enforced on a
// loopback listener too; loopback only means none are required. The admin
// routes keep their loopback rule.
func TestCallersAreEnforcedOnLoopback(t *testing.T) {
	sim := newSimpleStore(t, time.Hour)
	sum := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	r := start(t, &config.Config{
		// Listen empty: start serves on 127.0.0.1, which the server sees as loopback.
		Callers: map[string]*config.Caller{
			"billing": {KeySHA256: sum("billing-key"), Tenants: []string{"shop"}},
			"other":   {KeySHA256: sum("other-key"), Tenants: []string{"second"}},
		},
		Tenants: map[string]*config.Tenant{
			"shop":   simpleTenant(sim, clientSecret),
			"second": simpleTenant(sim, clientSecret),
		},
	}, nil)
	tests := []struct {
		path   string            // request path at the proxy
		header map[string]string // request headers
		status int               // status sidekey must answer
		code   string            // its X-Sidekey-Error
	}{
		{"/shop/v1/cart/1", nil, 401, "caller_unauthorized"},
		{"/shop/v1/cart/1", map[string]string{"Proxy-Authorization": "Bearer billing-key"}, 200, ""},
		{"/shop/v1/cart/1", map[string]string{"Proxy-Authorization": "Bearer other-key"}, 403, "caller_forbidden"},
		{"/_sidekey/status", nil, 200, ""}, // admin routes: loopback is enough
	}
	for _, tt := range tests {
		got := do(t, "GET", r.base+tt.path, nil, tt.header)
		if got.status != tt.status || got.header.Get("X-Sidekey-Error") != tt.code {
			t.Errorf("%s with %v: got %d %q; want %d %q", tt.path, tt.header, got.status, got.header.Get("X-Sidekey-Error"), tt.status, tt.code)
		}
	}
}

package server_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sidekey/sidekey/config"
)

// TestEveryRequestSidekeySeesGetsTheJSONErrorShape: each malformed request
// that reaches sidekey's handler is answered with {"error", "message"} and
// X-Sidekey-Error; the ones net/http refuses before any handler runs (a bad
// percent-escape in the path, as README says) get its plain-text 400.
func TestEveryRequestSidekeySeesGetsTheJSONErrorShape(t *testing.T) {
	sim := newSimpleStore(t, time.Hour)
	r := start(t, &config.Config{Tenants: map[string]*config.Tenant{"shop": simpleTenant(sim, clientSecret)}}, nil)
	tests := []struct {
		method, path string // the request
		status       int    // the answer sidekey must give
		code         string // its error code
	}{
		{"GET", "/nobody/v1/x", 404, "unknown_tenant"},
		{"GET", "/Bad_Name/v1/x", 400, "bad_request"},
		{"GET", "/shop/a/%2e%2e/b", 400, "bad_request"},
		{"GET", "/_sidekey/nope", 404, "not_found"},
		{"POST", "/_sidekey/healthz", 404, "not_found"},
		{"GET", "/_sidekey/admin/connections?limit=0", 400, "bad_request"},
	}
	for _, tt := range tests {
		got := do(t, tt.method, r.base+tt.path, nil, nil)
		var body struct{ Error, Message string }
		err := json.Unmarshal([]byte(got.body), &body)
		if got.status != tt.status || got.header.Get("X-Sidekey-Error") != tt.code || err != nil || body.Error != tt.code || body.Message == "" {
			t.Errorf("%s %s: got %d %q %s; want %d %s as JSON", tt.method, tt.path, got.status, got.header.Get("X-Sidekey-Error"), got.body, tt.status, tt.code)
		}
	}

	// net/http refuses a request target it cannot parse before sidekey sees it.
	conn, err := net.Dial("tcp", strings.TrimPrefix(r.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /shop/%%zz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 || resp.Header.Get("X-Sidekey-Error") != "" {
		t.Errorf("GET /shop/%%zz: %d %q; want net/http's own plain 400 (documented in README)", resp.StatusCode, resp.Header.Get("X-Sidekey-Error"))
	}
}

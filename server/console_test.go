package server_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sidekey/sidekey/config"
)

// tenantsIn lists the tenants of the console's main table in page order.
func tenantsIn(t *testing.T, page string) []string {
	t.Helper()
	_, table, ok := strings.Cut(page, `id="tenants"`)
	if !ok {
		t.Fatalf("no tenants table in the page:\n%s", page)
	}
	table, _, _ = strings.Cut(table, "</table>")
	var out []string
	for _, m := range regexp.MustCompile(`data-tenant="([^"]+)"`).FindAllStringSubmatch(table, -1) {
		out = append(out, m[1])
	}
	return out
}

// nextLink is the page's "Next page" link, or "".
func nextLink(page string) string {
	m := regexp.MustCompile(`href="([^"]+)" rel="next"`).FindStringSubmatch(page)
	if m == nil {
		return ""
	}
	return strings.ReplaceAll(m[1], "&amp;", "&")
}

func TestConsolePagesAndSearchesTheAdminListing(t *testing.T) {
	sim := newSimpleStore(t, time.Hour)
	r := start(t, &config.Config{
		Tenants: map[string]*config.Tenant{"eu-simple": simpleTenant(sim, clientSecret)},
		Apps:    map[string]*config.Tenant{"simple-app": simpleTenant(sim, clientSecret)},
	}, nil)
	for i := range 70 {
		body := fmt.Sprintf(`{"tenant":"shop-%03d","app":"simple-app"}`, i)
		if got := do(t, "POST", r.base+"/_sidekey/admin/connections", strings.NewReader(body), nil); got.status != 201 {
			t.Fatalf("creating shop-%03d: %d %s", i, got.status, got.body)
		}
	}

	page := get(t, r.base+"/_sidekey/")
	if page.status != 200 || !strings.HasPrefix(page.header.Get("Content-Type"), "text/html") {
		t.Fatalf("console: %d %s", page.status, page.header.Get("Content-Type"))
	}
	want := "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
	if got := page.header.Get("Content-Security-Policy"); got != want {
		t.Errorf("CSP: got %q; want %q", got, want)
	}
	if page.header.Get("X-Frame-Options") != "DENY" || page.header.Get("Cache-Control") != "no-store" {
		t.Errorf("headers: %v", page.header)
	}
	for _, forbidden := range []string{clientSecret, "<script>", "style=", "https://"} {
		if strings.Contains(page.body, forbidden) {
			t.Errorf("the console contains %q", forbidden)
		}
	}

	// Two pages of 50 cover all 71, each once.
	seen := map[string]int{}
	first := tenantsIn(t, page.body)
	next := nextLink(page.body)
	if len(first) != 50 || next == "" {
		t.Fatalf("first page: %d tenants, next %q; want 50 and a next link", len(first), next)
	}
	second := get(t, r.base+next)
	rest := tenantsIn(t, second.body)
	for _, n := range append(first, rest...) {
		seen[n]++
	}
	if len(seen) != 71 || len(first)+len(rest) != 71 || nextLink(second.body) != "" {
		t.Errorf("pages: %d + %d tenants, %d distinct; want 71 once each and no third page", len(first), len(rest), len(seen))
	}

	// A name prefix lists exactly the names that start with it.
	got := tenantsIn(t, get(t, r.base+"/_sidekey/?q=shop-06").body)
	if len(got) != 10 || got[0] != "shop-060" || got[9] != "shop-069" {
		t.Errorf("q=shop-06: %v; want shop-060 … shop-069", got)
	}
	if got := tenantsIn(t, get(t, r.base+"/_sidekey/?q=eu").body); len(got) != 1 || got[0] != "eu-simple" {
		t.Errorf("q=eu: %v", got)
	}
	if got := tenantsIn(t, get(t, r.base+"/_sidekey/?q=zzz").body); len(got) != 0 {
		t.Errorf("q=zzz: %v", got)
	}

	// Assets are served; the template is not.
	for path, status := range map[string]int{"/_sidekey/console/console.css": 200, "/_sidekey/console/console.js": 200, "/_sidekey/console/console.html": 404, "/_sidekey/console/nope.js": 404} {
		if got := get(t, r.base+path); got.status != status {
			t.Errorf("%s: %d; want %d", path, got.status, status)
		}
	}
}

func TestConsoleNeedsTheAdminTokenOffLoopback(t *testing.T) {
	adminFile := filepath.Join(t.TempDir(), "admin")
	if err := os.WriteFile(adminFile, []byte("admin-token-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := start(t, &config.Config{Listen: "0.0.0.0:0", AdminTokenFile: adminFile, AllowUnauthenticated: true}, nil)
	if got := get(t, r.base+"/_sidekey/"); got.status != 401 {
		t.Errorf("without the admin token: %d; want 401", got.status)
	}
	if got := do(t, "GET", r.base+"/_sidekey/", nil, map[string]string{"Authorization": "Bearer admin-token-1"}); got.status != 200 {
		t.Errorf("with the admin token: %d; want 200", got.status)
	}
}

// TestConsoleWithoutTheSlash: /_sidekey (no tenant can be named so) sends
// the browser to the console.
func TestConsoleWithoutTheSlash(t *testing.T) {
	r := start(t, &config.Config{}, nil)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(r.base + "/_sidekey")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "/_sidekey/" {
		t.Errorf("GET /_sidekey: %d to %q; want 301 to /_sidekey/", resp.StatusCode, resp.Header.Get("Location"))
	}
}

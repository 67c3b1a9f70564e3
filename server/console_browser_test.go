package server_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sidekey/sidekey/config"
	"github.com/sidekey/sidekey/internal/testwait"
)

// headlessChromium starts a headless Chromium (Debian's chromium package, which
// `make test` installs) with a fresh profile and returns a context that
// drives one tab of it. Chromium is stopped when the test ends.
func headlessChromium(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium is not installed: the console is tested in a real browser. "+
			"`make test` installs it (Debian package chromium); by hand: apt-get install chromium (%v)", err)
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1500, 900),
	)
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancelTab(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx
}

// steps runs browser steps, failing the test on error.
func steps(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// eval runs a browser action that returns a value, failing the test on
// error.
func eval[T any](t *testing.T, ctx context.Context, what string, action chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, action)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// rowStates reads tenant → state from the console's table with id table.
func rowStates(t *testing.T, ctx context.Context, table string) map[string]string {
	t.Helper()
	return eval(t, ctx, "reading "+table, chromedp.Evaluate[map[string]string](`Object.fromEntries(
		[...document.querySelectorAll("#`+table+` tr[data-tenant]")].map(tr => [tr.dataset.tenant, tr.dataset.state]))`))
}

// TestConsoleInBrowser drives the console in headless Chromium: it lists
// the simulated tenants with their states (those needing consent first),
// its Connect button completes a consent against a simulator, its
// Disconnect button removes a connection, and it never shows a secret. It
// saves a screenshot to .cache/console.png.
func TestConsoleInBrowser(t *testing.T) {
	ps := platforms(t)
	simple := newSimpleStore(t, time.Hour)
	tenants := map[string]*config.Tenant{"eu-simple": simpleTenant(simple, clientSecret)}
	for _, p := range ps {
		tenants[p.name] = p.tenant
	}
	// SCAYLE's refresh token dies in 10 days: consent is needed soon.
	tenants["scayle"].RefreshTokenLifetime = config.Duration(10 * 24 * time.Hour)
	cfg := &config.Config{
		Tenants: tenants,
		Apps:    map[string]*config.Tenant{"simple-app": simpleTenant(simple, clientSecret)},
	}
	r := start(t, cfg, nil)
	// A runtime connection under an app, and every tenant asked for once.
	if got := do(t, "POST", r.base+"/_sidekey/admin/connections", strings.NewReader(`{"tenant":"branch-7","app":"simple-app"}`), nil); got.status != 201 {
		t.Fatalf("creating a connection: %d %s", got.status, got.body)
	}
	for _, path := range []string{"/eu-simple/v1/cart/1", "/branch-7/v1/cart/1"} {
		if got := get(t, r.base+path); got.status != 200 {
			t.Fatalf("GET %s: %d %s", path, got.status, got.body)
		}
	}
	for _, p := range ps {
		if got := get(t, r.base+"/"+p.name+p.api); got.status != 503 {
			t.Fatalf("%s before consent: %d", p.name, got.status)
		}
	}

	scayle := platformNamed(t, "scayle")
	if done := do(t, "GET", callbackURL(t, r.base, "scayle"), nil, map[string]string{"Accept": "application/json"}); done.status != 200 {
		t.Fatalf("connecting scayle: %d %s", done.status, done.body)
	}
	if got := get(t, r.base+"/scayle"+scayle.api); got.status != 200 {
		t.Fatalf("scayle after consent: %d %s", got.status, got.body)
	}

	front := sameOriginGuard(t, r.base)
	ctx := headlessChromium(t)
	console := front.url + "/_sidekey/"
	steps(t, ctx, "opening the console", chromedp.Navigate(console), chromedp.WaitVisible(chromedp.CSS("#tenants")))

	// Every tenant, with the state the admin API gives it.
	want := map[string]string{"eu-simple": "connected", "branch-7": "connected",
		"istores": "consent_required", "storehippo": "consent_required", "scayle": "consent_needed_soon", "oauth2": "consent_required"}
	got := rowStates(t, ctx, "tenants")
	for name, state := range want {
		if got[name] != state {
			t.Errorf("%s: shown as %q; want %q (all: %v)", name, got[name], state, got)
		}
	}
	// Those needing consent first: in the attention list, and on top of the table.
	attention := rowStates(t, ctx, "attention")
	for _, name := range []string{"istores", "storehippo", "scayle", "oauth2"} {
		if attention[name] != want[name] {
			t.Errorf("%s is not under Needs attention: %v", name, attention)
		}
	}
	if attention["eu-simple"] != "" {
		t.Errorf("a connected tenant is under Needs attention: %v", attention)
	}
	first := eval(t, ctx, "reading the first row", chromedp.Evaluate[string](`document.querySelector("#tenants tbody tr").dataset.state`))
	if first != "consent_needed_soon" && first != "consent_required" {
		t.Errorf("the first row is %q; want a tenant needing consent first", first)
	}
	// The stylesheet and script loaded under the page's CSP.
	styled := eval(t, ctx, "checking the stylesheet", chromedp.Evaluate[bool](`getComputedStyle(document.querySelector("table.tenants")).borderCollapse === "collapse"`))
	if !styled {
		t.Error("console.css did not apply")
	}

	// Connect: a top-level navigation through the simulator's consent page
	// back to sidekey's callback.
	steps(t, ctx, "connecting oauth2",
		chromedp.Click(chromedp.CSS(`#tenants tr[data-tenant="oauth2"] a.connect`)),
		chromedp.WaitVisible(chromedp.CSS("h1")))
	testwait.For(t, "the callback page", func() bool {
		url, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.readyState === "complete" ? location.pathname : ""`))
		return err == nil && url == "/_sidekey/oauth/callback"
	})
	heading := eval(t, ctx, "reading the callback page", chromedp.Text(chromedp.CSS("h1")))
	if !strings.Contains(heading, "connected") {
		t.Fatalf("after Connect the page says %q; want connected", heading)
	}
	if got := get(t, r.base+"/oauth2/v1/items"); got.status != 200 {
		t.Fatalf("oauth2 after Connect: %d %s", got.status, got.body)
	}
	steps(t, ctx, "back to the console", chromedp.Navigate(console), chromedp.WaitVisible(chromedp.CSS("#tenants")))
	if got := rowStates(t, ctx, "tenants")["oauth2"]; got != "connected" {
		t.Errorf("oauth2 after Connect: %q; want connected", got)
	}
	hasTimeline := eval(t, ctx, "reading the timeline", chromedp.Evaluate[bool](`!!document.querySelector('#tenants tr[data-tenant="oauth2"] svg.timeline rect.access') &&
		!!document.querySelector('#tenants tr[data-tenant="scayle"] svg.timeline rect.refresh')`))
	if !hasTimeline {
		t.Error("oauth2's access-token expiry or scayle's refresh-token expiry is not drawn on the timeline")
	}

	html := eval(t, ctx, "reading the page", chromedp.OuterHTML(chromedp.CSS("html")))
	for _, secret := range []string{clientSecret, "shop-secret-do-not-leak", "Bearer", "access_token", "refresh_token"} {
		if strings.Contains(html, secret) {
			t.Errorf("the console contains %q", secret)
		}
	}
	png := eval(t, ctx, "taking a screenshot", chromedp.FullScreenshot(100))
	shot := filepath.Join("..", ".cache", "console.png")
	if err := os.MkdirAll(filepath.Dir(shot), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}

	// Disconnect asks for confirmation, then removes the connection.
	button := `#tenants tr[data-tenant="branch-7"] button.disconnect`
	steps(t, ctx, "arming disconnect", chromedp.Click(chromedp.CSS(button)))
	if got := rowStates(t, ctx, "tenants")["branch-7"]; got == "" {
		t.Fatal("one click disconnected without confirmation")
	}
	steps(t, ctx, "confirming disconnect", chromedp.Click(chromedp.CSS(button)))
	testwait.For(t, "branch-7 to leave the console", func() bool {
		gone, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.readyState === "complete" && !!document.querySelector("#tenants") &&
			!document.querySelector('#tenants tr[data-tenant="branch-7"]')`))
		return err == nil && gone
	})
	if got := get(t, r.base+"/_sidekey/admin/connections/branch-7"); got.status != 404 {
		t.Errorf("branch-7 after Disconnect: %d; want 404", got.status)
	}
	if got := front.unsafeRequests(); len(got) != 1 || got[0] != "DELETE /_sidekey/admin/connections/branch-7 same-origin" {
		t.Errorf("state-changing requests through the guard: %q; want the one same-origin DELETE", got)
	}
}

// guard is a front for sidekey that, like a cross-site guard, refuses a
// state-changing request unless the browser marked it same-origin
// (Sec-Fetch-Site: same-origin, and Origin equal to the page's origin).
type guard struct {
	url string

	mu     sync.Mutex // guards unsafe
	unsafe []string   // "METHOD path verdict" of each non-GET request
}

// sameOriginGuard starts a guard in front of base.
func sameOriginGuard(t *testing.T, base string) *guard {
	t.Helper()
	target, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	g := &guard{}
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(target); pr.Out.Host = pr.In.Host }}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			verdict := "same-origin"
			if r.Header.Get("Sec-Fetch-Site") != "same-origin" || r.Header.Get("Origin") != "http://"+r.Host {
				verdict = "refused"
			}
			g.mu.Lock()
			g.unsafe = append(g.unsafe, r.Method+" "+r.URL.Path+" "+verdict)
			g.mu.Unlock()
			if verdict == "refused" {
				http.Error(w, "cross_site_refused", http.StatusForbidden)
				return
			}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	g.url = srv.URL
	return g
}

// unsafeRequests returns the non-GET requests the guard saw.
func (g *guard) unsafeRequests() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.unsafe...)
}

package server_test

import (
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sidekey/sidekey/config"
	"github.com/sidekey/sidekey/store"
)

// TestOpenLoginCannotFillTheStore: the open login route is rate-limited
// per tenant (429 rate_limited with Retry-After beyond the burst), and the
// sweep deletes every flow nobody finished once consentTTL has passed,
// while a fresh one stays.
func TestOpenLoginCannotFillTheStore(t *testing.T) {
	sc := newCustomerSCAYLE(t, clientID, time.Hour)
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	st := store.NewMemory()
	base, srv := startServerOn(t, &config.Config{Tenants: map[string]*config.Tenant{"shop": sessionsTenant(sc, clientID)}}, st, now)

	start := base + "/_sidekey/login/shop?return_to=" + url.QueryEscape(shopReturn)
	noRedirects := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var started, refused int
	for range 300 {
		resp, err := noRedirects.Get(start)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusFound:
			started++
		case resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("X-Sidekey-Error") == "rate_limited" && resp.Header.Get("Retry-After") != "":
			refused++
		default:
			t.Fatalf("login start: %d %q", resp.StatusCode, resp.Header.Get("X-Sidekey-Error"))
		}
	}
	if refused == 0 {
		t.Errorf("300 login starts in a burst: none refused; want the flood limited")
	}
	flows := len(keysUnder(t, st, "consent/"))
	if flows != started {
		t.Errorf("%d flows stored for %d started logins", flows, started)
	}

	// Eleven minutes on, every one of them is past its 10-minute life.
	clock.Add(int64(11 * time.Minute))
	if n := srv.SweepFlows(t.Context()); n != flows {
		t.Errorf("the sweep deleted %d abandoned flows; want %d", n, flows)
	}
	if left := keysUnder(t, st, "consent/"); len(left) != 0 {
		t.Errorf("%d flows left after the sweep; want 0", len(left))
	}
	// A login started now survives the sweep.
	resp, err := noRedirects.Get(start)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("login start after the sweep: %d; want 302 (the limit refills with time)", resp.StatusCode)
	}
	if n := srv.SweepFlows(t.Context()); n != 0 {
		t.Errorf("the sweep deleted %d fresh flows; want 0", n)
	}
	if left := keysUnder(t, st, "consent/"); len(left) != 1 {
		t.Errorf("%d flows after sweeping a fresh one; want 1", len(left))
	}
}

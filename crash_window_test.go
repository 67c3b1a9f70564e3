package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sidekey/sidekey/providers/providertest"
)

// TestKill9AfterRotationNeedsOnlyAReconnect aims a SIGKILL at the one window
// no client can close: SCAYLE has rotated the refresh token and its answer
// has not reached sidekey. After the restart the old refresh token is
// refused; sidekey must then say so plainly — 503 consent_required naming
// the way to reconnect, the same on /_sidekey/status — keep serving its
// other tenants, and work again after one consent, with nothing secret in
// its logs.
func TestKill9AfterRotationNeedsOnlyAReconnect(t *testing.T) {
	shop := newShop(t, "window", 2*time.Second)
	sc, secret, shopSecret := shop.sim, shop.secret, shop.shopSecret
	ss := providertest.NewSimpleStore(providertest.SimOptions{ClientID: "plain", ClientSecret: "plain-secret"})
	defer ss.Close()
	p := startShop(t, shop, "log: {level: debug, access_log: false}\n", fmt.Sprintf(`  cart:
    provider: simplestore
    client_id: plain
    client_secret: plain-secret
    token_url: %s
    api_url: %s
`, ss.TokenURL(), ss.APIURL()))
	c, logs := p.child, p.logs
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(c.base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/shop/v1/echo/basket"); code != 200 {
		t.Fatalf("before the kill: %d %s", code, body)
	}

	// The next refresh is answered 1 min after the rotation: kill sidekey
	// as soon as SCAYLE has rotated.
	sc.SetTokenResponseDelay(time.Minute)
	deadline := time.Now().Add(10 * time.Second)
	for sc.LatestTokenUsed() {
		if time.Now().After(deadline) {
			t.Fatal("no refresh within 10 s")
		}
		get("/shop/v1/echo/basket")
		time.Sleep(20 * time.Millisecond)
	}
	c.kill()
	sc.SetTokenResponseDelay(0)

	p.restart(t)
	c = p.child
	// The access token stored before the rotation serves out its life;
	// then the refused refresh token makes the tenant consent_required.
	deadline = time.Now().Add(10 * time.Second)
	code, body := get("/shop/v1/echo/basket")
	for code == 200 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		code, body = get("/shop/v1/echo/basket")
	}
	if code != 503 || !strings.Contains(body, `"consent_required"`) || !strings.Contains(body, "sidekey connect shop") {
		t.Fatalf("after the lost rotation: %d %s; want 503 consent_required naming `sidekey connect shop`", code, body)
	}
	if code, body := get("/_sidekey/status"); code != 200 || !strings.Contains(body, "consent_required") {
		t.Errorf("/_sidekey/status: %d %s; want the tenant shown as consent_required", code, body)
	}
	if code, body := get("/cart/v1/cart/42"); code != 200 {
		t.Errorf("another tenant after the lost rotation: %d %s", code, body)
	}

	// One consent brings it back.
	if code, body := get("/_sidekey/oauth/connect/shop"); code != 200 {
		t.Fatalf("reconnect: %d %s", code, body)
	}
	if code, body := get("/shop/v1/echo/basket"); code != 200 {
		t.Errorf("after reconnecting: %d %s", code, body)
	}
	for _, s := range []string{secret, shopSecret, "plain-secret", `"refresh_token":"`} {
		if strings.Contains(logs.String(), s) {
			t.Errorf("%q appears in sidekey's logs", s)
		}
	}
	c.kill()
}

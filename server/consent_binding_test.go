package server_test

import (
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"

	"github.com/sidekey/sidekey/config"
)

// browser is a client with its own cookie jar that follows sidekey's
// redirect to the simulated consent page and stops before the callback,
// returning the callback URL with its state removed (as Istores, which
// documents no state, may send it).
type browser struct {
	client *http.Client
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{client: &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		if strings.HasSuffix(req.URL.Path, "/_sidekey/oauth/callback") {
			return http.ErrUseLastResponse
		}
		return nil
	}}}
}

// consent starts tenant's consent and returns the stateless callback URL.
func (b *browser) consent(t *testing.T, base, tenant string) string {
	t.Helper()
	resp, err := b.client.Get(base + "/_sidekey/oauth/connect/" + tenant)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	u, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusFound || u.Path != "/_sidekey/oauth/callback" {
		t.Fatalf("consent: %d to %q; want 302 to the callback", resp.StatusCode, resp.Header.Get("Location"))
	}
	q := u.Query()
	q.Del("state")
	u.RawQuery = q.Encode()
	return u.String()
}

// callback answers the callback from this browser, with its cookies.
func (b *browser) callback(t *testing.T, callback string) int {
	t.Helper()
	resp, err := b.client.Get(callback)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestStatelessCallbackBoundToTheBrowser: an Istores callback without state
// completes only the consent the same browser started (its consent-binding
// cookie); planted without the cookie, or with another browser's, it is
// refused and changes nothing.
func TestStatelessCallbackBoundToTheBrowser(t *testing.T) {
	ist := platformNamed(t, "istores")
	r := start(t, &config.Config{Tenants: map[string]*config.Tenant{"ist": ist.tenant}}, nil)
	victim, other := newBrowser(t), newBrowser(t)
	planted := victim.consent(t, r.base, "ist")

	// The other browser's cookie belongs to a consent it completed itself.
	used := other.consent(t, r.base, "ist")
	cbURL, _ := url.Parse(used)
	otherCookies := other.client.Jar.Cookies(cbURL)
	if len(otherCookies) != 1 {
		t.Fatalf("the other browser holds %d cookies for the callback; want the consent binding", len(otherCookies))
	}
	if got := other.callback(t, used); got != http.StatusOK {
		t.Fatalf("the other browser's own consent: %d; want 200", got)
	}
	if got := do(t, "DELETE", r.base+"/_sidekey/admin/connections/ist", nil, nil); got.status != 200 {
		t.Fatalf("disconnect: %d %s", got.status, got.body)
	}
	tokens := ist.tokens()

	forged := map[string]string{"Cookie": "sidekey_consent=" + strings.Repeat("A", 43)}
	for name, send := range map[string]func() int{
		"no cookie":       func() int { return get(t, planted).status },
		"a forged cookie": func() int { return do(t, "GET", planted, nil, forged).status },
		"another browser's one": func() int {
			return do(t, "GET", planted, nil, map[string]string{"Cookie": otherCookies[0].String()}).status
		},
		"none, from the other browser": func() int { return other.callback(t, planted) },
	} {
		if got := send(); got != http.StatusBadRequest {
			t.Errorf("stateless callback with %s: %d; want 400", name, got)
		}
	}
	if n := ist.tokens() - tokens; n != 0 {
		t.Errorf("refused callbacks made %d token requests; want 0", n)
	}
	if got := get(t, r.base+"/ist"+ist.api); got.header.Get("X-Sidekey-Error") != "consent_required" {
		t.Fatalf("after refused callbacks: %d %q; want consent_required (nothing stored)", got.status, got.header.Get("X-Sidekey-Error"))
	}

	if got := victim.callback(t, planted); got != http.StatusOK {
		t.Fatalf("the browser that started the consent: %d; want 200", got)
	}
	if got := get(t, r.base+"/ist"+ist.api); got.status != 200 {
		t.Errorf("after the consent: %d %s; want 200", got.status, got.body)
	}
}

// TestConsentBindingCookie: oauth/connect sets the cookie HttpOnly,
// SameSite=Lax, below /_sidekey/oauth/, Secure behind an https public_url;
// only for platforms whose callback may lack state.
func TestConsentBindingCookie(t *testing.T) {
	ist, sc := platformNamed(t, "istores"), platformNamed(t, "scayle")
	r := start(t, &config.Config{PublicURL: "https://sidekey.example",
		Tenants: map[string]*config.Tenant{"ist": ist.tenant, "sc": sc.tenant}}, nil)
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	cookies := func(tenant string) []*http.Cookie {
		resp, err := noFollow.Get(r.base + "/_sidekey/oauth/connect/" + tenant)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.Cookies()
	}
	got := cookies("ist")
	if len(got) != 1 {
		t.Fatalf("istores connect set %d cookies; want 1", len(got))
	}
	c := got[0]
	if c.Name != "sidekey_consent" || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/_sidekey/oauth/" ||
		!c.Secure || c.MaxAge != 600 || len(c.Value) != 43 {
		t.Errorf("cookie %s; want sidekey_consent, HttpOnly, SameSite=Lax, Path=/_sidekey/oauth/, Secure, Max-Age=600, random", c)
	}
	if again := cookies("ist"); len(again) != 1 || again[0].Value == c.Value {
		t.Error("a second consent got the same binding value; want a fresh random one")
	}
	if n := len(cookies("sc")); n != 0 {
		t.Errorf("scayle connect set %d cookies; want none (its callback always carries state)", n)
	}
}

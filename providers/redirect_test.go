package providers

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/oauth2"

	"github.com/sidekey/sidekey/config"
)

// leakyQuery is in every Location the redirecting endpoint sends: no error
// may echo it.
const leakyQuery = "stolen=query-must-not-leak-77"

// credentialOps are every request a provider sends with a credential,
// against a token endpoint (and token management) at base.
func credentialOps(t *testing.T, base string) map[string]func() error {
	t.Helper()
	ctx := context.Background()
	tokenURL := base + "/token"
	build := func(name string, c *config.Tenant) *Tenant {
		t.Helper()
		if c.ClientID == "" {
			c.ClientID, c.ClientSecret = testClientID, testSecret
		}
		c.TokenURL, c.APIURL = tokenURL, base+"/api"
		tenant, err := Build(name, c, Options{})
		if err != nil {
			t.Fatal(err)
		}
		return tenant
	}
	fetch := func(tenant *Tenant) func() error {
		return func() error { _, err := tenant.Source.Token(); return err }
	}
	exchange := func(tenant *Tenant) func() error {
		return func() error {
			_, err := tenant.AuthCode.Exchange(ctx, "code-must-not-leak", newConsent("s"))
			return err
		}
	}
	refresh := func(tenant *Tenant) func() error {
		return func() error { _, err := tenant.AuthCode.Refresh(ctx, "refresh-must-not-leak"); return err }
	}
	hippo := build("hippo", &config.Tenant{Provider: "storehippo", Store: "acme", Scopes: []string{"read"}, AuthURL: base + "/auth"})
	istores := build("istores", &config.Tenant{Provider: "istores", Scopes: []string{"products:read"}, AuthURL: base + "/auth"})
	code := build("code", &config.Tenant{Provider: "oauth2", Grant: "authorization_code", AuthURL: base + "/auth"})
	sc := scayleConfig()
	sc.AuthURL = base + "/auth"
	scayle := build("scayle", sc)
	access, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"jti": "token-id-1"}).SignedString([]byte("k"))
	if err != nil {
		t.Fatal(err)
	}
	return map[string]func() error{
		"simplestore fetch":            fetch(build("ss", &config.Tenant{Provider: "simplestore"})),
		"oauth2 fetch, secret in body": fetch(build("cc-body", &config.Tenant{Provider: "oauth2", ClientAuth: "body"})),
		"oauth2 fetch, Basic":          fetch(build("cc-basic", &config.Tenant{Provider: "oauth2", ClientAuth: "header"})),
		"oauth2 refresh_token grant": fetch(build("rt", &config.Tenant{Provider: "oauth2", Grant: "refresh_token",
			RefreshToken: "refresh-must-not-leak"})),
		"oauth2 code exchange":     exchange(code),
		"oauth2 code refresh":      refresh(code),
		"storehippo code exchange": exchange(hippo),
		"storehippo refresh":       refresh(hippo),
		"istores code exchange":    exchange(istores),
		"scayle code exchange":     exchange(scayle),
		"scayle refresh":           refresh(scayle),
		"scayle revoke": func() error {
			return scayle.AuthCode.(Revoker).Revoke(ctx, &oauth2.Token{AccessToken: access, RefreshToken: "refresh-must-not-leak"})
		},
	}
}

// TestCredentialsNeverFollowRedirects points every credential-carrying
// request at an endpoint that redirects, with each redirect status, to a
// recording "other host" (another port, by IP and by hostname): the other
// host receives nothing, and the error names the status and the host but
// neither the Location's query nor a secret.
func TestCredentialsNeverFollowRedirects(t *testing.T) {
	var stolen atomic.Int64
	other := newHTTPServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		stolen.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token":"attacker-token","token_type":"Bearer","expires_in":3600}`))
	}))
	otherURL, _ := url.Parse(other)
	targets := []string{otherURL.Host, "localhost:" + otherURL.Port()}

	for _, status := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		for _, target := range targets {
			base := newHTTPServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Location", "http://"+target+r.URL.Path+"?"+leakyQuery)
				w.WriteHeader(status)
			}))
			for op, call := range credentialOps(t, base) {
				err := call()
				if err == nil {
					t.Errorf("%d to %s, %s: no error; want the redirect refused", status, target, op)
					continue
				}
				msg := err.Error()
				if !strings.Contains(msg, strconv.Itoa(status)) || !strings.Contains(msg, target) {
					t.Errorf("%d to %s, %s: %q; want the status and the host named", status, target, op, msg)
				}
				for _, secret := range []string{"stolen=", "query-must-not-leak", testSecret, "refresh-must-not-leak", "code-must-not-leak"} {
					if strings.Contains(msg, secret) {
						t.Errorf("%d to %s, %s: %q echoes %q", status, target, op, msg, secret)
					}
				}
			}
		}
	}
	if n := stolen.Load(); n != 0 {
		t.Errorf("the other host received %d requests; want 0", n)
	}
}

// TestRefuseRedirectsKeepsOtherAnswers: a 3xx without Location and a 2xx
// pass through; the client given is not modified.
func TestRefuseRedirectsKeepsOtherAnswers(t *testing.T) {
	base := newHTTPServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/not-modified" {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	given := &http.Client{}
	client := RefuseRedirects(given)
	if given.Transport != nil || given.CheckRedirect != nil {
		t.Error("RefuseRedirects modified the client it was given")
	}
	if RefuseRedirects(client).Transport != client.Transport {
		t.Error("wrapping twice stacked a second refuser")
	}
	for path, want := range map[string]int{"/not-modified": http.StatusNotModified, "/ok": http.StatusOK} {
		resp, err := client.Get(base + path)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s: %d; want %d", path, resp.StatusCode, want)
		}
	}
}

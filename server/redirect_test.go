package server_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/sidekey/sidekey/config"
)

// TestTokenRedirectRefusedEndToEnd: the server's own token client refuses a
// token endpoint's redirect. The caller gets token_unavailable naming the
// status and the other host, the other host receives nothing, and neither
// the Location's query nor the secret reaches the answer or the status.
func TestTokenRedirectRefusedEndToEnd(t *testing.T) {
	var stolen atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		stolen.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token":"attacker-token","token_type":"Bearer","expires_in":3600}`))
	}))
	t.Cleanup(other.Close)
	otherURL, _ := url.Parse(other.URL)
	otherHost := "localhost:" + otherURL.Port()
	redirecting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://"+otherHost+"/token?stolen=query-must-not-leak", http.StatusTemporaryRedirect)
	}))
	t.Cleanup(redirecting.Close)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		stolen.Add(1) // the attacker's token must never be used either
	}))
	t.Cleanup(api.Close)

	r := start(t, &config.Config{Tenants: map[string]*config.Tenant{"t": {Provider: "simplestore",
		ClientID: clientID, ClientSecret: clientSecret, TokenURL: redirecting.URL + "/token", APIURL: api.URL}}}, nil)
	got := get(t, r.base+"/t/v1/x")
	if got.status != http.StatusServiceUnavailable || got.header.Get("X-Sidekey-Error") != "token_unavailable" ||
		!strings.Contains(got.body, "307") || !strings.Contains(got.body, otherHost) {
		t.Errorf("answer %d %q %s; want 503 token_unavailable naming 307 and %s", got.status, got.header.Get("X-Sidekey-Error"), got.body, otherHost)
	}
	status := get(t, r.base+"/_sidekey/status")
	for where, text := range map[string]string{"answer": got.body, "status": status.body} {
		if strings.Contains(text, "query-must-not-leak") || strings.Contains(text, clientSecret) {
			t.Errorf("%s echoes the Location's query or the secret: %s", where, text)
		}
	}
	if n := stolen.Load(); n != 0 {
		t.Errorf("the other host (or the API with its token) received %d requests; want 0", n)
	}
}

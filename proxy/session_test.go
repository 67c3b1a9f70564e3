package proxy_test

import (
	"net/http"
	"testing"

	"github.com/sidekey/sidekey/config"
	"github.com/sidekey/sidekey/providers"
	"github.com/sidekey/sidekey/proxy"
	"github.com/sidekey/sidekey/tokensource"
)

// staticEngine is the token engine of a static tenant holding token.
func staticEngine(t *testing.T, token string) *tokensource.Source {
	t.Helper()
	spec, err := providers.Build("s", &config.Tenant{Provider: "static", Token: config.Secret(token), APIURL: "http://127.0.0.1:1"}, providers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e := tokensource.RefreshAhead(spec.Source, tokensource.Options{Name: "s"})
	t.Cleanup(e.Close)
	return e
}

// TestSessionRouteInjectsEachSessionsToken: a sessions route takes each
// request's token from the session its lookup finds, never from the route's
// own engine; Sidekey-Session never reaches the upstream; a refused session
// is 401 with the lookup's code.
func TestSessionRouteInjectsEachSessionsToken(t *testing.T) {
	up, seen := recordingUpstream(t)
	rt := staticRoute(t, "shop", up.URL, config.Tenant{})
	engines := map[string]proxy.TokenSource{"alice": staticEngine(t, "tok-alice"), "bob": staticEngine(t, "tok-bob")}
	rt.SetSessions(func(r *http.Request) (proxy.TokenSource, error) {
		h := r.Header.Get(proxy.SessionHeader)
		if h == "" {
			return nil, &proxy.SessionError{Code: proxy.CodeSessionRequired, Message: "send a session"}
		}
		if e, ok := engines[h]; ok {
			return e, nil
		}
		return nil, &proxy.SessionError{Code: proxy.CodeSessionUnknown, Message: "no such session"}
	})
	if !rt.HasSessions() {
		t.Fatal("HasSessions is false after SetSessions")
	}
	fe := frontend(t, proxy.Options{}, rt)
	tests := []struct {
		session string // Sidekey-Session sent
		status  int    // status the caller gets
		code    string // X-Sidekey-Error
		auth    string // Authorization the upstream sees (when reached)
	}{
		{"alice", 200, "", "Bearer tok-alice"},
		{"bob", 200, "", "Bearer tok-bob"},
		{"", 401, proxy.CodeSessionRequired, ""},
		{"mallory", 401, proxy.CodeSessionUnknown, ""},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest("GET", fe.URL+"/shop/v1/me", nil)
		if tt.session != "" {
			req.Header.Set(proxy.SessionHeader, tt.session)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.status || resp.Header.Get(proxy.ErrorHeader) != tt.code {
			t.Errorf("session %q: got %d %q; want %d %q", tt.session, resp.StatusCode, resp.Header.Get(proxy.ErrorHeader), tt.status, tt.code)
			continue
		}
		if tt.status != 200 {
			continue
		}
		got, _ := seen.last(t)
		if a := got.Header.Get("Authorization"); a != tt.auth {
			t.Errorf("session %q: upstream Authorization %q; want %q", tt.session, a, tt.auth)
		}
		if v := got.Header.Get(proxy.SessionHeader); v != "" {
			t.Errorf("session %q: the upstream saw Sidekey-Session %q", tt.session, v)
		}
	}
}

// TestSessionHeaderNeverReachesAnyUpstream: a tenant without sessions
// ignores Sidekey-Session and still strips it.
func TestSessionHeaderNeverReachesAnyUpstream(t *testing.T) {
	up, seen := recordingUpstream(t)
	fe := frontend(t, proxy.Options{}, staticRoute(t, "plain", up.URL, config.Tenant{}))
	req, _ := http.NewRequest("GET", fe.URL+"/plain/x", nil)
	req.Header.Set(proxy.SessionHeader, "some-handle")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	got, _ := seen.last(t)
	if resp.StatusCode != 200 || got.Header.Get(proxy.SessionHeader) != "" || got.Header.Get("Authorization") != "Bearer "+testToken {
		t.Errorf("got %d, upstream Sidekey-Session %q, Authorization %q; want 200, none, the tenant's token",
			resp.StatusCode, got.Header.Get(proxy.SessionHeader), got.Header.Get("Authorization"))
	}
}

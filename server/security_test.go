package server_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sidekey/sidekey/config"
)

// sendRaw writes raw bytes on one connection and reads every response until
// the server closes it or goes quiet (see pipeline).
func sendRaw(t *testing.T, addr, raw string) []*http.Response {
	t.Helper()
	resps, _ := pipeline(t, addr, raw)
	return resps
}

// TestNoRequestSmuggling sends framing tricks (conflicting Content-Length
// and Transfer-Encoding, duplicate lengths, obs-fold) that aim to slip a
// second request past the proxy. Whatever sidekey answers (it may reject
// the framing, or answer the second request itself as an unknown tenant),
// the upstream only ever sees requests sidekey routed under /v1/echo/...:
// sidekey re-frames every request it forwards, so a smuggled "/admin"
// never arrives.
func TestNoRequestSmuggling(t *testing.T) {
	sim := newSimpleStore(t, time.Hour)
	r := start(t, &config.Config{Tenants: map[string]*config.Tenant{"shop": simpleTenant(sim, clientSecret)}}, nil)
	addr := strings.TrimPrefix(r.base, "http://")
	smuggled := "GET /admin HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
	attacks := map[string]string{
		"CL.TE":         "POST /shop/v1/echo/a HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled,
		"TE.CL":         "POST /shop/v1/echo/a HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 60\r\n\r\n0\r\n\r\n" + smuggled,
		"CL.CL":         "POST /shop/v1/echo/a HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nContent-Length: 40\r\n\r\n" + smuggled,
		"TE obfuscated": "POST /shop/v1/echo/a HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: xchunked\r\nContent-Length: 0\r\n\r\n" + smuggled,
		"obs-fold":      "GET /shop/v1/echo/a HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: 1\r\n Transfer-Encoding: chunked\r\n\r\n" + smuggled,
	}
	for name, raw := range attacks {
		before := sim.APIRequests()
		_ = sendRaw(t, addr, raw)
		if sim.APIRequests() > before {
			if last := sim.LastAPIRequest(); !strings.HasPrefix(last.Path, "/v1/echo/") {
				t.Errorf("%s: the upstream saw %q", name, last.RequestURI)
			}
		}
	}
}

func TestOversizedHeadersAreRefused(t *testing.T) {
	sim := newSimpleStore(t, time.Hour)
	r := start(t, &config.Config{Tenants: map[string]*config.Tenant{"shop": simpleTenant(sim, clientSecret)}}, nil)
	raw := "GET /shop/v1/cart/1 HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + strings.Repeat("a", 200<<10) + "\r\n\r\n"
	resps := sendRaw(t, strings.TrimPrefix(r.base, "http://"), raw)
	if len(resps) != 1 || resps[0].StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("got %d responses (first %v); want one 431", len(resps), statusOf(resps))
	}
	if sim.APIRequests() != 0 {
		t.Error("an oversized request reached the upstream")
	}
}

func statusOf(rs []*http.Response) int {
	if len(rs) == 0 {
		return 0
	}
	return rs[0].StatusCode
}

package proxy_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sidekey/sidekey/config"
	"github.com/sidekey/sidekey/proxy"
)

// received is one request as an upstream read it, body and trailers
// included.
type received struct {
	header  http.Header
	trailer http.Header
	body    string
}

// trailerUpstream records every request after reading its body, so that
// the request's trailers are known.
func trailerUpstream(t *testing.T) (*httptest.Server, func() []received) {
	t.Helper()
	var mu sync.Mutex
	var got []received
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, received{r.Header.Clone(), r.Trailer.Clone(), string(b)})
		mu.Unlock()
		fmt.Fprint(w, "ok")
	}))
	t.Cleanup(srv.Close)
	return srv, func() []received {
		mu.Lock()
		defer mu.Unlock()
		return append([]received(nil), got...)
	}
}

// TestTrailersCarryNoCallerCredentials sends a chunked body whose trailers
// hold the caller's credentials, announced and not: the upstream must see
// the body and harmless trailers, and no credential but the injected token.
func TestTrailersCarryNoCallerCredentials(t *testing.T) {
	for _, maxReplay := range []int64{0, -1} { // buffered for replay, and streamed
		t.Run(fmt.Sprintf("max_replay_body=%d", maxReplay), func(t *testing.T) {
			up, got := trailerUpstream(t)
			rt := staticRoute(t, "acme", up.URL, config.Tenant{TokenHeader: "X-Token", TokenFormat: "{token}"})
			fe := frontend(t, proxy.Options{CallerKeyHeader: "X-Sidekey-Key", MaxReplayBody: maxReplay}, rt)
			resp := rawRequest(t, fe.Listener.Addr().String(), "POST /acme/v1/x HTTP/1.1\r\nHost: sidekey\r\n"+
				"Transfer-Encoding: chunked\r\nTrailer: Authorization, X-Sidekey-Key, X-Fine\r\nConnection: close\r\n\r\n"+
				"5\r\nhello\r\n0\r\n"+
				"Authorization: Bearer caller-own\r\nX-Sidekey-Key: caller-key\r\nProxy-Authorization: Bearer caller-key\r\n"+
				"X-Token: caller-own\r\nX-Fine: kept\r\n\r\n")
			if resp.StatusCode != 200 {
				t.Fatalf("status %d; want 200", resp.StatusCode)
			}
			reqs := got()
			if len(reqs) != 1 {
				t.Fatalf("upstream saw %d requests; want 1", len(reqs))
			}
			r := reqs[0]
			if r.body != "hello" {
				t.Errorf("body %q; want %q", r.body, "hello")
			}
			if v := r.header.Values("X-Token"); len(v) != 1 || v[0] != testToken {
				t.Errorf("X-Token = %q; want the injected token alone", v)
			}
			for _, h := range []http.Header{r.header, r.trailer} {
				for k, vs := range h {
					for _, v := range vs {
						if strings.Contains(v, "caller-") {
							t.Errorf("a caller credential reached the upstream in %s: %q", k, v)
						}
					}
				}
			}
		})
	}
}

// TestUpgradeNeedsAllowUpgrade: a WebSocket or h2c upgrade is refused unless
// the tenant allows it, because the tunnel's traffic escapes the path checks.
func TestUpgradeNeedsAllowUpgrade(t *testing.T) {
	var mu sync.Mutex
	var upgrades int
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		upgrades++
		mu.Unlock()
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
		_ = brw.Flush()
		line, _ := brw.ReadString('\n') // echo one line through the tunnel
		_, _ = brw.WriteString("echo " + line)
		_ = brw.Flush()
	}))
	t.Cleanup(up.Close)
	allowed := map[string]bool{"open": true}
	fe := frontend(t, proxy.Options{AllowUpgrade: func(tenant string) bool { return allowed[tenant] }},
		staticRoute(t, "acme", up.URL, config.Tenant{}), staticRoute(t, "open", up.URL, config.Tenant{}))
	addr := fe.Listener.Addr().String()
	websocket := "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	for what, raw := range map[string]string{
		"websocket": "GET /acme/ws HTTP/1.1\r\nHost: sidekey\r\n" + websocket,
		"h2c":       "GET /acme/x HTTP/1.1\r\nHost: sidekey\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
		"no token":  "GET /acme/ws HTTP/1.1\r\nHost: sidekey\r\nUpgrade: websocket\r\n\r\n",
	} {
		resp := rawRequest(t, addr, raw)
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get(proxy.ErrorHeader) != proxy.CodeBadRequest {
			t.Errorf("%s: got %d %q; want 400 bad_request", what, resp.StatusCode, resp.Header.Get(proxy.ErrorHeader))
		}
	}
	mu.Lock()
	n := upgrades
	mu.Unlock()
	if n != 0 {
		t.Fatalf("the upstream saw %d refused upgrades", n)
	}

	// allow_upgrade: the tunnel works.
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprint(conn, "GET /open/ws HTTP/1.1\r\nHost: sidekey\r\n"+websocket)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("allowed upgrade: %v %v; want 101", resp, err)
	}
	fmt.Fprint(conn, "ping\n")
	if line, err := br.ReadString('\n'); err != nil || line != "echo ping\n" {
		t.Errorf("through the tunnel: %q, %v; want %q", line, err, "echo ping\n")
	}
}

// TestUpstreamCannotForgeSidekeyErrors: X-Sidekey-Error means sidekey
// answered itself, so the upstream's own, as a header or a trailer, is
// removed.
func TestUpstreamCannotForgeSidekeyErrors(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(proxy.ErrorHeader, "consent_required")
		if r.URL.Path == "/trailer" {
			w.Header().Set("Trailer", proxy.ErrorHeader+", X-Checksum")
			w.WriteHeader(http.StatusOK)
			fmt.Fprint(w, "body")
			w.Header().Set(proxy.ErrorHeader, "token_unavailable")
			w.Header().Set("X-Checksum", "42")
			w.Header().Set(http.TrailerPrefix+"X-Sidekey-Error", "rate_limited") // unannounced
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, `{"error":"consent_required"}`)
	}))
	t.Cleanup(up.Close)
	fe := frontend(t, proxy.Options{}, staticRoute(t, "acme", up.URL, config.Tenant{}))

	resp, err := http.Get(fe.URL + "/acme/x")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Values(proxy.ErrorHeader) != nil {
		t.Errorf("got %d with %s %q; want the upstream's 503 without it", resp.StatusCode, proxy.ErrorHeader, resp.Header.Values(proxy.ErrorHeader))
	}

	resp, err = http.Get(fe.URL + "/acme/trailer")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "body" || resp.Trailer.Get("X-Checksum") != "42" {
		t.Errorf("body %q, trailer %v; want the upstream's body and X-Checksum", b, resp.Trailer)
	}
	if v := resp.Header.Values(proxy.ErrorHeader); v != nil {
		t.Errorf("header %s = %q; want none", proxy.ErrorHeader, v)
	}
	if v := resp.Trailer.Values(proxy.ErrorHeader); v != nil {
		t.Errorf("trailer %s = %q; want none", proxy.ErrorHeader, v)
	}
}

package server_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sidekey/sidekey/config"
	"github.com/sidekey/sidekey/proxy"
)

// pipeline writes raw on one connection and reads every response until the
// server closes the connection; closed is false when it stayed open (the
// read timed out).
func pipeline(t *testing.T, addr, raw string) (resps []*http.Response, closed bool) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	br := bufio.NewReader(conn)
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return resps, !errors.Is(err, os.ErrDeadlineExceeded)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		resps = append(resps, resp)
	}
}

// TestAmbiguousFramingIsRefusedAndCloses: a request whose body length two
// servers could read two ways is answered 400 bad_request and its
// connection closed, so what follows it is never read as a request; nothing
// reaches the platform.
func TestAmbiguousFramingIsRefusedAndCloses(t *testing.T) {
	sim := newSimpleStore(t, time.Hour)
	r := start(t, &config.Config{Tenants: map[string]*config.Tenant{"shop": simpleTenant(sim, clientSecret)}}, nil)
	addr := strings.TrimPrefix(r.base, "http://")
	next := "GET /shop/v1/echo/smuggled HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
	attacks := map[string]string{
		"CL.TE":         "POST /shop/v1/echo/a HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + next,
		"TE.CL":         "POST /shop/v1/echo/a HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n0\r\n\r\n" + next,
		"TE.CL cased":   "POST /shop/v1/echo/a HTTP/1.1\r\nhost: 127.0.0.1\r\ntransfer-encoding: CHUNKED\r\ncontent-length: 3\r\n\r\n0\r\n\r\n" + next,
		"TE obs-fold":   "POST /shop/v1/echo/a HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n" + next,
		"TE folded in":  "POST /shop/v1/echo/a HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: 1\r\n\tTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + next,
		"any obs-fold":  "GET /shop/v1/echo/a HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: 1\r\n 2\r\n\r\n" + next,
		"HTTP/1.0 TE":   "POST /shop/v1/echo/a HTTP/1.0\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\n0\r\n\r\n" + next,
		"after a good":  "GET /shop/v1/echo/ok HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nPOST /shop/v1/echo/a HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + next,
		"after OPTIONS": "OPTIONS * HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nPOST /shop/v1/echo/a HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + next,
	}
	for name, raw := range attacks {
		before := sim.APIRequests()
		resps, closed := pipeline(t, addr, raw)
		if n := len(resps); n == 0 || !closed {
			t.Errorf("%s: %d responses, connection closed %v; want the connection closed after the refusal", name, n, closed)
			continue
		}
		last := resps[len(resps)-1]
		if last.StatusCode != http.StatusBadRequest || last.Header.Get(proxy.ErrorHeader) != proxy.CodeBadRequest {
			t.Errorf("%s: the last answer is %d %q; want 400 bad_request", name, last.StatusCode, last.Header.Get(proxy.ErrorHeader))
		}
		want := int64(strings.Count(raw, "GET /shop/v1/echo/ok")) // the good request before the refused one
		if got := sim.APIRequests() - before; got != want {
			t.Errorf("%s: the platform saw %d requests; want %d", name, got, want)
		}
		if l := sim.LastAPIRequest(); l != nil && strings.Contains(l.Path, "smuggled") {
			t.Errorf("%s: the request behind the refused one was served", name)
		}
	}
}

// TestNetHTTPAlreadyRefusesSomeFraming pins what net/http itself does, so
// a Go upgrade that changes it shows here: differing Content-Lengths and
// unknown transfer codings are refused and the connection closed.
func TestNetHTTPAlreadyRefusesSomeFraming(t *testing.T) {
	sim := newSimpleStore(t, time.Hour)
	r := start(t, &config.Config{Tenants: map[string]*config.Tenant{"shop": simpleTenant(sim, clientSecret)}}, nil)
	addr := strings.TrimPrefix(r.base, "http://")
	next := "GET /shop/v1/echo/smuggled HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
	for name, tt := range map[string]struct {
		raw    string
		status int
	}{
		"CL.CL":           {"POST /shop/v1/echo/a HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nContent-Length: 40\r\n\r\n" + next, 400},
		"TE xchunked":     {"POST /shop/v1/echo/a HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: xchunked\r\n\r\n" + next, 501},
		"TE twice":        {"POST /shop/v1/echo/a HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + next, 501},
		"TE list":         {"POST /shop/v1/echo/a HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n" + next, 501},
		"CL sign":         {"POST /shop/v1/echo/a HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: +5\r\n\r\nhello" + next, 400},
		"fold first line": {"GET /shop/v1/echo/a HTTP/1.1\r\n Host: 127.0.0.1\r\n\r\n" + next, 400},
	} {
		resps, closed := pipeline(t, addr, tt.raw)
		if len(resps) != 1 || !closed || resps[0].StatusCode != tt.status {
			t.Errorf("%s: %d responses (first %d), closed %v; want one %d, then closed", name, len(resps), statusOf(resps), closed, tt.status)
		}
	}
	if n := sim.APIRequests(); n != 0 {
		t.Errorf("the platform saw %d requests; want none", n)
	}
}

// TestKeepAliveFollowsEveryBodyKind: the framing watch reads bodies as
// net/http does, so well-framed requests of every kind share one
// connection — bodies that look like requests included.
func TestKeepAliveFollowsEveryBodyKind(t *testing.T) {
	sim := newSimpleStore(t, time.Hour)
	r := start(t, &config.Config{Tenants: map[string]*config.Tenant{"shop": simpleTenant(sim, clientSecret)}}, nil)
	addr := strings.TrimPrefix(r.base, "http://")
	fake := "POST /x HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"
	chunked := "4;ext=1\r\n" + fake[:4] + "\r\n" + strconv.FormatInt(int64(len(fake)-4), 16) + "\r\n" + fake[4:] + "\r\n0\r\nX-Trailer: 1\r\n\r\n"
	raw := "POST /shop/v1/echo/1 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: " + strconv.Itoa(len(fake)) + "\r\n\r\n" + fake +
		"POST /shop/v1/echo/2 HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\nTrailer: X-Trailer\r\n\r\n" + chunked +
		"\r\nGET /shop/v1/echo/3 HTTP/1.1\nHost: 127.0.0.1\n\n" + // bare LF line ends, an empty line before
		"GET /shop/v1/echo/4 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
	resps, closed := pipeline(t, addr, raw)
	if len(resps) != 4 || !closed {
		t.Fatalf("%d responses, closed %v; want 4, then closed", len(resps), closed)
	}
	for i, resp := range resps {
		if resp.StatusCode != http.StatusOK {
			t.Errorf("request %d: %d %q; want 200", i+1, resp.StatusCode, resp.Header.Get(proxy.ErrorHeader))
		}
	}
	if n := sim.APIRequests(); n != 4 {
		t.Errorf("the platform saw %d requests; want 4", n)
	}
}

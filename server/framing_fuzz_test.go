package server

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"testing"
)

// FuzzFramingFollowsNetHTTP checks the framing watch against net/http's
// own request reader on the same bytes, fed in pieces of any size: every
// request net/http reads (with its body) up to the first refused one must
// have been noted, in order, under the same method and target — so a
// verdict can never land on the wrong request.
func FuzzFramingFollowsNetHTTP(f *testing.F) {
	for _, s := range []string{
		"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /b HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;e=1\r\nhello\r\n0\r\nT: 1\r\n\r\nGET /b HTTP/1.1\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /b HTTP/1.1\r\n\r\n",
		"POST /a HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /b HTTP/1.1\r\n\r\n",
		"GET /a HTTP/1.1\nHost: x\nX: 1\n 2\n\nGET /b HTTP/1.1\n\n",
		"POST /a HTTP/1.1\r\nContent-Length: 40\r\n\r\nPOST /x HTTP/1.1\r\nContent-Length: 0\r\n\r\nGET /b HTTP/1.1\r\n\r\n",
		"OPTIONS * HTTP/1.1\r\n\r\nPOST /a HTTP/0.9\r\nTransfer-Encoding: chunked\r\n\r\n",
	} {
		f.Add([]byte(s), uint8(1))
		f.Add([]byte(s), uint8(7))
	}
	f.Fuzz(func(t *testing.T, data []byte, piece uint8) {
		c := &framingConn{}
		for rest, k := data, int(piece)+1; len(rest) > 0; {
			k = min(k, len(rest))
			c.follow(rest[:k])
			rest = rest[k:]
		}
		br := bufio.NewReader(bytes.NewReader(data))
		for i := 0; ; i++ {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			if i >= len(c.notes) {
				t.Fatalf("net/http read request %d (%s %s) that the watch lost", i, req.Method, req.RequestURI)
			}
			if n := c.notes[i]; !isRequestLine(n.reqLine, req.Method, req.RequestURI) {
				t.Fatalf("request %d: the watch noted %q; net/http read %s %s", i, n.reqLine, req.Method, req.RequestURI)
			} else if n.problem != "" {
				return // the connection closes here
			}
			if _, err := io.Copy(io.Discard, req.Body); err != nil {
				return // net/http closes a connection whose body fails
			}
		}
	})
}

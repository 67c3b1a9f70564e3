package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"strconv"
	"sync"

	"github.com/sidekey/sidekey/proxy"
)

// Request framing that net/http accepts but a proxy must not.
//
// net/http serves a request carrying both Content-Length and
// Transfer-Encoding: chunked (it drops Content-Length and keeps the
// connection open), honours a Transfer-Encoding continued on an obs-fold
// line, and reads an HTTP/1.0 request's Transfer-Encoding as absent. A
// server in front of sidekey may frame such a request the other way, so
// what it takes for one request's body sidekey reads as the next request
// (request smuggling). RFC 9112 (6.1, 6.3, 5.2) says: refuse, or close the
// connection after answering. net/http deletes the evidence before a
// handler runs, so the framing is read off the connection's bytes:
// framingListener follows each plain-HTTP connection's requests (headers,
// then the body by Content-Length or chunks) and notes each request that is
// ambiguous; refuseAmbiguousFraming answers those 400 bad_request and
// closes the connection. TLS connections are passed through unwatched:
// net/http needs the *tls.Conn itself, so there the net/http behaviour
// stands (Content-Length is dropped before proxying; sidekey re-frames
// every request it forwards).

// framingListener wraps every plain-HTTP connection ln accepts in a
// framingConn.
func framingListener(ln net.Listener) net.Listener { return &framingLn{Listener: ln} }

type framingLn struct{ net.Listener }

// Accept wraps the connection unless it is TLS.
func (l *framingLn) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if _, ok := c.(*tls.Conn); ok {
		return c, nil
	}
	return &framingConn{Conn: c}, nil
}

// framingConnKey carries a request's *framingConn (http.Server.ConnContext).
type framingConnKey struct{}

// withFramingConn is the http.Server's ConnContext: it makes c's notes
// reachable from its requests.
func withFramingConn(ctx context.Context, c net.Conn) context.Context {
	if fc, ok := c.(*framingConn); ok {
		return context.WithValue(ctx, framingConnKey{}, fc)
	}
	return ctx
}

// refuseAmbiguousFraming answers a request its connection noted as
// ambiguously framed with 400 bad_request and closes the connection; next
// never sees it.
func refuseAmbiguousFraming(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fc, ok := r.Context().Value(framingConnKey{}).(*framingConn); ok {
			if problem := fc.problemOf(r.Method, r.RequestURI); problem != "" {
				w.Header().Set("Connection", "close")
				proxy.WriteError(w, http.StatusBadRequest, proxy.CodeBadRequest, "", problem, 0)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// Limits of what a framingConn follows; past them it stops watching (the
// connection is then no HTTP/1.1 request stream net/http would keep open:
// a header section this long is refused, a hijacked tunnel is not HTTP).
const (
	maxFramingLine  = 256 << 10
	maxFramingNotes = 1024
)

// framingConn reads like its Conn and follows the request stream.
type framingConn struct {
	net.Conn

	// Read's state (net/http reads a connection from one goroutine at a
	// time).
	state   framingState
	line    []byte // the line read so far
	reqLine string // the current request's "METHOD target"
	headers framingHeaders
	remain  int64 // body or chunk bytes still to come

	mu    sync.Mutex    // guards notes
	notes []framingNote // requests whose headers were read, oldest first
}

// framingNote is what a framingConn learnt of one request.
type framingNote struct {
	reqLine string // "METHOD target"
	problem string // why its framing is refused; "" when it is fine
}

// framingHeaders are the header fields that decide a request's framing.
type framingHeaders struct {
	http10   bool   // HTTP/1.0 (or older)
	cl, te   int    // number of Content-Length and Transfer-Encoding lines
	clValue  string // the first Content-Length
	teValue  string // the first Transfer-Encoding
	obsFold  bool   // a header line continued the one before
	fieldNum int    // header lines so far
}

type framingState int

const (
	stRequestLine framingState = iota
	stHeaders
	stBody
	stChunkSize
	stChunkData
	stChunkEnd
	stTrailers
	stStopped
)

// Read reads from the connection and follows what it read.
func (c *framingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && c.state != stStopped {
		c.follow(p[:n])
	}
	return n, err
}

// CloseWrite half-closes a TCP connection, as net/http does before closing
// one after an error, so the answer is not lost to a reset.
func (c *framingConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// follow advances the state over b.
func (c *framingConn) follow(b []byte) {
	for len(b) > 0 && c.state != stStopped {
		switch c.state {
		case stBody, stChunkData:
			k := int64(len(b))
			if k > c.remain {
				k = c.remain
			}
			c.remain -= k
			b = b[k:]
			if c.remain == 0 && c.state == stBody {
				c.state = stRequestLine
			} else if c.remain == 0 {
				c.state = stChunkEnd
			}
			continue
		}
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			c.line = append(c.line, b...)
			if len(c.line) > maxFramingLine {
				c.stop()
			}
			return
		}
		c.line = append(c.line, b[:i]...)
		b = b[i+1:]
		line := bytes.TrimSuffix(c.line, []byte("\r"))
		c.endLine(line)
		c.line = c.line[:0]
	}
}

// endLine handles one complete line (without its line ending).
func (c *framingConn) endLine(line []byte) {
	switch c.state {
	case stRequestLine:
		if len(line) == 0 {
			return // an empty line between requests
		}
		method, rest, _ := bytes.Cut(line, []byte(" "))
		target, proto, _ := bytes.Cut(rest, []byte(" "))
		major, minor, ok := http.ParseHTTPVersion(string(proto))
		if !ok {
			c.stop() // net/http answers 400 and closes
			return
		}
		c.reqLine = string(method) + " " + string(target)
		c.headers = framingHeaders{http10: major < 1 || major == 1 && minor < 1}
		c.state = stHeaders
	case stHeaders:
		if len(line) == 0 {
			c.endHeaders()
			return
		}
		h := &c.headers
		if (line[0] == ' ' || line[0] == '\t') && h.fieldNum > 0 {
			h.obsFold = true
		}
		h.fieldNum++
		name, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if h.cl == 0 {
				h.clValue = string(value)
			}
			h.cl++
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			if h.te == 0 {
				h.teValue = string(value)
			}
			h.te++
		}
	case stChunkSize:
		size, _, _ := bytes.Cut(line, []byte(";"))
		n, err := strconv.ParseUint(string(bytes.TrimSpace(size)), 16, 63)
		switch {
		case err != nil:
			c.stop() // net/http fails the body and closes the connection
		case n == 0:
			c.state = stTrailers
		default:
			c.remain, c.state = int64(n), stChunkData
		}
	case stChunkEnd:
		if len(line) != 0 {
			c.stop()
			return
		}
		c.state = stChunkSize
	case stTrailers:
		if len(line) == 0 {
			c.state = stRequestLine
		}
	}
}

// endHeaders notes the request whose header section just ended and sets
// up reading its body the way net/http will.
func (c *framingConn) endHeaders() {
	h := c.headers
	var problem string
	switch {
	case h.obsFold:
		problem = "a header line continues the one before (obs-fold): not accepted"
	case h.te > 0 && h.cl > 0:
		problem = "a request must not carry both Content-Length and Transfer-Encoding"
	case h.te > 0 && h.http10:
		problem = "an HTTP/1.0 request must not carry Transfer-Encoding"
	}
	c.note(framingNote{reqLine: c.reqLine, problem: problem})
	switch {
	case problem != "":
		c.stop() // the connection closes after the answer
	case h.te > 0:
		if h.te != 1 || !bytes.EqualFold([]byte(h.teValue), []byte("chunked")) {
			c.stop() // net/http answers 501 and closes
			return
		}
		c.state = stChunkSize
	case h.cl > 0:
		n, err := strconv.ParseInt(h.clValue, 10, 64)
		if err != nil || n < 0 {
			c.stop() // net/http answers 400 and closes
			return
		}
		c.remain, c.state = n, stBody
		if n == 0 {
			c.state = stRequestLine
		}
	default:
		c.state = stRequestLine
	}
}

// note records a request's framing for its handler.
func (c *framingConn) note(n framingNote) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.notes) >= maxFramingNotes {
		c.notes = nil
		c.state = stStopped
		return
	}
	c.notes = append(c.notes, n)
}

// stop ends following the connection.
func (c *framingConn) stop() {
	c.state = stStopped
	c.line = nil
}

// problemOf returns why the request "method target" now being served is
// refused, or "". Requests net/http answered itself are skipped over.
func (c *framingConn) problemOf(method, target string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, n := range c.notes {
		if isRequestLine(n.reqLine, method, target) {
			c.notes = c.notes[i+1:]
			return n.problem
		}
	}
	return ""
}

// isRequestLine reports whether reqLine is method + " " + target, without
// building the latter.
func isRequestLine(reqLine, method, target string) bool {
	return len(reqLine) == len(method)+1+len(target) && reqLine[len(method)] == ' ' &&
		reqLine[:len(method)] == method && reqLine[len(method)+1:] == target
}

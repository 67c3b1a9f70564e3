package proxy

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// TransportOptions tunes NewTransport. Zero values mean defaults.
type TransportOptions struct {
	DialTimeout           time.Duration // TCP connect; default 10s
	TLSHandshakeTimeout   time.Duration // default 10s
	ResponseHeaderTimeout time.Duration // wait for response headers; default 60s
	IdleConnTimeout       time.Duration // close idle keep-alives after; default 90s
	MaxIdleConnsPerHost   int           // keep-alive pool per upstream; default 256
}

// NewTransport returns an http.Transport tuned for a proxy that talks to a
// few API hosts at high rates: large keep-alive pools, HTTP/2 when the
// upstream offers it, bounded dial, TLS and header waits, and the
// environment's HTTPS_PROXY honoured.
func NewTransport(opts TransportOptions) *http.Transport {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&opts.DialTimeout, 10*time.Second)
	def(&opts.TLSHandshakeTimeout, 10*time.Second)
	def(&opts.ResponseHeaderTimeout, 60*time.Second)
	def(&opts.IdleConnTimeout, 90*time.Second)
	if opts.MaxIdleConnsPerHost <= 0 {
		opts.MaxIdleConnsPerHost = 256
	}
	dialer := &net.Dialer{Timeout: opts.DialTimeout, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          4 * opts.MaxIdleConnsPerHost,
		MaxIdleConnsPerHost:   opts.MaxIdleConnsPerHost,
		IdleConnTimeout:       opts.IdleConnTimeout,
		TLSHandshakeTimeout:   opts.TLSHandshakeTimeout,
		ResponseHeaderTimeout: opts.ResponseHeaderTimeout,
		ExpectContinueTimeout: time.Second,
	}
}

// tokenErr marks a token failure that happened inside the transport (when
// fetching a fresh token for a replay), so the error handler answers with
// the token error rather than upstream_unreachable.
type tokenErr struct{ err error }

// Error returns the token error's text.
func (e *tokenErr) Error() string { return e.err.Error() }

// Unwrap returns the token error.
func (e *tokenErr) Unwrap() error { return e.err }

// replayTransport sends the request and, when the upstream answers 401 to a
// token the engine believed valid, drops that token, fetches a new one and
// sends the request once more if its body can be replayed.
type replayTransport struct {
	base  http.RoundTripper
	proxy *Proxy
}

// RoundTrip implements http.RoundTripper.
func (t *replayTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	st, _ := req.Context().Value(stateKey{}).(*requestState)
	if st == nil {
		return resp, nil
	}
	if resp.StatusCode == http.StatusUnauthorized {
		if resp, err = t.afterUnauthorized(req, resp, st); err != nil || resp == nil {
			return resp, err
		}
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		return t.afterTooMany(req, resp, st)
	}
	return resp, nil
}

// afterUnauthorized handles a 401: drop the token the upstream refused (if
// still current), fetch a new one and replay once when the body allows.
func (t *replayTransport) afterUnauthorized(req *http.Request, resp *http.Response, st *requestState) (*http.Response, error) {
	if !st.replay {
		return resp, nil
	}
	rt := st.route
	st.tokens.Invalidate(st.tok)
	tok, err := st.tokens.TokenContext(req.Context())
	if err != nil {
		drain(resp)
		return nil, &tokenErr{err: err}
	}
	if tok.AccessToken == st.tok.AccessToken {
		return resp, nil // nothing new to try: the 401 stands
	}
	again, ok := replayable(req)
	if !ok {
		return resp, nil
	}
	drain(resp)
	st.tok = tok
	again.Header[rt.header] = rt.headerValue(tok)
	return t.base.RoundTrip(again)
}

// afterTooMany handles an upstream 429: pause the tenant for its
// Retry-After, and replay once when the body allows and the wait fits both
// the tenant's max_wait and the caller's deadline.
func (t *replayTransport) afterTooMany(req *http.Request, resp *http.Response, st *requestState) (*http.Response, error) {
	d, ok := retryAfter(resp.Header)
	if !ok {
		return resp, nil
	}
	lim := st.route.limit
	lim.pauseFor(d)
	if !st.replay || st.retried429 || d > lim.maxWait {
		return resp, nil
	}
	if dl, ok := req.Context().Deadline(); ok && time.Until(dl) < d {
		return resp, nil
	}
	again, ok := replayable(req)
	if !ok {
		return resp, nil
	}
	again.Header[st.route.header] = st.route.headerValue(st.tok) // the token of the last attempt
	drain(resp)
	st.retried429 = true
	waited, err := lim.wait(req.Context())
	st.waited += waited
	if err != nil {
		return nil, err
	}
	return t.base.RoundTrip(again)
}

// replayable clones req with a fresh copy of its body, if it has one.
func replayable(req *http.Request) (*http.Request, bool) {
	again := req.Clone(req.Context())
	if req.Body != nil && req.Body != http.NoBody {
		if req.GetBody == nil {
			return nil, false
		}
		body, err := req.GetBody()
		if err != nil {
			return nil, false
		}
		again.Body = body
	}
	return again, true
}

// drain reads a little of a discarded response so its connection can be
// reused, then closes it.
func drain(resp *http.Response) {
	_, _ = io.CopyN(io.Discard, resp.Body, 4<<10)
	_ = resp.Body.Close()
}

// prepareReplay makes r's body replayable when it is at most max bytes, by
// reading it into memory and setting GetBody. It reports whether the request
// can be replayed. A larger body is streamed as it comes and is not
// replayable.
func prepareReplay(r *http.Request, max int64) (bool, error) {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return true, nil
	}
	if max < 0 || r.ContentLength > max {
		return false, nil
	}
	var buf []byte
	if r.ContentLength > 0 {
		buf = make([]byte, r.ContentLength)
		if _, err := io.ReadFull(r.Body, buf); err != nil {
			return false, err
		}
	} else {
		// Unknown length: read up to max+1 bytes to learn whether it fits.
		var err error
		if buf, err = io.ReadAll(io.LimitReader(r.Body, max+1)); err != nil {
			return false, err
		}
		if int64(len(buf)) > max {
			r.Body = struct {
				io.Reader
				io.Closer
			}{io.MultiReader(bytes.NewReader(buf), r.Body), r.Body}
			return false, nil
		}
		r.ContentLength = int64(len(buf))
	}
	r.Body = io.NopCloser(bytes.NewReader(buf))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf)), nil }
	return true, nil
}

// bufferPool lends ReverseProxy its 32 KiB copy buffers without an
// allocation per request.
type bufferPool struct{}

const copyBufferSize = 32 << 10

var copyBuffers = sync.Pool{New: func() any { return new([copyBufferSize]byte) }}

// Get lends a 32 KiB buffer.
func (bufferPool) Get() []byte { return copyBuffers.Get().(*[copyBufferSize]byte)[:] }

// Put takes a buffer back.
func (bufferPool) Put(b []byte) {
	if len(b) == copyBufferSize {
		copyBuffers.Put((*[copyBufferSize]byte)(b))
	}
}

// statusWriter records the status and size of a response. Unwrap lets
// http.ResponseController reach the underlying writer's Flush.
type statusWriter struct {
	http.ResponseWriter
	code  int
	bytes int64
}

// WriteHeader records the final status and sends it.
func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 && code >= 200 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write counts the bytes sent.
func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap returns the wrapped writer, for http.ResponseController.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// status returns the status sent, or 200 when nothing was written.
func (w *statusWriter) status() int {
	if w.code == 0 {
		return http.StatusOK
	}
	return w.code
}

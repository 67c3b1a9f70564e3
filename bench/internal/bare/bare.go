// Package bare holds the "Go limit for this design" contenders: an
// httputil.ReverseProxy whose Rewrite strips the tenant prefix, points the
// request at the upstream and sets a fixed Authorization header.
//
// New is the proxy as a first attempt would write it: Go's default
// transport (which keeps only 2 idle connections per host, so under
// concurrency most upstream requests open a new connection) and no
// BufferPool (a fresh 32 KiB copy buffer per request). NewTuned is the
// same proxy with a keep-alive pool as large as sidekey's and pooled copy
// buffers: the best a plain ReverseProxy does here.
package bare

import (
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"
)

// New returns the bare proxy: /{prefix}/rest → upstream/rest with
// "Authorization: Bearer token".
func New(upstream *url.URL, prefix, token string) *httputil.ReverseProxy {
	auth := "Bearer " + token
	return &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.Out.URL.Path = strings.TrimPrefix(pr.Out.URL.Path, prefix)
		pr.Out.URL.RawPath = ""
		pr.SetURL(upstream)
		pr.Out.Header.Set("Authorization", auth)
	}}
}

// NewTuned is New with 256 idle connections per host and pooled 32 KiB
// copy buffers.
func NewTuned(upstream *url.URL, prefix, token string) *httputil.ReverseProxy {
	rp := New(upstream, prefix, token)
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	rp.Transport = &http.Transport{
		DialContext:         dialer.DialContext,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
	}
	rp.BufferPool = pool{}
	return rp
}

// pool lends 32 KiB buffers from a sync.Pool.
type pool struct{}

var buffers = sync.Pool{New: func() any { return new([32 << 10]byte) }}

func (pool) Get() []byte { return buffers.Get().(*[32 << 10]byte)[:] }

func (pool) Put(b []byte) {
	if len(b) == 32<<10 {
		buffers.Put((*[32 << 10]byte)(b))
	}
}

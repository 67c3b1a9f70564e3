// Package bare is the "Go limit for this design" contender: an
// httputil.ReverseProxy whose Rewrite strips the tenant prefix, points the
// request at the upstream and sets a fixed Authorization header — with
// Go's default transport and no BufferPool, as a first attempt would be.
package bare

import (
	"net/http/httputil"
	"net/url"
	"strings"
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

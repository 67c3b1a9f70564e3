package proxy_test

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"

	"github.com/sidekey/sidekey/config"
	"github.com/sidekey/sidekey/proxy"
)

// discardWriter is a minimal ResponseWriter, so benchmarks measure the
// proxy rather than a recorder.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(int)             {}

func benchUpstream(b *testing.B) *httptest.Server {
	body := []byte(`{"id":"42","items":[{"sku":"a","qty":1}]}`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	b.Cleanup(srv.Close)
	return srv
}

// bareProxy is the floor for this design: httputil.ReverseProxy that sets
// the URL and a fixed Authorization header, with Go's default transport.
func bareProxy(upstream string) http.Handler {
	target, _ := url.Parse(upstream)
	return &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(target)
		pr.Out.Header.Set("Authorization", "Bearer "+testToken)
	}}
}

// sidekeyProxy is the real proxy with a real engine holding a cached token.
func sidekeyProxy(b *testing.B, upstream string) http.Handler {
	t := &testing.T{}
	rt := staticRoute(t, "acme", upstream, config.Tenant{})
	return proxy.New(proxy.Options{Lookup: func(name string) (*proxy.Route, bool) {
		if name == "acme" {
			return rt, true
		}
		return nil, false
	}})
}

func benchHandler(b *testing.B, h http.Handler, target string) {
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := &discardWriter{h: make(http.Header)}
		for pb.Next() {
			req := httptest.NewRequest("GET", target, nil)
			clear(w.h)
			h.ServeHTTP(w, req)
		}
	})
}

// BenchmarkRequestPath compares the whole per-request path (routing, cache
// hit, rewrite, injection, upstream round trip on loopback) with a bare
// ReverseProxy that sets a fixed header. httptest.NewRequest's own cost is
// in both.
func BenchmarkRequestPath(b *testing.B) {
	up := benchUpstream(b)
	b.Run("bare-reverseproxy", func(b *testing.B) {
		benchHandler(b, bareProxy(up.URL), "/v1/cart/42?x=1")
	})
	b.Run("sidekey", func(b *testing.B) {
		benchHandler(b, sidekeyProxy(b, up.URL), "/acme/v1/cart/42?x=1")
	})
}

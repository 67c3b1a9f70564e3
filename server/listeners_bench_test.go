package server_test

import (
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/sidekey/sidekey/config"
	"github.com/sidekey/sidekey/server"
)

// BenchmarkLegacyListeners measures, over real loopback sockets with Go's
// client, what a legacy app pays for each way in compared with the path
// route: a tenant's tls: local listener and the forward proxy, with
// connections kept alive (the steady state) and with a new connection —
// a new TLS handshake, and for the proxy a new CONNECT — per request.
// The tenant is static (a cached token) and the upstream a bare handler,
// so the differences are sidekey's listeners, not the token engine.
func BenchmarkLegacyListeners(b *testing.B) {
	body := []byte(`{"id":"42","items":[{"sku":"a","qty":1}]}`)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	b.Cleanup(up.Close)
	cfg := &config.Config{
		Log:          config.Log{Level: "error", AccessLog: new(bool)},
		ForwardProxy: &config.ForwardProxy{},
		Tenants: map[string]*config.Tenant{"bench": {
			Provider: "static", Token: "bench-token", APIURL: up.URL,
			TLS: config.TLSLocal, InterceptHosts: []string{"api.bench.example"},
		}},
	}
	s := startLegacy(b, cfg, nil, server.TenantListenKey("bench"), server.ForwardProxyKey)
	proxyURL := &url.URL{Scheme: "http", Host: s.addr[server.ForwardProxyKey]}
	client := func(proxied, keepAlive bool) *http.Client {
		tr := &http.Transport{
			TLSClientConfig:     &tls.Config{RootCAs: s.roots},
			MaxIdleConnsPerHost: 64,
			DisableKeepAlives:   !keepAlive,
			ForceAttemptHTTP2:   false,
		}
		if proxied {
			tr.Proxy = http.ProxyURL(proxyURL)
		}
		b.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr}
	}
	cases := []struct {
		name   string       // what is measured
		url    string       // what the app calls
		client *http.Client // how
	}{
		{"path-route", s.base + "/bench/v1/cart/42", client(false, true)},
		{"tenant-tls", "https://" + s.addr[server.TenantListenKey("bench")] + "/v1/cart/42", client(false, true)},
		{"forward-proxy", "https://api.bench.example/v1/cart/42", client(true, true)},
		{"tenant-tls-new-conn", "https://" + s.addr[server.TenantListenKey("bench")] + "/v1/cart/42", client(false, false)},
		{"forward-proxy-new-tunnel", "https://api.bench.example/v1/cart/42", client(true, false)},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				resp, err := c.client.Get(c.url)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Fatalf("status %d", resp.StatusCode)
				}
			}
		})
	}
}

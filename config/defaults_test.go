package config

import (
	"reflect"
	"testing"
	"time"
)

func TestDefaults(t *testing.T) {
	c := parse(t, "tenants:\n  a: {provider: simplestore}\n  b: {provider: static, token_header: x-token}\n  c: {provider: oauth2, token_header: authorization}\n", nil)
	checks := []struct {
		name string // setting
		got  any
		want any
	}{
		{"listen", c.Listen, "127.0.0.1:8080"},
		{"public_url", c.PublicURL, "http://127.0.0.1:8080"},
		{"storage.type", c.Storage.Type, "file"},
		{"storage.path", c.Storage.Path, "sidekey-data"},
		{"storage.key_file", c.Storage.KeyFile, ""},
		{"storage.redis.addr", c.Storage.Redis.Addr, "127.0.0.1:6379"},
		{"storage.redis.prefix", c.Storage.Redis.Prefix, "sidekey"},
		{"log.level", c.Log.Level, "info"},
		{"log.format", c.Log.Format, "json"},
		{"log.access_log", *c.Log.AccessLog, true},
		{"engine.fetch_timeout", time.Duration(c.Engine.FetchTimeout), 30 * time.Second},
		{"engine.max_active", c.Engine.MaxActive, 10000},
		{"upstream.dial_timeout", time.Duration(c.Upstream.DialTimeout), 10 * time.Second},
		{"upstream.tls_handshake_timeout", time.Duration(c.Upstream.TLSHandshakeTimeout), 10 * time.Second},
		{"upstream.response_header_timeout", time.Duration(c.Upstream.ResponseHeaderTimeout), 60 * time.Second},
		{"upstream.idle_conn_timeout", time.Duration(c.Upstream.IdleConnTimeout), 90 * time.Second},
		{"upstream.max_idle_conns_per_host", c.Upstream.MaxIdleConnsPerHost, 256},
		{"upstream.max_replay_body", c.Upstream.MaxReplayBody, int64(1 << 20)},
		{"shutdown_timeout", time.Duration(c.ShutdownTimeout), 15 * time.Second},
		{"tenants.a.token_header", c.Tenants["a"].TokenHeader, "Authorization"},
		{"tenants.a.token_format", c.Tenants["a"].TokenFormat, "Bearer {token}"},
		{"tenants.b.token_format", c.Tenants["b"].TokenFormat, "{token}"},
		{"tenants.c.token_format", c.Tenants["c"].TokenFormat, "Bearer {token}"},
		{"redirect url", c.RedirectURL(), "http://127.0.0.1:8080/_sidekey/oauth/callback"},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s: got %v; want %v", ch.name, ch.got, ch.want)
		}
	}

	before := *c
	c.SetDefaults()
	if !reflect.DeepEqual(before, *c) {
		t.Errorf("SetDefaults is not idempotent")
	}
}

func TestDefaultsKeepSetValues(t *testing.T) {
	src := `
listen: 0.0.0.0:9000
public_url: https://sidekey.example.com/base/
log: {access_log: false}
upstream: {max_replay_body: -1}
tenants:
  a: {token_header: X-Api-Key, token_format: "Key {token}"}
`
	c := parse(t, src, nil)
	if c.PublicURL != "https://sidekey.example.com/base" {
		t.Errorf("public_url: got %q; want the trailing / trimmed", c.PublicURL)
	}
	if *c.Log.AccessLog || c.Upstream.MaxReplayBody != -1 {
		t.Errorf("set values overridden: access_log %v max_replay_body %d", *c.Log.AccessLog, c.Upstream.MaxReplayBody)
	}
	if a := c.Tenants["a"]; a.TokenHeader != "X-Api-Key" || a.TokenFormat != "Key {token}" {
		t.Errorf("tenant: got %q %q", a.TokenHeader, a.TokenFormat)
	}
	if got := c.RedirectURL(); got != "https://sidekey.example.com/base/_sidekey/oauth/callback" {
		t.Errorf("RedirectURL: got %q", got)
	}
}

func TestDefaultPublicURL(t *testing.T) {
	tests := []struct {
		listen string // listen setting
		want   string // default public_url
	}{
		{"127.0.0.1:8080", "http://127.0.0.1:8080"},
		{"0.0.0.0:80", "http://0.0.0.0:80"},
		{"[::1]:8080", "http://[::1]:8080"},
		{":9090", "http://localhost:9090"},
		{"localhost:1", "http://localhost:1"},
	}
	for _, tt := range tests {
		c := &Config{Listen: tt.listen}
		c.SetDefaults()
		if c.PublicURL != tt.want {
			t.Errorf("listen %q: got public_url %q; want %q", tt.listen, c.PublicURL, tt.want)
		}
	}
}

package config

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestUnknownKeys(t *testing.T) {
	src := `
listne: 127.0.0.1:1
storage:
  redis: {adr: x, prefix: p}
callers:
  billing: {key_sha: abc, tenants: [acme]}
log: {level: info, colour: true}
tenants:
  acme:
    provider: simplestore
    client_id: abc
    client_secert: x
    headers: {X-Anything: fine}
    token_params: {audience: fine}
  other:
    provider: static
    zzzzzzzzzzz: 1
`
	_, err := Parse([]byte(src), ParseOptions{Getenv: env(nil)})
	checkProblems(t, problemsOf(t, err),
		want{"callers.billing.key_sha", "unknown key"},
		want{"listne", "unknown key (did you mean listen?)"},
		want{"log.colour", "unknown key"},
		want{"storage.redis.adr", "unknown key (did you mean addr?)"},
		want{"tenants.acme.client_secert", "unknown key (did you mean client_secret?)"},
		want{"tenants.other.zzzzzzzzzzz", "unknown key"},
	)
	if strings.Contains(err.Error(), "zzzzzzzzzzz: unknown key (") {
		t.Errorf("suggested a key for a far-off name: %v", err)
	}
}

func TestDecodeTypeProblems(t *testing.T) {
	src := `
listen: [a, b]
allow_unauthenticated: maybe
storage:
  redis: {db: one}
engine: {max_active: 1.5}
upstream: {max_replay_body: 99999999999999999999999}
log: {access_log: sometimes}
callers: [a]
tenants:
  acme:
    provider: {name: x}
    scopes: read
    headers: [a]
    token_params: {a: [1]}
`
	_, err := Parse([]byte(src), ParseOptions{Getenv: env(nil)})
	checkProblems(t, problemsOf(t, err),
		want{"allow_unauthenticated", "must be true or false"},
		want{"callers", "must be a mapping"},
		want{"engine.max_active", "must be a whole number"},
		want{"listen", "must be a string"},
		want{"log.access_log", "must be true or false"},
		want{"storage.redis.db", "must be a whole number"},
		want{"tenants.acme.headers", "must be a mapping"},
		want{"tenants.acme.provider", "must be a string"},
		want{"tenants.acme.scopes", "must be a list"},
		want{"tenants.acme.token_params.a", "must be a string"},
		want{"upstream.max_replay_body", "must be a whole number"},
	)
}

func TestDecodeValues(t *testing.T) {
	src := `
allow_unauthenticated: yes
log: {access_log: false}
storage: {redis: {db: 3, tls: true, password: pw}}
upstream: {max_replay_body: -1}
tenants:
  de-scayle:
    provider: scayle
    shop_id: 1001
    client_id: 0123
    scopes: [a, b]
    token_params: {audience: x}
    refresh_before: 5m
  empty:
  nulls: {client_id: ~, store: null}
`
	c := parse(t, src, nil)
	s := c.Tenants["de-scayle"]
	if s.ShopID != "1001" || s.ClientID != "0123" || len(s.Scopes) != 2 || s.TokenParams["audience"] != "x" ||
		time.Duration(s.RefreshBefore) != 5*time.Minute {
		t.Errorf("tenant: got %+v", s)
	}
	if !c.AllowUnauthenticated || *c.Log.AccessLog || c.Storage.Redis.DB != 3 || !c.Storage.Redis.TLS ||
		c.Storage.Redis.Password.Value() != "pw" || c.Upstream.MaxReplayBody != -1 {
		t.Errorf("config: got %+v", c)
	}
	if e := c.Tenants["empty"]; e == nil || e.Provider != "" {
		t.Errorf("empty tenant: got %+v; want a zero tenant", e)
	}
	if n := c.Tenants["nulls"]; n.ClientID != "" || n.Store != "" {
		t.Errorf("nulls: got %q %q; want empty", n.ClientID, n.Store)
	}
}

func TestDecodeDuplicateKeys(t *testing.T) {
	src := `
listen: 127.0.0.1:1
listen: 127.0.0.1:2
tenants:
  a: {provider: static}
  a: {provider: oauth2}
`
	_, err := Parse([]byte(src), ParseOptions{Getenv: env(nil)})
	checkProblems(t, problemsOf(t, err),
		want{"listen", "duplicate key"},
		want{"tenants.a", "duplicate key"},
	)
}

func TestDecodeAnchorsAndMerge(t *testing.T) {
	src := `
x-common: &common
  provider: simplestore
  client_id: shared
tenants:
  a:
    <<: *common
    client_secret: s1
  b:
    <<: [{client_id: own}, *common]
    client_secret: s2
  c: *common
`
	// x-common is not a setting: anchors must live inside known keys.
	_, err := Parse([]byte(src), ParseOptions{Getenv: env(nil)})
	checkProblems(t, problemsOf(t, err), want{"x-common", "unknown key"})

	src = strings.Replace(src, "x-common: &common\n  provider: simplestore\n  client_id: shared\n", "", 1)
	src = strings.Replace(src, "tenants:\n", "tenants:\n  base: &common\n    provider: simplestore\n    client_id: shared\n", 1)
	c := parse(t, src, nil)
	for name, want := range map[string]string{"a": "shared", "b": "own", "c": "shared"} {
		tn := c.Tenants[name]
		if tn.Provider != "simplestore" || tn.ClientID != want {
			t.Errorf("tenant %s: got provider %q client_id %q; want simplestore %q", name, tn.Provider, tn.ClientID, want)
		}
	}
	if c.Tenants["a"].ClientSecret.Value() != "s1" {
		t.Errorf("own keys must survive the merge")
	}

	_, err = Parse([]byte("tenants:\n  a: &a\n    <<: *a\n"), ParseOptions{Getenv: env(nil)})
	if err == nil {
		t.Errorf("self-merge: got nil error")
	}
	_, err = Parse([]byte("tenants:\n  a:\n    <<: [1]\n"), ParseOptions{Getenv: env(nil)})
	checkProblems(t, problemsOf(t, err), want{"tenants.a", "<< must merge a mapping"})
}

func TestDecodeAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("tenants:\n  t0: &a0 {provider: static}\n")
	b.WriteString("callers:\n  c0: &c0 {tenants: [t0, t0, t0, t0, t0, t0, t0, t0, t0, t0]}\n")
	for i := 1; i < 12; i++ {
		fmt.Fprintf(&b, "  c%d: &c%d {<<: [", i, i)
		for j := range 10 {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*c%d", i-1)
		}
		b.WriteString("]}\n")
	}
	start := time.Now()
	_, err := Parse([]byte(b.String()), ParseOptions{Getenv: env(nil)})
	if err == nil || !strings.Contains(err.Error(), "too complex") {
		t.Errorf("alias bomb: got %v; want a too complex problem", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("alias bomb took %v", d)
	}
}

func TestParseShapes(t *testing.T) {
	tests := []struct {
		in   string // whole file
		want string // error text; "" for success
	}{
		{in: "", want: ""},
		{in: "# only a comment\n", want: ""},
		{in: "---\n", want: ""},
		{in: "~", want: ""},
		{in: "[a, b]", want: "config: the top level must be a mapping"},
		{in: "just text", want: "config: the top level must be a mapping"},
		{in: "listen: a\n---\nlisten: b\n", want: "config: more than one yaml document"},
		{in: "listen: [unclosed", want: "config: yaml:"},
		{in: "a: *nowhere", want: "config: yaml:"},
		{in: "\t- bad indent", want: "config: yaml:"},
		{in: "{? [a]: b}", want: "keys must be strings"},
	}
	for _, tt := range tests {
		c, err := Parse([]byte(tt.in), ParseOptions{Getenv: env(nil)})
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("Parse(%q): %v", tt.in, err)
		case tt.want == "" && c.Listen != "127.0.0.1:8080":
			t.Errorf("Parse(%q): defaults not applied: %+v", tt.in, c)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("Parse(%q): got %v; want %q", tt.in, err, tt.want)
		case tt.want != "" && c != nil:
			t.Errorf("Parse(%q): got a config with an error", tt.in)
		}
	}
}

func TestParseReportsAllProblems(t *testing.T) {
	src := `
listen: ${LISTEN}
bogus: 1
shutdown_timeout: never
tenants:
  a:
    provider: static
    token_file: missing.txt
    token: also
  b:
    client_secret_file: ${DIR}/s
`
	_, err := Parse([]byte(src), ParseOptions{Getenv: env(nil), ReadFile: files(nil)})
	checkProblems(t, problemsOf(t, err),
		want{"bogus", "unknown key"},
		want{"listen", "LISTEN is not set"},
		want{"shutdown_timeout", "must be a duration"},
		want{"tenants.a", "token and token_file are mutually exclusive"},
		// The unset variable is reported once; the broken path is not read.
		want{"tenants.b.client_secret_file", "DIR is not set"},
	)
}

func TestDecodeLargeConfig(t *testing.T) {
	var b strings.Builder
	b.WriteString("tenants:\n  base: &base {provider: simplestore, client_id: id, client_secret: s, scopes: [a, b]}\n")
	const n = 5000
	for i := range n {
		fmt.Fprintf(&b, "  t%d:\n    <<: *base\n    client_id: id-%d\n", i, i)
	}
	c := parse(t, b.String(), nil)
	if len(c.Tenants) != n+1 || c.Tenants["t4999"].ClientID != "id-4999" || c.Tenants["t4999"].Provider != "simplestore" {
		t.Fatalf("got %d tenants; t4999 = %+v", len(c.Tenants), c.Tenants["t4999"])
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
}

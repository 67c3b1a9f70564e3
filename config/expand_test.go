package config

import (
	"strings"
	"testing"
)

func TestExpandString(t *testing.T) {
	vars := map[string]string{"A": "alpha", "EMPTY": "", "N": "42"}
	tests := []struct {
		in   string // scalar text
		want string // after expansion
		msg  string // expected message, "" for none
	}{
		{in: "plain", want: "plain"},
		{in: "${A}", want: "alpha"},
		{in: "x-${A}-${N}", want: "x-alpha-42"},
		{in: "${MISSING:-dflt}", want: "dflt"},
		{in: "${EMPTY:-dflt}", want: "dflt"},
		{in: "${A:-dflt}", want: "alpha"},
		{in: "${MISSING:-}", want: ""},
		{in: "${EMPTY}", want: ""},
		{in: "$${A}", want: "${A}"},
		{in: "$$$${A}", want: "$${A}"},
		{in: "$$${A}", want: "$alpha"},
		{in: "pa$word", want: "pa$word"},
		{in: "cost: 5$", want: "cost: 5$"},
		{in: "$A", want: "$A"},
		{in: "${MISSING}", want: "", msg: "environment variable MISSING is not set"},
		{in: "${A", want: "${A", msg: "unterminated ${"},
		{in: "${}", want: "", msg: "invalid ${...} reference"},
		{in: "${1A}", want: "", msg: "invalid ${...} reference"},
		{in: "${A B}", want: "", msg: "invalid ${...} reference"},
		{in: "${MISSING:-x}y}", want: "xy}"}, // the default ends at the first }
	}
	for _, tt := range tests {
		got, msgs := expandString(tt.in, env(vars))
		if got != tt.want {
			t.Errorf("expandString(%q): got %q; want %q", tt.in, got, tt.want)
		}
		gotMsg := strings.Join(msgs, "; ")
		if tt.msg == "" && gotMsg != "" || !strings.Contains(gotMsg, tt.msg) {
			t.Errorf("expandString(%q): got messages %q; want %q", tt.in, gotMsg, tt.msg)
		}
	}
}

func TestExpandCannotInjectYAML(t *testing.T) {
	vars := map[string]string{
		"ID":      "a: b\nc: d",
		"SECRET":  "x\n  provider: static\n  token: stolen",
		"TENANTS": "{evil: {provider: static, token: t, api_url: 'http://evil'}}",
		"LIST":    "[a, b]",
		"DOC":     "---\nlisten: 0.0.0.0:80",
	}
	src := `
listen: ${DOC:-127.0.0.1:1}
tenants:
  acme:
    provider: simplestore
    client_id: ${ID}
    client_secret: ${SECRET}
    scopes: ${LIST}
`
	_, err := Parse([]byte(src), ParseOptions{Getenv: env(vars)})
	// scopes got a string, not a list: the value did not become YAML.
	checkProblems(t, problemsOf(t, err), want{"tenants.acme.scopes", "must be a list"})

	src = strings.Replace(src, "    scopes: ${LIST}\n", "", 1)
	c := parse(t, src, vars)
	a := c.Tenants["acme"]
	if a.ClientID != vars["ID"] {
		t.Errorf("client_id: got %q; want %q", a.ClientID, vars["ID"])
	}
	if a.ClientSecret.Value() != vars["SECRET"] || a.Provider != "simplestore" || a.Token != "" {
		t.Errorf("client_secret injected structure: %+v", a)
	}
	if c.Listen != vars["DOC"] {
		t.Errorf("listen: got %q; want the variable verbatim", c.Listen)
	}
	if len(c.Tenants) != 1 {
		t.Errorf("tenants: got %d; want 1", len(c.Tenants))
	}

	_, err = Parse([]byte("tenants: ${TENANTS}"), ParseOptions{Getenv: env(vars)})
	checkProblems(t, problemsOf(t, err), want{"tenants", "must be a mapping"})
}

func TestExpandValuesOnly(t *testing.T) {
	src := `
tenants:
  ${NAME}:
    provider: static
    token: ${TOKEN}
    token_format: "$${literal} {token}"
    api_url: https://api.example.com
`
	c := parse(t, src, map[string]string{"NAME": "acme", "TOKEN": "tok"})
	tn, ok := c.Tenants["${NAME}"]
	if !ok || len(c.Tenants) != 1 {
		t.Fatalf("tenant keys: got %v; want the key unexpanded", c.Tenants)
	}
	if tn.Token.Value() != "tok" {
		t.Errorf("token not expanded")
	}
	if tn.TokenFormat != "${literal} {token}" {
		t.Errorf("token_format: got %q; want %q", tn.TokenFormat, "${literal} {token}")
	}
}

func TestExpandTypedValues(t *testing.T) {
	vars := map[string]string{"MAX": "50", "OPEN": "true", "NULL": "null", "T": "2m"}
	src := `
allow_unauthenticated: ${OPEN}
engine:
  max_active: ${MAX}
  fetch_timeout: ${T}
tenants:
  a:
    provider: static
    token: ${NULL}
    client_id: "${MAX}"
    api_url: http://x
`
	c := parse(t, src, vars)
	if !c.AllowUnauthenticated || c.Engine.MaxActive != 50 || c.Engine.FetchTimeout.String() != "2m0s" {
		t.Errorf("typed values from env: got %v %v %v", c.AllowUnauthenticated, c.Engine.MaxActive, c.Engine.FetchTimeout)
	}
	if got := c.Tenants["a"].Token.Value(); got != "null" {
		t.Errorf("string from env: got %q; want %q (env text is never null)", got, "null")
	}
	if got := c.Tenants["a"].ClientID; got != "50" {
		t.Errorf("quoted: got %q; want 50", got)
	}

	_, err := Parse([]byte("engine:\n  max_active: ${OPEN}\n"), ParseOptions{Getenv: env(vars)})
	checkProblems(t, problemsOf(t, err), want{"engine.max_active", "must be a whole number"})
}

func TestExpandUnsetNamesKey(t *testing.T) {
	src := `
tenants:
  acme:
    provider: simplestore
    client_id: ${ID:-abc}
    client_secret: ${SIMPLESTORE_SECRET}
    scopes: [a, "${SCOPE}"]
`
	_, err := Parse([]byte(src), ParseOptions{Getenv: env(nil)})
	ps := problemsOf(t, err)
	checkProblems(t, ps,
		want{"tenants.acme.client_secret", "environment variable SIMPLESTORE_SECRET is not set"},
		want{"tenants.acme.scopes[1]", "environment variable SCOPE is not set"},
	)
	if got := ps[0].Error(); got != "tenants.acme.client_secret: environment variable SIMPLESTORE_SECRET is not set" {
		t.Errorf("Error(): got %q", got)
	}
}

package config

import (
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestDurationForms(t *testing.T) {
	tests := []struct {
		in   string        // value of shutdown_timeout in the file
		want time.Duration // after Parse (defaults included)
		msg  string        // problem at shutdown_timeout, "" for none
	}{
		{in: "90s", want: 90 * time.Second},
		{in: "15m", want: 15 * time.Minute},
		{in: "1h30m", want: 90 * time.Minute},
		{in: "250ms", want: 250 * time.Millisecond},
		{in: "90", want: 90 * time.Second},
		{in: `"45"`, want: 45 * time.Second},
		{in: "0", want: 15 * time.Second},  // zero means default
		{in: "~", want: 15 * time.Second},  // so does null
		{in: `""`, want: 15 * time.Second}, // and empty
		{in: "-5", msg: "must not be negative"},
		{in: "-1m", msg: "must not be negative"},
		{in: "soon", msg: "must be a duration"},
		{in: "1.5", msg: "must be a duration"},
		{in: "10 parsecs", msg: "must be a duration"},
		{in: "[1, 2]", msg: "must be a duration"},
		{in: "{a: 1}", msg: "must be a duration"},
		{in: "99999999999999", msg: "too long"},
	}
	for _, tt := range tests {
		c, err := Parse([]byte("shutdown_timeout: "+tt.in), ParseOptions{Getenv: env(nil)})
		if tt.msg != "" {
			checkProblems(t, problemsOf(t, err), want{"shutdown_timeout", tt.msg})
			continue
		}
		if err != nil {
			t.Errorf("%s: Parse: %v", tt.in, err)
			continue
		}
		if got := time.Duration(c.ShutdownTimeout); got != tt.want {
			t.Errorf("%s: got %v; want %v", tt.in, got, tt.want)
		}
	}
}

func TestDurationKeyPaths(t *testing.T) {
	src := `
engine: {fetch_timeout: x}
upstream: {dial_timeout: -3s, idle_conn_timeout: 2m}
tenants:
  acme: {refresh_before: forever}
`
	_, err := Parse([]byte(src), ParseOptions{Getenv: env(nil)})
	checkProblems(t, problemsOf(t, err),
		want{"engine.fetch_timeout", "must be a duration"},
		want{"tenants.acme.refresh_before", "must be a duration"},
		want{"upstream.dial_timeout", "must not be negative"},
	)
}

func TestDurationYAMLRoundTrip(t *testing.T) {
	in := struct {
		D Duration `yaml:"d"`
	}{Duration(90 * time.Minute)}
	b, err := yaml.Marshal(in)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	if got, want := string(b), "d: 1h30m0s\n"; got != want {
		t.Errorf("Marshal: got %q; want %q", got, want)
	}
	var out struct {
		D Duration `yaml:"d"`
	}
	if err := yaml.Unmarshal(b, &out); err != nil {
		t.Fatalf("Unmarshal: %v", err)
	}
	if out.D != in.D {
		t.Errorf("round trip: got %v; want %v", out.D, in.D)
	}
	if err := yaml.Unmarshal([]byte("d: -1s"), &out); err == nil || err.Error() != "config: must not be negative" {
		t.Errorf("Unmarshal(-1s): got %v; want config: must not be negative", err)
	}
	if got := Duration(1500 * time.Millisecond).String(); got != "1.5s" {
		t.Errorf("String: got %q; want 1.5s", got)
	}
}

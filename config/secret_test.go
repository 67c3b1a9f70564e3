package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"go.yaml.in/yaml/v3"
)

const secretValue = "hunter2-Zq9" // must never show up below

// assertHidden fails when out reveals secretValue (also hex or JSON-escaped).
func assertHidden(t *testing.T, what, out string) {
	t.Helper()
	for _, form := range []string{secretValue, fmt.Sprintf("%x", secretValue), fmt.Sprintf("%X", secretValue)} {
		if strings.Contains(out, form) {
			t.Errorf("%s reveals the secret: %q", what, out)
		}
	}
	if !strings.Contains(out, redacted) {
		t.Errorf("%s: got %q; want it to contain %q", what, out, redacted)
	}
}

func TestSecretFmt(t *testing.T) {
	s := Secret(secretValue)
	tenant := Tenant{Provider: "static", Token: s, ClientSecret: s}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10s", "%-20v", "%.3s"} {
		if verb == "%.3s" {
			if got := fmt.Sprintf(verb, s); got != "[re" {
				t.Errorf("Sprintf(%q): got %q; want %q", verb, got, "[re")
			}
			continue
		}
		assertHidden(t, "Sprintf("+verb+") of Secret", fmt.Sprintf(verb, s))
		assertHidden(t, "Sprintf("+verb+") of Tenant", fmt.Sprintf(verb, tenant))
		assertHidden(t, "Sprintf("+verb+") of *Tenant", fmt.Sprintf(verb, &tenant))
		assertHidden(t, "Sprintf("+verb+") of []Secret", fmt.Sprintf(verb, []Secret{s}))
		assertHidden(t, "Sprintf("+verb+") of map", fmt.Sprintf(verb, map[string]Secret{"k": s}))
	}
	if got := fmt.Sprintf("%q", s); got != `"[redacted]"` {
		t.Errorf("%%q: got %s; want %q", got, redacted)
	}
	assertHidden(t, "String", s.String())
	assertHidden(t, "GoString", s.GoString())
	assertHidden(t, "Errorf", fmt.Errorf("config: bad %v", s).Error())
	if got := s.Value(); got != secretValue {
		t.Errorf("Value: got %q; want the secret", got)
	}
}

func TestSecretEmptyPrintsEmpty(t *testing.T) {
	var s Secret
	for _, verb := range []string{"%v", "%s", "%#v"} {
		if got := fmt.Sprintf(verb, s); got != "" {
			t.Errorf("Sprintf(%q, empty): got %q; want \"\"", verb, got)
		}
	}
	b, err := json.Marshal(s)
	if err != nil || string(b) != `""` {
		t.Errorf("json.Marshal(empty): got %s, %v; want \"\"", b, err)
	}
}

func TestSecretMarshal(t *testing.T) {
	s := Secret(secretValue)
	tenant := Tenant{Provider: "scayle", ClientSecret: s, ShopSecret: s, RefreshToken: s}

	j, err := json.Marshal(struct {
		T   Tenant
		S   Secret
		Ptr *Secret
		L   []Secret
	}{tenant, s, &s, []Secret{s}})
	if err != nil {
		t.Fatalf("json.Marshal: %v", err)
	}
	assertHidden(t, "json", string(j))

	y, err := yaml.Marshal(tenant)
	if err != nil {
		t.Fatalf("yaml.Marshal: %v", err)
	}
	assertHidden(t, "yaml", string(y))

	text, err := s.MarshalText()
	if err != nil {
		t.Fatalf("MarshalText: %v", err)
	}
	assertHidden(t, "MarshalText", string(text))
}

func TestSecretZap(t *testing.T) {
	s := Secret(secretValue)
	tenant := &Tenant{Provider: "static", Token: s}
	core, logs := observer.New(zapcore.DebugLevel)
	log := zap.New(core)
	log.Info("loaded",
		zap.Any("any", s),
		zap.Stringer("stringer", s),
		zap.Reflect("reflect", s),
		zap.Any("tenant", tenant),
		zap.Any("secrets", []Secret{s}),
	)
	entries := logs.All()
	if len(entries) != 1 {
		t.Fatalf("got %d log entries; want 1", len(entries))
	}
	e := entries[0]

	// What the observer saw, field by field.
	for k, v := range e.ContextMap() {
		assertHidden(t, "observer field "+k, fmt.Sprint(v))
	}

	// What a production logger would write.
	for name, enc := range map[string]zapcore.Encoder{
		"json":    zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()),
		"console": zapcore.NewConsoleEncoder(zap.NewDevelopmentEncoderConfig()),
	} {
		buf, err := enc.EncodeEntry(e.Entry, e.Context)
		if err != nil {
			t.Fatalf("%s encoder: %v", name, err)
		}
		line := buf.String()
		assertHidden(t, name+" encoder", line)
		if n := strings.Count(line, redacted); n < 5 {
			t.Errorf("%s encoder: %d redacted fields; want 5 in %s", name, n, line)
		}
	}

	var buf bytes.Buffer
	zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(&buf), zapcore.DebugLevel)).
		Error("failed", zap.Any("config", Config{Tenants: map[string]*Tenant{"a": tenant}}))
	assertHidden(t, "logged Config", buf.String())
}

package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sidekey.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCheckNamesEveryBadKey(t *testing.T) {
	path := writeConfig(t, `
listen: 127.0.0.1:8080
tenants:
  acme:
    provider: simplestore
    client_secret: s3cret-value
  Bad_Name:
    provider: static
    token: x
    api_url: https://api.example.com
  other:
    provider: oauth2
    client_id: a
    client_secret: b
    token_url: https://auth.example.com/token
    api_url: https://api.example.com
`)
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"check", "--config", path}, &stdout, &stderr)
	if err == nil {
		t.Fatal("check accepted a bad config")
	}
	if exitCode(err) != 1 {
		t.Errorf("exit code %d; want 1", exitCode(err))
	}
	msg := err.Error()
	for _, want := range []string{"tenants.acme.client_id: required", "tenants.Bad_Name"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "s3cret-value") {
		t.Errorf("a secret reached the error:\n%s", msg)
	}
}

func TestCheckNamesAMisspelledKey(t *testing.T) {
	path := writeConfig(t, "tenants:\n  a:\n    provider: oauth2\n    clinet_auth: header\n")
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"check", "--config", path}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "tenants.a.clinet_auth: unknown key (did you mean client_auth?)") {
		t.Errorf("check: %v; want the misspelled key named", err)
	}
}

func TestCheckAcceptsAGoodConfig(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("value\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := writeConfig(t, `
storage: {type: memory}
tenants:
  eu-simple:
    provider: simplestore
    client_id: abc
    client_secret_file: `+secret+`
`)
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"check", "--config", path}, &stdout, &stderr); err != nil {
		t.Fatalf("check: %v", err)
	}
	if !strings.Contains(stdout.String(), "ok (1 tenants, 0 apps)") {
		t.Errorf("stdout %q; want an ok line", stdout.String())
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{nil, {"frobnicate"}, {"check"}, {"serve", "--nope"}} {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), args, &stdout, &stderr)
		if !errors.Is(err, errUsage) || exitCode(err) != 2 {
			t.Errorf("run(%q) = %v; want a usage error (exit 2)", args, err)
		}
	}
}

// TestDemoAnswers runs the demo end to end on a free port: simulators,
// proxy, and every printed curl line checked to answer 200.
func TestDemoAnswers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	if err := run(ctx, []string{"demo", "--check", "--listen", "127.0.0.1:0"}, &stdout, &stderr); err != nil {
		t.Fatalf("demo: %v\nstderr:\n%s", err, stderr.String())
	}
	out := stdout.String()
	if n := strings.Count(out, "curl -s "); n < 3 {
		t.Errorf("demo printed %d curl lines; want at least 3:\n%s", n, out)
	}
	if strings.Contains(stderr.String(), "demo-secret") {
		t.Error("the demo's client secret reached its log")
	}
}

func TestHealthcheck(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"healthcheck", "--url", "http://" + freeAddr(t) + "/_sidekey/readyz"}, &stdout, &stderr)
	if err == nil {
		t.Error("healthcheck of a closed port succeeded")
	}
}

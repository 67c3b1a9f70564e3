package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestUndocumented(t *testing.T) {
	path := writeFile(t, "values.yaml", `
# -- documented
a: 1
b:
  # -- documented
  c: ""
  d: []
# -- the whole map
e:
  f: 1
g: {}
`)
	got, err := undocumented(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"b.d", "g"}; !reflect.DeepEqual(got, want) {
		t.Errorf("undocumented = %v, want %v", got, want)
	}
}

// extract moves *_file paths under the secret mount to the output folder and
// fills them from the rendered Secret, or with a placeholder.
func TestExtract(t *testing.T) {
	manifest := writeFile(t, "rendered.yaml", `
apiVersion: v1
kind: Secret
metadata: {name: s}
data:
  tenant.a.client_secret: c2VjcmV0   # "secret"
---
apiVersion: v1
kind: ConfigMap
metadata: {name: c}
data:
  sidekey.yaml: |
    tenants:
      a:
        client_secret_file: /run/secrets/sidekey/tenant.a.client_secret
    admin_token_file: /run/secrets/sidekey/admin-token
`)
	docs, err := readDocs(manifest)
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	var stdout strings.Builder
	if err := extract(docs, out, &stdout); err != nil {
		t.Fatal(err)
	}
	cfg, err := os.ReadFile(filepath.Join(out, "sidekey.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(cfg), SecretDir) || !strings.Contains(string(cfg), filepath.Join(out, "secrets", "admin-token")) {
		t.Errorf("paths not moved:\n%s", cfg)
	}
	for file, want := range map[string]string{"tenant.a.client_secret": "secret", "admin-token": "ci-placeholder-admin-token"} {
		got, err := os.ReadFile(filepath.Join(out, "secrets", file))
		if err != nil || string(got) != want {
			t.Errorf("%s = %q, %v; want %q", file, got, err, want)
		}
	}
}

// A render that leaks a secret into a ConfigMap, or whose Secret lacks a key
// the config names, fails.
func TestAssertCatchesLeaksAndMissingKeys(t *testing.T) {
	manifest := writeFile(t, "rendered.yaml", `
apiVersion: v1
kind: Secret
metadata: {name: s}
stringData: {other: x}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: c}
data:
  sidekey.yaml: |
    listen: 127.0.0.1:8080
    note: ci-secret-leaked
    admin_token_file: /run/secrets/sidekey/admin-token
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
spec:
  template:
    spec:
      automountServiceAccountToken: false
      securityContext: {runAsNonRoot: true, runAsUser: 65532, seccompProfile: {type: RuntimeDefault}}
      containers:
        - name: sidekey
          args: [--config, /etc/sidekey/sidekey.yaml]
          securityContext: {readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
          volumeMounts:
            - {name: config, mountPath: /etc/sidekey}
            - {name: secrets, mountPath: /run/secrets/sidekey}
      volumes:
        - {name: config, configMap: {name: c}}
        - {name: secrets, secret: {secretName: s}}
`)
	docs, err := readDocs(manifest)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(assertScenario("unknown", docs), "\n")
	for _, want := range []string{"ConfigMap c holds a ci secret value", "Secret s has no key admin-token"} {
		if !strings.Contains(got, want) {
			t.Errorf("failures lack %q:\n%s", want, got)
		}
	}
}

package main

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// chartManifest is a minimal chart render with tls.mode files: the config,
// the Service and the Deployment; tlsVolume is the pod's volume list entry
// for the certificate (or "").
func chartManifest(tlsVolume string) string {
	return `
apiVersion: v1
kind: ConfigMap
metadata: {name: c}
data:
  sidekey.yaml: |
    listen: 0.0.0.0:8080
    public_url: https://sidekey.example.com
    allow_unauthenticated: true
    storage: {type: memory}
    tls:
      mode: files
      cert_file: /run/secrets/sidekey-tls/tls.crt
      key_file: /run/secrets/sidekey-tls/tls.key
---
apiVersion: v1
kind: Service
metadata: {name: s}
spec:
  selector: {app: x}
  ports: [{name: https, port: 8443, targetPort: https}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
spec:
  replicas: 1
  selector: {matchLabels: {app: x}}
  template:
    spec:
      automountServiceAccountToken: false
      securityContext: {runAsNonRoot: true, runAsUser: 65532, seccompProfile: {type: RuntimeDefault}}
      containers:
        - name: sidekey
          args: [--config, /etc/sidekey/sidekey.yaml]
          ports: [{name: https, containerPort: 8080}]
          startupProbe: {httpGet: {path: /_sidekey/healthz, port: https, scheme: HTTPS}}
          livenessProbe: {httpGet: {path: /_sidekey/healthz, port: https, scheme: HTTPS}}
          readinessProbe: {httpGet: {path: /_sidekey/readyz, port: https, scheme: HTTP}}
          securityContext: {readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
          volumeMounts:
            - {name: config, mountPath: /etc/sidekey}
            - {name: tls, mountPath: /run/secrets/sidekey-tls}
      volumes:
        - {name: config, configMap: {name: c}}
` + tlsVolume
}

// With tls a plain-HTTP probe and a certificate without its Secret fail;
// extract leaves the certificate's paths alone (sidekey check does not read
// them), while the listener's port and other probes pass as https.
func TestTLSFiles(t *testing.T) {
	path := writeFile(t, "rendered.yaml", chartManifest(""))
	docs, err := readDocs(path)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(assertScenario("tls-files", docs), "\n")
	for _, want := range []string{
		`readinessProbe scheme = "HTTP", want HTTPS`,
		"tls files but no Secret is mounted at /run/secrets/sidekey-tls",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("failures lack %q:\n%s", want, got)
		}
	}
	for _, never := range []string{"livenessProbe", "no container port", "Service has no port", "outside"} {
		if strings.Contains(got, never) {
			t.Errorf("unexpected failure about %q:\n%s", never, got)
		}
	}

	out := t.TempDir()
	if err := extract(docs, out, &strings.Builder{}); err != nil {
		t.Fatal(err)
	}
	cfg, err := os.ReadFile(filepath.Join(out, "sidekey.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// sidekey check reads the certificate and key as serve does: extract
	// moves them beside the config, holding a placeholder pair.
	certPath := filepath.Join(out, "tls", "tls.crt")
	if !strings.Contains(string(cfg), "cert_file: "+certPath) {
		t.Errorf("extract did not move the certificate path to %s:\n%s", certPath, cfg)
	}
	if _, err := tls.LoadX509KeyPair(certPath, filepath.Join(out, "tls", "tls.key")); err != nil {
		t.Errorf("the placeholder certificate and key: %v", err)
	}
}

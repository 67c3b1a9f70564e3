package main

import (
	"strings"
	"testing"
)

// sidecarManifest is a loopback sidekey beside an app, with the probes given
// (YAML indented for the container's fields).
func sidecarManifest(probes string) string {
	return `
apiVersion: v1
kind: ConfigMap
metadata: {name: c}
data:
  sidekey.yaml: |
    listen: 127.0.0.1:8080
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
spec:
  template:
    spec:
      automountServiceAccountToken: false
      securityContext: {runAsNonRoot: true, runAsUser: 65532, seccompProfile: {type: RuntimeDefault}}
      initContainers:
        - name: sidekey
          restartPolicy: Always
          args: [--config, /etc/sidekey/sidekey.yaml]
          securityContext: {readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
          volumeMounts:
            - {name: config, mountPath: /etc/sidekey}
` + probes + `
      containers:
        - name: app
          env: [{name: API, value: "http://127.0.0.1:8080/eu-simple/"}]
      volumes:
        - {name: config, configMap: {name: c}}
`
}

func assertSidecar(t *testing.T, probes string) string {
	t.Helper()
	docs, err := readDocs(writeFile(t, "sidecar.yaml", sidecarManifest(probes)))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(assertScenario("sidecar", docs), "\n")
}

// The example's exec probes of `sidekey healthcheck` pass; probes the kubelet
// would send to the pod IP, a missing startup probe, or a healthcheck of
// another address fail.
func TestSidecarProbes(t *testing.T) {
	const good = `
          startupProbe:
            exec: {command: [/sidekey, healthcheck]}
          livenessProbe:
            exec: {command: [/sidekey, healthcheck, --url, "http://127.0.0.1:8080/_sidekey/healthz"]}`
	if got := assertSidecar(t, good); got != "" {
		t.Errorf("exec healthcheck probes rejected:\n%s", got)
	}
	for name, tc := range map[string]struct{ probes, want string }{
		"httpGet": {good + `
          readinessProbe:
            httpGet: {path: /_sidekey/readyz, port: 8080}`, "readinessProbe probes the pod IP"},
		"no startup": {`
          livenessProbe:
            exec: {command: [/sidekey, healthcheck]}`, "the sidecar has no startupProbe"},
		"other address": {`
          startupProbe:
            exec: {command: [/sidekey, healthcheck]}
          livenessProbe:
            exec: {command: [/sidekey, healthcheck, --url, "http://10.0.0.1:8080/_sidekey/healthz"]}`, "livenessProbe checks \"http://10.0.0.1:8080/_sidekey/healthz\""},
		"not healthcheck": {`
          startupProbe:
            exec: {command: [wget, -q, "http://127.0.0.1:8080/_sidekey/readyz"]}
          livenessProbe:
            exec: {command: [/sidekey, healthcheck]}`, "startupProbe is not an exec of `sidekey healthcheck`"},
	} {
		t.Run(name, func(t *testing.T) {
			if got := assertSidecar(t, tc.probes); !strings.Contains(got, tc.want) {
				t.Errorf("failures lack %q:\n%s", tc.want, got)
			}
		})
	}
}

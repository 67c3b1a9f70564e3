package main

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tlsSecretVolume is the certificate's volume in chartManifest.
const tlsSecretVolume = "        - {name: tls, secret: {secretName: sidekey-tls}}\n"

// clientCAManifest is chartManifest (tls.mode files) with a caller known by
// its certificate subject, tls.client_ca_file when caFile is set, and the
// client CA's mount and volume when they are not "".
func clientCAManifest(caFile, mount, volume string) string {
	m := chartManifest(tlsSecretVolume + volume)
	callers := "    callers:\n      billing: {cert_subject: \"CN=billing,O=Acme\", tenants: [eu-simple]}\n"
	m = strings.Replace(m, "    allow_unauthenticated: true\n", callers, 1)
	if caFile != "" {
		m = strings.Replace(m, "      key_file: /run/secrets/sidekey-tls/tls.key\n",
			"      key_file: /run/secrets/sidekey-tls/tls.key\n      client_ca_file: "+caFile+"\n", 1)
	}
	return strings.Replace(m, "            - {name: tls, mountPath: /run/secrets/sidekey-tls}\n",
		"            - {name: tls, mountPath: /run/secrets/sidekey-tls}\n"+mount, 1)
}

const (
	clientCAMount  = "            - {name: client-ca, mountPath: /run/secrets/sidekey-client-ca, readOnly: true}\n"
	clientCAVolume = "        - {name: client-ca, secret: {secretName: sidekey-client-ca, items: [{key: clients-ca.pem, path: ca.crt}]}}\n"
)

// assertManifest runs assertScenario on a manifest and joins the failures.
func assertManifest(t *testing.T, scenario, manifest string) string {
	t.Helper()
	docs, err := readDocs(writeFile(t, "rendered.yaml", manifest))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(assertScenario(scenario, docs), "\n")
}

// The client CA must come from a read-only Secret volume projecting ca.crt,
// with tls on, whenever a caller has a cert_subject; a complete render raises
// no client CA failure.
func TestClientCA(t *testing.T) {
	caFile := ClientCADir + "/ca.crt"
	cases := []struct {
		name, manifest string
		want           []string
	}{
		{"no volume", clientCAManifest(caFile, "", ""), []string{
			"tls.client_ca_file is set but no Secret is mounted at /run/secrets/sidekey-client-ca",
			"/run/secrets/sidekey-client-ca is not mounted read-only",
		}},
		{"writable, no ca.crt", clientCAManifest(caFile,
			strings.Replace(clientCAMount, "readOnly: true", "readOnly: false", 1),
			strings.Replace(clientCAVolume, "path: ca.crt", "path: bundle.pem", 1)), []string{
			"/run/secrets/sidekey-client-ca is not mounted read-only",
			"the Secret mounted at /run/secrets/sidekey-client-ca projects no key to ca.crt",
		}},
		{"other path", clientCAManifest("/etc/ca.pem", clientCAMount, clientCAVolume), []string{
			`tls.client_ca_file = "/etc/ca.pem", want /run/secrets/sidekey-client-ca/ca.crt`,
		}},
		{"tls off", strings.Replace(clientCAManifest(caFile, clientCAMount, clientCAVolume), "mode: files", `mode: "off"`, 1), []string{
			"tls.client_ca_file is set with tls off",
		}},
		{"no client_ca_file", clientCAManifest("", clientCAMount, clientCAVolume), []string{
			"caller billing has cert_subject but tls.client_ca_file is not set",
			"no tls.client_ca_file, but a volume is mounted at /run/secrets/sidekey-client-ca",
		}},
		{"subject and key", strings.Replace(clientCAManifest(caFile, clientCAMount, clientCAVolume),
			"cert_subject:", "key_file: /run/secrets/sidekey/caller.billing.key, cert_subject:", 1), []string{
			"caller billing has cert_subject and a key",
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := assertManifest(t, "unknown", tc.manifest)
			for _, want := range tc.want {
				if !strings.Contains(got, want) {
					t.Errorf("failures lack %q:\n%s", want, got)
				}
			}
		})
	}

	got := assertManifest(t, "mtls", clientCAManifest(caFile, clientCAMount, clientCAVolume))
	for _, never := range []string{"client_ca_file", "sidekey-client-ca", "clients-ca.pem", "cert_subject"} {
		if strings.Contains(got, never) {
			t.Errorf("unexpected failure about %q:\n%s", never, got)
		}
	}
	// What the minimal manifest lacks of ci/mtls-values.yaml.
	for _, want := range []string{"caller_key_header", "callers.nightly.key_file"} {
		if !strings.Contains(got, want) {
			t.Errorf("failures lack %q:\n%s", want, got)
		}
	}
}

// extract moves tls.client_ca_file to the output folder and fills it with a
// CA certificate, so that `sidekey check` can read it.
func TestExtractClientCA(t *testing.T) {
	docs, err := readDocs(writeFile(t, "rendered.yaml", clientCAManifest(ClientCADir+"/ca.crt", clientCAMount, clientCAVolume)))
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	if err := extract(docs, out, &strings.Builder{}); err != nil {
		t.Fatal(err)
	}
	cfg, err := os.ReadFile(filepath.Join(out, "sidekey.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(out, "client-ca", "ca.crt")
	if strings.Contains(string(cfg), ClientCADir) || !strings.Contains(string(cfg), "client_ca_file: "+caFile) {
		t.Errorf("client_ca_file not moved to %s:\n%s", caFile, cfg)
	}
	data, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("%s holds no PEM certificate:\n%s", caFile, data)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !cert.IsCA {
		t.Errorf("placeholder certificate is not a CA")
	}
}

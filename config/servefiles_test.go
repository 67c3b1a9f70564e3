package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"
)

// TestParseAllChecksWhatServeReads: ParseAll reports, with the file's own
// problems, the files serve reads before it listens — each once, naming
// the key and the file, never the content.
func TestParseAllChecksWhatServeReads(t *testing.T) {
	ca := testCAPEM(t)
	src := `
admin_token_file: missing-admin
tls: {mode: files, cert_file: tls.crt, key_file: tls.key, ca_root_file: roots.pem}
storage: {type: memory, key_file: missing-key}
listne: x
`
	_, ps, err := ParseAll([]byte(src), ParseOptions{
		Getenv:   env(nil),
		ReadFile: files(map[string]string{"/etc/sk/tls.crt": ca, "/etc/sk/tls.key": "secret-not-a-key-Q9", "/etc/sk/roots.pem": "no pem here"}),
		Dir:      "/etc/sk",
	})
	if err != nil {
		t.Fatal(err)
	}
	checkProblems(t, ps,
		want{"admin_token_file", "cannot read /etc/sk/missing-admin"},
		want{"listne", "unknown key (did you mean listen?)"},
		want{"storage.key_file", "cannot read /etc/sk/missing-key"},
		want{"tls.ca_root_file", "no PEM certificate in /etc/sk/roots.pem"},
		want{"tls.key_file", "/etc/sk/tls.crt and /etc/sk/tls.key are not a PEM certificate chain and its private key"},
	)
	if strings.Contains(ps.Error(), "secret-not-a-key-Q9") {
		t.Errorf("a file's content reached the problems:\n%v", ps)
	}
}

// certAndKeyPEM makes a self-signed P-256 certificate (a CA when isCA) and
// its PKCS#8 key, both PEM.
func certAndKeyPEM(t *testing.T, isCA bool) (certPEM, keyPEM string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "local CA?"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: isCA, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}))
}

// TestParseAllChecksTheLocalCAFiles: local_ca's files are read by check as
// serve reads them: a CA and its key pass; a certificate that is not a CA,
// a key of another certificate or a missing file are named problems.
func TestParseAllChecksTheLocalCAFiles(t *testing.T) {
	caCert, caKey := certAndKeyPEM(t, true)
	leafCert, leafKey := certAndKeyPEM(t, false)
	var caseTests = []struct {
		name  string            // what the files hold
		files map[string]string // /etc/sk/ca.crt and /etc/sk/ca.key
		want  []want            // problems; none when empty
	}{
		{"a CA and its key", map[string]string{"/etc/sk/ca.crt": caCert, "/etc/sk/ca.key": caKey}, nil},
		{"not a CA", map[string]string{"/etc/sk/ca.crt": leafCert, "/etc/sk/ca.key": leafKey},
			[]want{{"local_ca.cert_file", "/etc/sk/ca.crt is not a CA certificate"}}},
		{"another certificate's key", map[string]string{"/etc/sk/ca.crt": caCert, "/etc/sk/ca.key": leafKey},
			[]want{{"local_ca.key_file", "/etc/sk/ca.crt and /etc/sk/ca.key are not a PEM certificate and its private key"}}},
		{"no key file", map[string]string{"/etc/sk/ca.crt": caCert},
			[]want{{"local_ca.key_file", "cannot read /etc/sk/ca.key"}}},
	}
	for _, tt := range caseTests {
		_, ps, err := ParseAll([]byte("local_ca: {cert_file: ca.crt, key_file: ca.key}\n"), ParseOptions{
			Getenv: env(nil), ReadFile: files(tt.files), Dir: "/etc/sk",
		})
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if len(tt.want) == 0 {
			if len(ps) != 0 {
				t.Errorf("%s: problems %v; want none", tt.name, ps)
			}
			continue
		}
		checkProblems(t, ps, tt.want...)
		if strings.Contains(ps.Error(), "PRIVATE KEY") {
			t.Errorf("%s: a key file's content reached the problems:\n%v", tt.name, ps)
		}
	}
}

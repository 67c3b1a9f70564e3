package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testCAPEM is a throwaway self-signed CA certificate in PEM.
func testCAPEM(t testing.TB) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// mtlsBase is a valid mTLS setup around which the cases below vary.
const mtlsBase = `
listen: 0.0.0.0:8443
tls: {mode: files, cert_file: /tls/crt, key_file: /tls/key, client_ca_file: /tls/ca.pem}
tenants:
  a: {provider: static, token: k, api_url: 'http://a'}
`

func TestValidateCertCallers(t *testing.T) {
	key := strings.Repeat("ab", 32)
	tests := []struct {
		name  string // what the case checks
		src   string // the file
		wants []want // problems, sorted by key
	}{
		{name: "cert and key callers", src: mtlsBase + `
caller_key_header: X-Sidekey-Key
callers:
  billing: {cert_subject: "CN=billing,O=Acme", tenants: [a]}
  escaped: {cert_subject: 'CN=a\,b\ +OU=\#x,2.5.4.3=#0c0178,emailAddress=a@b.c,O=Z\C3\BCrich', tenants: [a]}
  script: {key_sha256: ` + key + `, tenants: [a]}
`},
		{name: "acme", src: "tls: {mode: acme, domains: [x.example], email: a@x.example, client_ca_file: /tls/ca.pem}"},
		{name: "client_ca_file without tls", src: "tls: {client_ca_file: /tls/ca.pem}",
			wants: []want{{"tls.client_ca_file", "needs tls.mode files or acme"}}},
		{name: "client_ca_file with tls off", src: "tls: {mode: 'off', client_ca_file: /tls/ca.pem}",
			wants: []want{{"tls.client_ca_file", "needs tls.mode files or acme"}}},
		{name: "cert_subject without client_ca_file", src: "listen: 0.0.0.0:1\ntls: {mode: files, cert_file: c, key_file: k}\ncallers: {m: {cert_subject: CN=m}}",
			wants: []want{{"callers.m.cert_subject", "needs tls.client_ca_file"}}},
		{name: "key and subject", src: mtlsBase + "callers: {m: {cert_subject: CN=m, key_sha256: " + key + "}}",
			wants: []want{{"callers.m", "key_sha256 and cert_subject are mutually exclusive"}}},
		{name: "key file and subject", src: mtlsBase + "callers: {m: {cert_subject: CN=m, key_file: /tls/caller-key}}",
			wants: []want{{"callers.m", "key_file and cert_subject are mutually exclusive"}}},
		{name: "no credential", src: mtlsBase + "callers: {m: {tenants: [a]}}",
			wants: []want{{"callers.m", "key_sha256, key_file or cert_subject is required"}}},
		{name: "same subject", src: mtlsBase + "callers: {a1: {cert_subject: 'CN=x,O=y'}, a2: {cert_subject: 'CN=x,O=y'}, b: {cert_subject: 'CN=x+O=y'}}",
			wants: []want{{"callers.a2.cert_subject", "same subject as callers.a1"}}},
		{name: "subject forms", src: mtlsBase + `
callers:
  prefix: {cert_subject: "subject=CN=x"}
  slashes: {cert_subject: "/CN=x/O=y"}
  spaced: {cert_subject: "CN=x, O=y"}
  spaced-eq: {cert_subject: "CN = x"}
  trailing: {cert_subject: "CN=x "}
  bare: {cert_subject: "billing"}
  backslash: {cert_subject: 'CN=x\'}
  badtype: {cert_subject: "C_N=x"}
  badoid: {cert_subject: "2.5..4=x"}
  ctrl: {cert_subject: "CN=x\ny"}
  empty-rdn: {cert_subject: "CN=x,,O=y"}
`,
			wants: []want{
				{"callers.backslash.cert_subject", "lone backslash"},
				{"callers.badoid.cert_subject", `"2.5..4" is not an attribute type`},
				{"callers.badtype.cert_subject", `"C_N" is not an attribute type`},
				{"callers.bare.cert_subject", `"billing" is not TYPE=value`},
				{"callers.ctrl.cert_subject", "control characters"},
				{"callers.empty-rdn.cert_subject", `"" is not TYPE=value`},
				{"callers.prefix.cert_subject", `drop the "subject="`},
				{"callers.slashes.cert_subject", `"/CN" is not an attribute type`},
				{"callers.spaced-eq.cert_subject", "no spaces around"},
				{"callers.spaced.cert_subject", "no spaces around"},
				{"callers.trailing.cert_subject", "no spaces around"},
			}},
		{name: "default key header any case", src: "caller_key_header: proxy-authorization"},
		{name: "authorization as key header", src: "caller_key_header: Authorization"},
		{name: "hop-by-hop key header", src: "caller_key_header: Connection",
			wants: []want{{"caller_key_header", "Connection cannot carry the caller key: it is hop-by-hop"}}},
		{name: "host key header", src: "caller_key_header: host",
			wants: []want{{"caller_key_header", "host cannot carry the caller key"}}},
		{name: "invalid key header", src: "caller_key_header: 'X Key'",
			wants: []want{{"caller_key_header", "not a valid header name"}}},
		{name: "non-ascii key header", src: "caller_key_header: Schlüssel",
			wants: []want{{"caller_key_header", "not a valid header name"}}},
	}
	ca := testCAPEM(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.src), ParseOptions{Getenv: env(nil), ReadFile: files(map[string]string{"/tls/ca.pem": ca, "/tls/caller-key": "k\n"})})
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			checkProblems(t, problemsOf(t, c.Validate()), tt.wants...)
		})
	}
}

func TestCallerKeyHeaderDefault(t *testing.T) {
	if got := parse(t, "", nil).CallerKeyHeader; got != "Proxy-Authorization" {
		t.Errorf("caller_key_header: got %q; want Proxy-Authorization", got)
	}
	if got := parse(t, "caller_key_header: X-Key", nil).CallerKeyHeader; got != "X-Key" {
		t.Errorf("caller_key_header: got %q; want X-Key", got)
	}
}

func TestClientCAFileIsReadOnLoad(t *testing.T) {
	dir := t.TempDir()
	ca := writeFile(t, dir, "tls/ca.pem", testCAPEM(t))
	garbage := writeFile(t, dir, "tls/garbage.pem", "not a certificate\n")
	missing := filepath.Join(dir, "tls/missing.pem")

	c, err := Parse([]byte("tls: {mode: files, cert_file: c, key_file: k, client_ca_file: tls/ca.pem}"), ParseOptions{Getenv: env(nil), Dir: dir})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if c.TLS.ClientCAFile != ca {
		t.Errorf("client_ca_file: got %q; want it resolved to %q", c.TLS.ClientCAFile, ca)
	}

	tests := []struct {
		file string // tls.client_ca_file
		msg  string // the problem
	}{
		{garbage, "no PEM certificate in " + garbage},
		{missing, "cannot read " + missing + ": no such file or directory"},
		{writeFile(t, dir, "empty.pem", ""), "is empty"},
	}
	for _, tt := range tests {
		_, err := Parse([]byte("tls: {mode: files, cert_file: c, key_file: k, client_ca_file: "+tt.file+"}"), ParseOptions{Getenv: env(nil), Dir: dir})
		checkProblems(t, problemsOf(t, err), want{"tls.client_ca_file", tt.msg})
	}
}

package server_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sidekey/sidekey/config"
)

// testCA issues client certificates.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, name string) testCA {
	t.Helper()
	cert, key, certPEM := selfSigned(t, &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: name},
		KeyUsage:     x509.KeyUsageCertSign,
	})
	return testCA{cert: cert, key: key, pem: certPEM}
}

// dn is a subject of CN and O attributes in DER order: dn("O", "Acme",
// "CN", "billing") is "CN=billing,O=Acme" to openssl.
func dn(typeValues ...string) pkix.RDNSequence {
	oids := map[string]asn1.ObjectIdentifier{"CN": {2, 5, 4, 3}, "O": {2, 5, 4, 10}}
	var rdns pkix.RDNSequence
	for i := 0; i+1 < len(typeValues); i += 2 {
		rdns = append(rdns, pkix.RelativeDistinguishedNameSET{{Type: oids[typeValues[i]], Value: typeValues[i+1]}})
	}
	return rdns
}

// issue returns a client certificate for subject signed by ca.
func (ca testCA) issue(t *testing.T, subject pkix.RDNSequence) *tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := asn1.Marshal(subject)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		RawSubject:   raw,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// startMTLS runs cfg off loopback (as the server sees it) over HTTPS with
// clients' certificates verified against clientCA, and returns it, its base
// URL and the pool that trusts its certificate.
func startMTLS(t *testing.T, cfg *config.Config, clientCA testCA) (*running, string, *x509.CertPool) {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile, caFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"), filepath.Join(dir, "clients-ca.pem")
	serverCert := newTestCert(t, 1)
	serverCert.install(t, certFile, keyFile)
	if err := os.WriteFile(caFile, clientCA.pem, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.Listen = "0.0.0.0:0" // what the server believes; the test serves on 127.0.0.1
	cfg.TLS = config.TLS{Mode: "files", CertFile: certFile, KeyFile: keyFile, ClientCAFile: caFile}
	r := start(t, cfg, nil)
	return r, "https://" + strings.TrimPrefix(r.base, "http://"), poolOf(serverCert.leaf)
}

// mtlsClient trusts roots and presents cert (none when nil), over HTTP/2.
// Like curl --cert, it sends cert whichever CAs the server names (a Go
// client with Certificates would keep one of another CA to itself).
func mtlsClient(roots *x509.CertPool, cert *tls.Certificate) *http.Client {
	tc := &tls.Config{RootCAs: roots}
	if cert != nil {
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: true}}
}

// sidekeyError is the body of an error sidekey makes itself.
type sidekeyError struct {
	Code    string `json:"error"`
	Message string `json:"message"`
}

// send GETs url with header through client and returns the status and,
// when sidekey made the answer, its error.
func send(client *http.Client, url string, header map[string]string) (int, sidekeyError, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, sidekeyError{}, err
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, sidekeyError{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, sidekeyError{}, err
	}
	var e sidekeyError
	if resp.Header.Get("X-Sidekey-Error") != "" {
		if err := json.Unmarshal(body, &e); err != nil {
			return 0, e, err
		}
	}
	return resp.StatusCode, e, nil
}

func sha256Hex(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }

func TestMTLSCallers(t *testing.T) {
	sim := newSimpleStore(t, time.Hour)
	ca := newTestCA(t, "sidekey test client CA")
	cfg := &config.Config{
		Callers: map[string]*config.Caller{
			"billing": {CertSubject: "CN=billing,O=Acme", Tenants: []string{"shop"}},
			// openssl's order, not pkix.Name.String()'s ("CN=ordered,O=Acme").
			"ordered": {CertSubject: "O=Acme,CN=ordered", Tenants: []string{"second"}},
			"script":  {KeySHA256: sha256Hex("script-key"), Tenants: []string{"second"}},
		},
		Tenants: map[string]*config.Tenant{
			"shop":   simpleTenant(sim, clientSecret),
			"second": simpleTenant(sim, clientSecret),
		},
	}
	r, base, roots := startMTLS(t, cfg, ca)
	billing := ca.issue(t, dn("O", "Acme", "CN", "billing"))
	ordered := ca.issue(t, dn("CN", "ordered", "O", "Acme"))
	intruder := ca.issue(t, dn("O", "Acme", "CN", "intruder"))
	scriptKey := map[string]string{"Proxy-Authorization": "Bearer script-key"}

	tests := []struct {
		name   string
		cert   *tls.Certificate  // the client's certificate; nil: none
		header map[string]string // request headers
		tenant string            // first path segment
		status int               // want
		code   string            // X-Sidekey-Error want
		msg    string            // part of the error message
	}{
		{"certificate, own tenant", billing, nil, "shop", 200, "", ""},
		{"certificate, other tenant", billing, nil, "second", 403, "caller_forbidden", "caller billing may not use tenant second"},
		{"certificate in openssl order", ordered, nil, "second", 200, "", ""},
		{"certificate in openssl order, other tenant", ordered, nil, "shop", 403, "caller_forbidden", "caller ordered"},
		{"nothing", nil, nil, "shop", 401, "caller_unauthorized", "present your caller key as Proxy-Authorization: Bearer <key>, or a client certificate"},
		{"key, own tenant", nil, scriptKey, "second", 200, "", ""},
		{"key, other tenant", nil, scriptKey, "shop", 403, "caller_forbidden", "caller script may not use tenant shop"},
		{"unknown key", nil, map[string]string{"Proxy-Authorization": "Bearer nope"}, "second", 401, "caller_unauthorized", "unknown caller key"},
		{"unknown subject", intruder, nil, "shop", 401, "caller_unauthorized", `the client certificate subject "CN=intruder,O=Acme" is not a configured caller`},
		{"unknown subject with a key", intruder, scriptKey, "second", 200, "", ""},
		{"known subject decides over a key", billing, scriptKey, "shop", 200, "", ""},
		{"known subject with another caller's key", billing, scriptKey, "second", 403, "caller_forbidden", "caller billing"},
	}
	for _, tt := range tests {
		status, e, err := send(mtlsClient(roots, tt.cert), base+"/"+tt.tenant+"/v1/cart/1", tt.header)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if status != tt.status || e.Code != tt.code || !strings.Contains(e.Message, tt.msg) {
			t.Errorf("%s: got %d %q %q; want %d %q with %q", tt.name, status, e.Code, e.Message, tt.status, tt.code, tt.msg)
		}
		if status == 200 {
			if h := sim.LastAPIRequest().Header; h.Get("Proxy-Authorization") != "" {
				t.Errorf("%s: the caller key reached the upstream: %q", tt.name, h.Get("Proxy-Authorization"))
			}
		}
	}

	// A certificate for a configured subject from another CA fails the
	// handshake, so it never reaches the caller check.
	rogue := newTestCA(t, "sidekey test rogue CA").issue(t, dn("O", "Acme", "CN", "billing"))
	before := sim.APIRequests()
	if status, e, err := send(mtlsClient(roots, rogue), base+"/shop/v1/cart/1", nil); err == nil {
		t.Errorf("certificate from another CA: got %d %q; want a failed handshake", status, e.Code)
	}
	// TLS 1.2 hears the server's alert within the handshake (1.3 after it,
	// or a reset, depending on timing).
	tc := mtlsClient(roots, rogue).Transport.(*http.Transport).TLSClientConfig
	tc.MaxVersion = tls.VersionTLS12
	if conn, err := tls.Dial("tcp", strings.TrimPrefix(base, "https://"), tc); err == nil {
		conn.Close()
		t.Error("TLS 1.2 handshake with a certificate from another CA succeeded")
	} else if !strings.Contains(err.Error(), "unknown certificate authority") {
		t.Errorf("TLS 1.2 handshake with a certificate from another CA: got %v; want the server's unknown certificate authority alert", err)
	}
	if sim.APIRequests() != before {
		t.Error("a request with a certificate from another CA reached the upstream")
	}

	// Subjects reload with the callers.
	next := *cfg
	next.Callers = map[string]*config.Caller{"intruder": {CertSubject: "CN=intruder,O=Acme", Tenants: []string{"shop"}}}
	if err := r.srv.Reload(&next); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	for _, tt := range []struct {
		cert   *tls.Certificate // the client's certificate
		status int              // want
	}{{intruder, 200}, {billing, 401}} {
		if status, e, err := send(mtlsClient(roots, tt.cert), base+"/shop/v1/cart/1", nil); err != nil || status != tt.status {
			t.Errorf("after reload, %s: got %d %q %v; want %d", tt.cert.Leaf.Subject, status, e.Message, err, tt.status)
		}
	}
}

func TestMTLSClientCAFileProblemsStopStart(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	newTestCert(t, 1).install(t, certFile, keyFile)
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	for file, want := range map[string]string{
		garbage: "tls.client_ca_file " + garbage + ": no PEM certificate",
		missing: "tls.client_ca_file: open " + missing,
	} {
		cfg := filesConfig(certFile, keyFile)
		cfg.TLS.ClientCAFile = file
		if _, err := runUntilError(t, cfg); !strings.Contains(err.Error(), want) {
			t.Errorf("client_ca_file %s: got %q; want it to contain %q", file, err, want)
		}
	}
}

func TestCallerKeyHeader(t *testing.T) {
	sim := newSimpleStore(t, time.Hour)
	cfg := &config.Config{
		Listen:          "0.0.0.0:0", // what the server believes; the test serves on 127.0.0.1
		CallerKeyHeader: "X-Sidekey-Key",
		Callers:         map[string]*config.Caller{"script": {KeySHA256: sha256Hex("script-key"), Tenants: []string{"shop"}}},
		Tenants:         map[string]*config.Tenant{"shop": simpleTenant(sim, clientSecret)},
	}
	r := start(t, cfg, nil)
	check := func(when string) {
		t.Helper()
		tests := []struct {
			header map[string]string // request headers
			status int               // want
			msg    string            // part of the error message
		}{
			{map[string]string{"X-Sidekey-Key": "script-key"}, 200, ""},
			{map[string]string{"x-sidekey-key": "Bearer script-key"}, 200, ""},
			{map[string]string{"Proxy-Authorization": "Bearer script-key"}, 401, "present your caller key in the X-Sidekey-Key header"},
			{map[string]string{"X-Sidekey-Key": "nope"}, 401, "unknown caller key"},
			{map[string]string{"X-Sidekey-Key": ""}, 401, "X-Sidekey-Key"},
		}
		for _, tt := range tests {
			status, e, err := send(http.DefaultClient, r.base+"/shop/v1/cart/1", tt.header)
			if err != nil {
				t.Fatalf("%s, %v: %v", when, tt.header, err)
			}
			if status != tt.status || !strings.Contains(e.Message, tt.msg) {
				t.Errorf("%s, %v: got %d %q; want %d with %q", when, tt.header, status, e.Message, tt.status, tt.msg)
			}
			if status != 200 {
				continue
			}
			h := sim.LastAPIRequest().Header
			if v, ok := h["X-Sidekey-Key"]; ok {
				t.Errorf("%s: the caller key header reached the upstream: %q", when, v)
			}
			if got := h.Get("Authorization"); !strings.HasPrefix(got, "Bearer ") || strings.Contains(got, "script-key") {
				t.Errorf("%s: upstream Authorization %q; want the tenant's token", when, got)
			}
		}
	}
	check("at start")

	// The header is bound at start: the proxy strips the one it began with.
	next := &config.Config{Listen: cfg.Listen, Storage: cfg.Storage, CallerKeyHeader: "X-Other",
		Callers: cfg.Callers, Tenants: map[string]*config.Tenant{"shop": simpleTenant(sim, clientSecret)}}
	next.SetDefaults()
	if err := r.srv.Reload(next); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	check("after a reload that changes caller_key_header")
}

package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/sidekey/sidekey/config"
	"github.com/sidekey/sidekey/internal/testwait"
	"github.com/sidekey/sidekey/server"
)

// testCert is a self-signed certificate for localhost and 127.0.0.1.
type testCert struct {
	certPEM, keyPEM []byte
	leaf            *x509.Certificate
}

func newTestCert(t *testing.T, serial int64) testCert {
	t.Helper()
	leaf, key, certPEM := selfSigned(t, &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "sidekey test " + big.NewInt(serial).String()},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return testCert{
		certPEM: certPEM,
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
		leaf:    leaf,
	}
}

// selfSigned signs tmpl with a new P-256 key, valid from an hour ago for
// two hours, as a CA (so it can be its own root), and returns the parsed
// certificate, the key and the certificate as PEM.
func selfSigned(t *testing.T, tmpl *x509.Certificate) (*x509.Certificate, *ecdsa.PrivateKey, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	tmpl.BasicConstraintsValid, tmpl.IsCA = true, true
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// writeAtomic replaces file's content in one rename, as a secret mount does.
func writeAtomic(t *testing.T, file string, data []byte) {
	t.Helper()
	tmp := file + ".new"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, file); err != nil {
		t.Fatal(err)
	}
}

// install writes c to the cert and key files.
func (c testCert) install(t *testing.T, certFile, keyFile string) {
	t.Helper()
	writeAtomic(t, certFile, c.certPEM)
	writeAtomic(t, keyFile, c.keyPEM)
}

// httpsClient trusts only roots, and offers HTTP/2.
func httpsClient(roots *x509.CertPool) *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: roots},
			ForceAttemptHTTP2: true,
			DisableKeepAlives: true, // every request is a new connection and handshake
		},
	}
}

func poolOf(certs ...*x509.Certificate) *x509.CertPool {
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool
}

// servedSerial is the serial of the certificate addr presents now.
func servedSerial(addr string) (*big.Int, error) {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr,
		&tls.Config{InsecureSkipVerify: true}) // the test compares the certificate itself
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber, nil
}

func filesConfig(certFile, keyFile string) *config.Config {
	return &config.Config{TLS: config.TLS{Mode: "files", CertFile: certFile, KeyFile: keyFile}}
}

func TestTLSFilesServesHTTP2AndReloadsChangedFiles(t *testing.T) {
	t.Parallel() // it mostly waits for the next look at the files
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	first, second := newTestCert(t, 1), newTestCert(t, 2)
	first.install(t, certFile, keyFile)

	core, logs := observer.New(zapcore.InfoLevel)
	r := start(t, filesConfig(certFile, keyFile), zap.New(core))
	addr := strings.TrimPrefix(r.base, "http://")
	base := "https://" + addr

	// HTTPS with the first certificate, over HTTP/2.
	resp, err := httpsClient(poolOf(first.leaf)).Get(base + "/_sidekey/healthz")
	if err != nil {
		t.Fatalf("GET healthz over HTTPS: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "ok") {
		t.Fatalf("healthz: got %d %q; want 200 ok", resp.StatusCode, body)
	}
	if resp.ProtoMajor != 2 {
		t.Errorf("protocol: got %s; want HTTP/2", resp.Proto)
	}
	if resp.TLS.Version < tls.VersionTLS12 {
		t.Errorf("TLS version: got %#x; want 1.2 or later", resp.TLS.Version)
	}

	// An HTTP/1.1-only client is still served.
	h1 := httpsClient(poolOf(first.leaf))
	h1.Transport.(*http.Transport).ForceAttemptHTTP2 = false
	if resp, err := h1.Get(base + "/_sidekey/healthz"); err != nil {
		t.Fatalf("GET over HTTP/1.1: %v", err)
	} else {
		resp.Body.Close()
		if resp.ProtoMajor != 1 {
			t.Errorf("HTTP/1.1 client: got %s", resp.Proto)
		}
	}

	// TLS 1.1 is refused.
	old := &tls.Config{RootCAs: poolOf(first.leaf), MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}
	if conn, err := tls.Dial("tcp", addr, old); err == nil {
		conn.Close()
		t.Error("a TLS 1.1 handshake succeeded; want it refused")
	} else if !strings.Contains(err.Error(), "protocol version") {
		t.Errorf("TLS 1.1 handshake: got %v; want the server's protocol version alert", err)
	}

	// New files: new connections get the new certificate.
	second.install(t, certFile, keyFile)
	testwait.For(t, "the replaced certificate to be served", func() bool {
		serial, err := servedSerial(addr)
		return err == nil && serial.Cmp(second.leaf.SerialNumber) == 0
	})
	if resp, err := httpsClient(poolOf(second.leaf)).Get(base + "/_sidekey/healthz"); err != nil {
		t.Fatalf("GET with the replaced certificate: %v", err)
	} else {
		resp.Body.Close()
	}

	// A broken pair (the first certificate with the second key) is logged
	// and the second certificate stays.
	writeAtomic(t, certFile, first.certPEM)
	testwait.For(t, "the broken pair to be logged", func() bool {
		serial, err := servedSerial(addr) // handshakes drive the check
		if err != nil || serial.Cmp(second.leaf.SerialNumber) != 0 {
			t.Fatalf("after a broken pair: serial %v, err %v; want the previous certificate", serial, err)
		}
		return logs.FilterMessageSnippet("keeping the previous certificate").Len() > 0
	})
	if serial, err := servedSerial(addr); err != nil || serial.Cmp(second.leaf.SerialNumber) != 0 {
		t.Fatalf("after a broken pair: serial %v, err %v; want %v", serial, err, second.leaf.SerialNumber)
	}
	if err := r.stop(); err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

func TestTLSFilesBadPairRefusesToStart(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	one, other := newTestCert(t, 1), newTestCert(t, 2)
	one.install(t, certFile, keyFile)
	otherKey := filepath.Join(dir, "other.key")
	if err := os.WriteFile(otherKey, other.keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(dir, "garbage.crt")
	if err := os.WriteFile(garbage, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.crt")

	tests := []struct {
		name              string
		certFile, keyFile string
		want              []string // substrings of the startup error
	}{
		{"missing cert", missing, keyFile, []string{"tls.cert_file", missing}},
		{"missing key", certFile, filepath.Join(dir, "missing.key"), []string{"tls.key_file", "missing.key"}},
		{"not PEM", garbage, keyFile, []string{garbage}},
		{"key of another cert", certFile, otherKey, []string{certFile, otherKey}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, err := runUntilError(t, filesConfig(tt.certFile, tt.keyFile))
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
			if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
				conn.Close()
				t.Errorf("%s still accepts connections after a failed start", addr)
			}
		})
	}
}

// tlsRun is a server started by runTLS.
type tlsRun struct {
	done   chan error // receives RunListener's result
	cancel context.CancelFunc
}

// runTLS runs a server for cfg on ln (a memory store under t.TempDir()
// unless cfg has a store) until the test ends. log may be nil.
func runTLS(t *testing.T, log *zap.Logger, cfg *config.Config, ln net.Listener) *tlsRun {
	t.Helper()
	addr := ln.Addr().String()
	cfg.Listen = addr
	cfg.PublicURL = "https://" + addr
	if cfg.Storage.Type == "" {
		cfg.Storage = config.Storage{Type: "memory", Path: t.TempDir()}
	}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	srv, err := server.New(server.Options{Config: cfg, Logger: log})
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	run := &tlsRun{done: make(chan error, 1), cancel: cancel}
	finished := make(chan struct{})
	go func() {
		err := srv.RunListener(ctx, ln)
		run.done <- err
		close(finished)
	}()
	t.Cleanup(func() { cancel(); <-finished })
	return run
}

// runUntilError runs a server for cfg on 127.0.0.1:0 and returns the error
// its start fails with, and the address it was given. The test fails if the
// server starts serving instead.
func runUntilError(t *testing.T, cfg *config.Config) (addr string, err error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr = ln.Addr().String()
	run := runTLS(t, nil, cfg, ln)
	select {
	case err := <-run.done:
		if err == nil {
			t.Fatal("RunListener returned nil; want a startup error")
		}
		return addr, err
	case <-time.After(20 * time.Second):
		run.cancel()
		t.Fatal("the server still runs after 20s; want a startup error")
		return "", nil
	}
}

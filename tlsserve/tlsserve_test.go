package tlsserve_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sidekey/sidekey/config"
	"github.com/sidekey/sidekey/tlsserve"
)

// writePair writes a new self-signed certificate for 127.0.0.1 and its key
// into dir, and returns the files and the certificate.
func writePair(t *testing.T, dir string) (certFile, keyFile string, leaf *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7),
		Subject:      pkix.Name{CommonName: "tlsserve test"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	if leaf, err = x509.ParseCertificate(der); err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, leaf
}

// listen opens a listener on 127.0.0.1, closed when the test ends.
func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

func TestWrapOffReturnsTheListener(t *testing.T) {
	ln := listen(t)
	got, err := tlsserve.Wrap(context.Background(), ln, tlsserve.Options{})
	if err != nil || got != ln {
		t.Fatalf("Wrap with tls off: got %v, %v; want the listener itself", got, err)
	}
}

func TestWrapFilesServesTheCertificate(t *testing.T) {
	certFile, keyFile, leaf := writePair(t, t.TempDir())
	ln, err := tlsserve.Wrap(context.Background(), listen(t), tlsserve.Options{
		TLS: config.TLS{Mode: "files", CertFile: certFile, KeyFile: keyFile},
	})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				_ = conn.(*tls.Conn).Handshake()
				conn.Close()
			}()
		}
	}()
	roots := x509.NewCertPool()
	roots.AddCert(leaf)
	conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: roots, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatalf("handshake with the served certificate: %v", err)
	}
	defer conn.Close()
	st := conn.ConnectionState()
	if got := st.PeerCertificates[0].SerialNumber; got.Cmp(leaf.SerialNumber) != 0 {
		t.Errorf("served serial %v; want %v", got, leaf.SerialNumber)
	}
	if st.NegotiatedProtocol != "h2" {
		t.Errorf("negotiated %q; want h2 offered", st.NegotiatedProtocol)
	}
	if st.Version < tls.VersionTLS12 {
		t.Errorf("TLS version %x below 1.2", st.Version)
	}
}

func TestWrapRefusesABrokenClientCAFile(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, _ := writePair(t, dir)
	garbage := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	ln := listen(t)
	got, err := tlsserve.Wrap(context.Background(), ln, tlsserve.Options{
		TLS: config.TLS{Mode: "files", CertFile: certFile, KeyFile: keyFile, ClientCAFile: garbage},
	})
	if err == nil {
		t.Fatal("Wrap with a client CA file that holds no certificate: got nil error")
	}
	for _, want := range []string{"tlsserve:", "tls.client_ca_file", garbage} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	if got != ln {
		t.Error("on error Wrap must return the listener unchanged for the caller to close")
	}
}

package localca_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sidekey/sidekey/localca"
	"github.com/sidekey/sidekey/store"
)

// sealedMemory is a sealed memory store and the raw store under it, whose
// values are what a disk or a redis server would hold.
func sealedMemory(t *testing.T) (sealed, raw store.Store) {
	t.Helper()
	raw = store.NewMemory()
	key := make([]byte, store.KeySize)
	rand.Read(key)
	sealed, err := store.Seal(raw, key)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sealed.Close() })
	return sealed, raw
}

func openStored(t *testing.T, st store.Store) *localca.CA {
	t.Helper()
	ca, err := localca.Open(context.Background(), localca.Options{Store: st})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return ca
}

func TestGeneratedCAIsSealedAndShared(t *testing.T) {
	sealed, raw := sealedMemory(t)
	ca := openStored(t, sealed)
	cert := ca.Certificate()
	if !cert.IsCA || cert.PublicKeyAlgorithm != x509.ECDSA || cert.NotAfter.Sub(cert.NotBefore) < 9*365*24*time.Hour {
		t.Errorf("generated CA: IsCA %v, %v, valid %v; want an ECDSA CA valid about ten years", cert.IsCA, cert.PublicKeyAlgorithm, cert.NotAfter.Sub(cert.NotBefore))
	}
	if block, _ := pem.Decode(ca.CertificatePEM()); block == nil || !bytes.Equal(block.Bytes, cert.Raw) {
		t.Error("CertificatePEM is not the CA certificate")
	}
	// Another replica opening the same store gets the same CA.
	if again := openStored(t, sealed); !again.Certificate().Equal(cert) {
		t.Error("a second Open generated another CA instead of reading the stored one")
	}
	// What the store holds underneath shows neither the key nor even the
	// certificate: the value is sealed.
	keys, err := raw.List(context.Background(), "")
	if err != nil || len(keys) != 1 {
		t.Fatalf("raw store keys = %v, %v; want one", keys, err)
	}
	value, err := raw.Load(context.Background(), keys[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, plain := range [][]byte{cert.Raw[:64], []byte("PRIVATE KEY"), []byte(`"key"`)} {
		if bytes.Contains(value, plain) {
			t.Errorf("the stored CA holds %q in plain text", plain[:min(len(plain), 16)])
		}
	}
}

func TestReplicasGeneratingAtOnceShareOneCA(t *testing.T) {
	sealed, _ := sealedMemory(t)
	const replicas = 8
	cas := make([]*localca.CA, replicas)
	var wg sync.WaitGroup
	for i := range replicas {
		wg.Go(func() {
			ca, err := localca.Open(context.Background(), localca.Options{Store: sealed})
			if err != nil {
				t.Error(err)
				return
			}
			cas[i] = ca
		})
	}
	wg.Wait()
	for i, ca := range cas {
		if ca != nil && !ca.Certificate().Equal(cas[0].Certificate()) {
			t.Errorf("replica %d uses another CA than replica 0", i)
		}
	}
}

// writeCA writes a CA (or, with isCA false, a plain certificate) and its
// key as PEM files, returning their paths.
func writeCA(t *testing.T, isCA bool) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "cert-manager CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour * 24 * 365),
		IsCA: isCA, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(key)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), 0o600)
	return certFile, keyFile
}

func TestProvidedCA(t *testing.T) {
	certFile, keyFile := writeCA(t, true)
	ca, err := localca.Open(context.Background(), localca.Options{CertFile: certFile, KeyFile: keyFile})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if got := ca.Certificate().Subject.CommonName; got != "cert-manager CA" {
		t.Errorf("CA subject = %q; want the provided CA's", got)
	}
	leaf, err := ca.Leaf("api.simplestore.io")
	if err != nil {
		t.Fatal(err)
	}
	if err := leaf.Leaf.CheckSignatureFrom(ca.Certificate()); err != nil {
		t.Errorf("the leaf is not signed by the provided CA: %v", err)
	}

	plainCert, plainKey := writeCA(t, false)
	keyPEM, _ := os.ReadFile(keyFile)
	for _, tt := range []struct {
		name       string // what is wrong
		cert, key  string // the files
		wantInText string // part of the error
	}{
		{"not a CA", plainCert, plainKey, "not a CA certificate"},
		{"missing key file", certFile, filepath.Join(t.TempDir(), "absent.key"), "absent.key"},
		{"key of another certificate", certFile, plainKey, "tls.crt"},
		{"only a certificate", certFile, "", "both cert_file and key_file"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := localca.Open(context.Background(), localca.Options{CertFile: tt.cert, KeyFile: tt.key})
			if err == nil || !strings.Contains(err.Error(), tt.wantInText) {
				t.Fatalf("Open = %v; want an error containing %q", err, tt.wantInText)
			}
			if bytes.Contains([]byte(err.Error()), keyPEM[30:60]) {
				t.Error("the error shows key material")
			}
		})
	}
}

// handshake connects a TLS client trusting ca to a server using
// getCertificate, with serverName as SNI ("" for none, as when dialling an
// IP address), and returns the certificate the server presented.
func handshake(t *testing.T, ca *localca.CA, getCertificate func(*tls.ClientHelloInfo) (*tls.Certificate, error), serverName, verifyName string) (*x509.Certificate, error) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{GetCertificate: getCertificate})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			_ = c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	roots := x509.NewCertPool()
	roots.AddCert(ca.Certificate())
	conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{
		RootCAs: roots, ServerName: serverName,
		// With no SNI (an IP address), verify the name the client dialled.
		InsecureSkipVerify: serverName == "",
		VerifyConnection: func(cs tls.ConnectionState) error {
			if serverName != "" {
				return nil
			}
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots, DNSName: verifyName})
			return err
		},
	})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0], nil
}

func TestGetCertificateServesOnlyItsNames(t *testing.T) {
	sealed, _ := sealedMemory(t)
	ca := openStored(t, sealed)
	get := ca.GetCertificate("127.0.0.1", "LocalHost.")
	if cert, err := handshake(t, ca, get, "localhost", ""); err != nil {
		t.Errorf("SNI localhost: %v", err)
	} else if len(cert.IPAddresses) != 1 || !cert.IPAddresses[0].Equal(net.IPv4(127, 0, 0, 1)) {
		t.Errorf("leaf IP SANs = %v; want 127.0.0.1", cert.IPAddresses)
	}
	if _, err := handshake(t, ca, get, "", "127.0.0.1"); err != nil {
		t.Errorf("no SNI, dialled 127.0.0.1: %v", err)
	}
	for _, foreign := range []string{"api.simplestore.io", "evil.example", "localhost.evil.example"} {
		if _, err := handshake(t, ca, get, foreign, ""); err == nil {
			t.Errorf("SNI %s: handshake succeeded; want it refused (no leaf for a foreign name)", foreign)
		}
	}
	if _, err := get(&tls.ClientHelloInfo{ServerName: "evil.example"}); !errors.Is(err, localca.ErrNameNotAllowed) {
		t.Errorf("GetCertificate(evil.example) = %v; want ErrNameNotAllowed", err)
	}
}

func TestLeavesAreCachedAndRenewed(t *testing.T) {
	sealed, _ := sealedMemory(t)
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	ca, err := localca.Open(context.Background(), localca.Options{Store: sealed, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	first, _ := ca.Leaf("api.simplestore.io")
	if life := first.Leaf.NotAfter.Sub(now); life > 7*24*time.Hour || life < 6*24*time.Hour {
		t.Errorf("leaf life = %v; want seven days", life)
	}
	if again, _ := ca.Leaf("api.simplestore.io"); again != first {
		t.Error("a second Leaf for the same name made a new certificate; want the cached one")
	}
	mu.Lock()
	now = now.Add(5 * 24 * time.Hour) // past two thirds of seven days
	mu.Unlock()
	renewed, _ := ca.Leaf("api.simplestore.io")
	if renewed == first || !renewed.Leaf.NotAfter.After(first.Leaf.NotAfter) {
		t.Error("a leaf past two thirds of its life was not renewed")
	}
}

package server_test

import (
	"crypto/tls"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/sidekey/sidekey/config"
	"github.com/sidekey/sidekey/internal/testwait"
)

// TestClientCAFileReloads: a rotated tls.client_ca_file is picked up
// without a restart — certificates of the new CA are let in, those of the
// old one fail the handshake — and a broken file keeps the CAs in force.
func TestClientCAFileReloads(t *testing.T) {
	sim := newSimpleStore(t, time.Hour)
	oldCA, newCA := newTestCA(t, "client CA"), newTestCA(t, "client CA, rotated")
	dir := t.TempDir()
	certFile, keyFile, caFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"), filepath.Join(dir, "clients-ca.pem")
	serverCert := newTestCert(t, 1)
	serverCert.install(t, certFile, keyFile)
	writeAtomic(t, caFile, oldCA.pem)
	core, logs := observer.New(zap.InfoLevel)
	r := start(t, &config.Config{
		Listen:  "0.0.0.0:0", // off loopback, as the server sees it
		TLS:     config.TLS{Mode: "files", CertFile: certFile, KeyFile: keyFile, ClientCAFile: caFile},
		Callers: map[string]*config.Caller{"billing": {CertSubject: "CN=billing,O=Acme", Tenants: []string{"shop"}}},
		Tenants: map[string]*config.Tenant{"shop": simpleTenant(sim, clientSecret)},
	}, zap.New(core))
	base := "https://" + strings.TrimPrefix(r.base, "http://")
	roots := poolOf(serverCert.leaf)
	// status is what a new connection presenting cert gets; 0: no answer
	// (the handshake failed).
	status := func(cert *tls.Certificate) int {
		client := mtlsClient(roots, cert)
		defer client.CloseIdleConnections()
		code, _, err := send(client, base+"/shop/v1/cart/42", nil)
		if err != nil {
			return 0
		}
		return code
	}
	oldCert := oldCA.issue(t, dn("O", "Acme", "CN", "billing"))
	newCert := newCA.issue(t, dn("O", "Acme", "CN", "billing"))
	if got := status(oldCert); got != 200 {
		t.Fatalf("a certificate of the configured CA: %d; want 200", got)
	}
	if got := status(newCert); got != 0 {
		t.Fatalf("a certificate of another CA: %d; want a failed handshake", got)
	}

	writeAtomic(t, caFile, newCA.pem)
	testwait.For(t, "the rotated CA to be trusted", func() bool { return status(newCert) == 200 })
	if got := status(oldCert); got != 0 {
		t.Errorf("a certificate of the replaced CA: %d; want a failed handshake", got)
	}

	writeAtomic(t, caFile, []byte("not a certificate"))
	testwait.For(t, "the broken file to be noticed", func() bool {
		status(nil) // a handshake looks at the file
		return logs.FilterMessageSnippet("client CA file was not loaded").Len() > 0
	})
	if got := status(newCert); got != 200 {
		t.Errorf("after a broken client CA file: %d; want 200 with the CAs kept", got)
	}
}

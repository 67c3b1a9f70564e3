package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"maps"
	"math/big"
	"slices"
	"time"
)

// ClientCADir is where the chart mounts tls.clientCA.existingSecret: its key
// appears there as ca.crt, which tls.client_ca_file names.
const ClientCADir = "/run/secrets/sidekey-client-ca"

// mountAt returns the sidekey container's volume mount at path, or nil.
func (r *rendered) mountAt(path string) obj {
	for _, m := range list(r.sidekey, "volumeMounts") {
		if str(m, "mountPath") == path {
			mount, _ := m.(obj)
			return mount
		}
	}
	return nil
}

// projects reports whether a Secret volume's items map key to path (any key
// when key is "").
func projects(volume obj, key, path string) bool {
	for _, it := range list(volume, "secret", "items") {
		if str(it, "path") == path && (key == "" || str(it, "key") == key) {
			return true
		}
	}
	return false
}

// checkClientCA: tls.client_ca_file, when set, is the ca.crt of a Secret
// mounted read-only at ClientCADir, with tls on; without it nothing is
// mounted there. A caller with cert_subject has the CA and no key.
func checkClientCA(c *checker, r *rendered) {
	file := str(r.cfg, "tls", "client_ca_file")
	volume := r.volumeAt(ClientCADir)
	callers, _ := r.cfg["callers"].(obj)
	for _, name := range slices.Sorted(maps.Keys(callers)) {
		if str(callers, name, "cert_subject") == "" {
			continue
		}
		c.check(file != "", "caller %s has cert_subject but tls.client_ca_file is not set", name)
		c.check(str(callers, name, "key_sha256") == "" && str(callers, name, "key_file") == "",
			"caller %s has cert_subject and a key: it presents one or the other", name)
	}
	if file == "" {
		c.check(volume == nil, "no tls.client_ca_file, but a volume is mounted at %s", ClientCADir)
		return
	}
	c.check(r.tlsMode() != "off", "tls.client_ca_file is set with tls off: no handshake asks for client certificates")
	c.check(file == ClientCADir+"/ca.crt", "tls.client_ca_file = %q, want %s/ca.crt", file, ClientCADir)
	c.check(str(volume, "secret", "secretName") != "", "tls.client_ca_file is set but no Secret is mounted at %s", ClientCADir)
	c.check(volume == nil || projects(volume, "", "ca.crt"), "the Secret mounted at %s projects no key to ca.crt", ClientCADir)
	c.check(get(r.mountAt(ClientCADir), "readOnly") == true, "%s is not mounted read-only", ClientCADir)
}

// checkMTLS: ci/mtls-values.yaml's promises: HTTPS from files, the CA from
// Secret sidekey-client-ca's key clients-ca.pem, billing known by its
// certificate subject, nightly by a key in X-Sidekey-Key.
func checkMTLS(c *checker, r *rendered) {
	c.check(r.tlsMode() == "files", "tls.mode %q, want files", r.tlsMode())
	volume := r.volumeAt(ClientCADir)
	c.check(str(volume, "secret", "secretName") == "sidekey-client-ca", "the Secret sidekey-client-ca is not mounted at %s", ClientCADir)
	c.check(projects(volume, "clients-ca.pem", "ca.crt"), "tls.clientCA.key clients-ca.pem is not projected to ca.crt")
	c.check(str(r.cfg, "tls", "client_ca_file") == ClientCADir+"/ca.crt", "tls.client_ca_file = %q, want %s/ca.crt", str(r.cfg, "tls", "client_ca_file"), ClientCADir)
	c.check(str(r.cfg, "callers", "billing", "cert_subject") == "CN=billing,O=Acme", "callers.billing.cert_subject = %q, want CN=billing,O=Acme", str(r.cfg, "callers", "billing", "cert_subject"))
	c.check(str(r.cfg, "callers", "nightly", "key_file") == SecretDir+"/caller.nightly.key", "callers.nightly.key_file = %q, want the chart's Secret", str(r.cfg, "callers", "nightly", "key_file"))
	c.check(str(r.cfg, "caller_key_header") == "X-Sidekey-Key", "caller_key_header = %q, want X-Sidekey-Key", str(r.cfg, "caller_key_header"))
}

// placeholderCA returns a fresh self-signed CA certificate as PEM: what
// extract puts in tls.client_ca_file, which `sidekey check` reads (the real
// bundle lives in a Secret outside the chart).
func placeholderCA() ([]byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("chartcheck: placeholder CA key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "chartcheck placeholder client CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("chartcheck: placeholder CA: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// placeholderKeyPair returns a fresh self-signed server certificate and its
// key as PEM: what extract puts in tls.cert_file and tls.key_file, which
// `sidekey check` reads (the real ones live in a Secret outside the chart).
func placeholderKeyPair() (certPEM, keyPEM []byte, err error) { return placeholderPair(false) }

// placeholderPair makes a self-signed placeholder certificate and its key:
// a CA's (as local_ca holds) when ca is set, else a server's.
func placeholderPair(ca bool) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("chartcheck: placeholder key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "chartcheck placeholder server"},
		DNSNames:     []string{"sidekey"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if ca {
		tmpl.Subject.CommonName, tmpl.DNSNames, tmpl.ExtKeyUsage = "chartcheck placeholder local CA", nil, nil
		tmpl.IsCA, tmpl.BasicConstraintsValid, tmpl.KeyUsage = true, true, x509.KeyUsageCertSign|x509.KeyUsageDigitalSignature
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("chartcheck: placeholder certificate: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("chartcheck: placeholder key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), nil
}

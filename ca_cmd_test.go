package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
)

func TestCAPrintsTheSameCertificateServeUses(t *testing.T) {
	dir := t.TempDir()
	path := writeConfig(t, `
storage: {type: file, path: `+dir+`}
forward_proxy: {listen: 127.0.0.1:3128}
tenants:
  simple:
    provider: simplestore
    client_id: id
    client_secret: s
    intercept_hosts: [api.simplestore.io]
`)
	var first, second, stderr bytes.Buffer
	if err := run(context.Background(), []string{"ca", "--config", path}, &first, &stderr); err != nil {
		t.Fatalf("sidekey ca: %v (%s)", err, stderr.String())
	}
	block, rest := pem.Decode(first.Bytes())
	if block == nil || block.Type != "CERTIFICATE" || len(bytes.TrimSpace(rest)) != 0 {
		t.Fatalf("sidekey ca printed %q; want one PEM certificate", first.String())
	}
	if cert, err := x509.ParseCertificate(block.Bytes); err != nil || !cert.IsCA {
		t.Fatalf("printed certificate: %v; want a CA", err)
	}
	if strings.Contains(first.String(), "PRIVATE KEY") {
		t.Fatal("sidekey ca printed a key")
	}
	if err := run(context.Background(), []string{"ca", "--config", path}, &second, &stderr); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first.Bytes(), second.Bytes()) {
		t.Error("a second sidekey ca printed another CA; want the stored one")
	}
}

func TestCARefusesAStoreThatCannotKeepIt(t *testing.T) {
	path := writeConfig(t, "storage: {type: memory}\n")
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"ca", "--config", path}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "local_ca.cert_file") || stdout.Len() != 0 {
		t.Errorf("sidekey ca with a memory store: %v, printed %d bytes; want an error naming local_ca", err, stdout.Len())
	}
}

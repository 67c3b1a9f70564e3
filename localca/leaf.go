package localca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// ErrNameNotAllowed matches the handshake error for a server name the
// listener serves no certificate for.
var ErrNameNotAllowed = errors.New("localca: no certificate for this server name")

// GetCertificate returns a tls.Config.GetCertificate that serves one leaf
// certificate covering names (DNS names and IP addresses), issued by ca.
// A ClientHello naming any other server name fails the handshake: the CA
// never issues for a name the listener was not configured with. A
// ClientHello without a server name (a client that dialled an IP address)
// gets the leaf. It is safe for concurrent use.
func (ca *CA) GetCertificate(names ...string) func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	names = normalise(names)
	allowed := make(map[string]bool, len(names))
	for _, n := range names {
		allowed[n] = true
	}
	return func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		if sni := normaliseName(hello.ServerName); sni != "" && !allowed[sni] {
			return nil, fmt.Errorf("%w: %q", ErrNameNotAllowed, hello.ServerName)
		}
		return ca.Leaf(names...)
	}
}

// Leaf returns a leaf certificate for names (DNS names and IP addresses),
// from cache while less than two thirds of its seven-day life have passed.
func (ca *CA) Leaf(names ...string) (*tls.Certificate, error) {
	names = normalise(names)
	if len(names) == 0 {
		return nil, errors.New("localca: a leaf needs at least one name")
	}
	id := strings.Join(names, ",")
	now := ca.now()
	ca.mu.Lock()
	defer ca.mu.Unlock()
	if leaf := ca.leaves[id]; leaf != nil && now.Before(renewAt(leaf.Leaf)) && !now.Before(leaf.Leaf.NotBefore) {
		return leaf, nil
	}
	leaf, err := ca.issue(names, now)
	if err != nil {
		return nil, err
	}
	ca.leaves[id] = leaf
	return leaf, nil
}

// renewAt is when a leaf is replaced: two thirds into its life.
func renewAt(c *x509.Certificate) time.Time {
	return c.NotBefore.Add(c.NotAfter.Sub(c.NotBefore) * 2 / 3)
}

// issue signs a new leaf for names: a fresh P-256 key, server
// authentication only, valid seven days (never past the CA itself).
func (ca *CA) issue(names []string, now time.Time) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("localca: generating a leaf key: %w", err)
	}
	notAfter := now.Add(leafLifetime)
	if notAfter.After(ca.cert.NotAfter) {
		notAfter = ca.cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{Organization: []string{"sidekey"}, CommonName: names[0]},
		NotBefore:    now.Add(-backdate),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return nil, fmt.Errorf("localca: signing a leaf for %s: %w", strings.Join(names, ", "), err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("localca: reading back a leaf: %w", err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// normalise returns names lower-cased, without trailing dots, empty names
// and repeats, in their first order.
func normalise(names []string) []string {
	out := make([]string, 0, len(names))
	seen := make(map[string]bool, len(names))
	for _, n := range names {
		if n = normaliseName(n); n != "" && !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}

// normaliseName is one name as normalise leaves it.
func normaliseName(n string) string {
	return strings.ToLower(strings.TrimSuffix(strings.TrimSpace(n), "."))
}

package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"

	"go.uber.org/zap"
)

// wrapTLS returns ln serving HTTPS as tls.mode asks (off: ln itself). On
// error it returns ln unchanged, so the caller can close it. In acme mode
// it obtains (or loads and renews) the certificates before it returns, and
// stops their maintenance when ctx is done.
//
// With tls.client_ca_file the listener asks clients for a certificate and
// verifies one that is presented against that file's CAs (reloaded when the
// file changes): a certificate that does not chain to them fails the
// handshake, and a client without one is still served (it may present a
// caller key).
func (s *Server) wrapTLS(ctx context.Context, ln net.Listener) (net.Listener, error) {
	mode := s.cfg.TLS.Mode
	if mode != "files" && mode != "acme" {
		return ln, nil
	}
	// Before anything else: a broken file fails the start before an ACME
	// CA is asked for a certificate.
	if s.cfg.TLS.ClientCAFile != "" {
		if _, err := loadCertPool("tls.client_ca_file", s.cfg.TLS.ClientCAFile); err != nil {
			return ln, err
		}
	}
	var tc *tls.Config
	var err error
	if mode == "files" {
		files, err := loadCertFiles(certFilesOptions{
			CertFile: s.cfg.TLS.CertFile,
			KeyFile:  s.cfg.TLS.KeyFile,
			Logger:   s.log.Named("tls"),
		})
		if err != nil {
			return ln, err
		}
		tc = baseTLSConfig()
		tc.GetCertificate = files.GetCertificate
	} else if tc, err = s.acmeTLSConfig(ctx, ln); err != nil {
		return ln, err
	}
	if s.cfg.TLS.ClientCAFile != "" {
		cas, err := watchClientCAs(clientCAOptions{File: s.cfg.TLS.ClientCAFile, Base: tc, Logger: s.log.Named("tls")})
		if err != nil {
			return ln, err
		}
		tc = tc.Clone()
		tc.GetConfigForClient = cas.GetConfigForClient
		s.log.Named("tls").Info("verifying client certificates", zap.String("client_ca_file", s.cfg.TLS.ClientCAFile))
	}
	return tls.NewListener(ln, tc), nil
}

// loadCertPool reads a PEM file of CA certificates; key names the setting
// in errors, which name the file too.
func loadCertPool(key, file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("server: %s: %w", key, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("server: %s %s: no PEM certificate in it", key, file)
	}
	return pool, nil
}

// baseTLSConfig is what every HTTPS mode shares: TLS 1.2 or later, and
// HTTP/2 offered before HTTP/1.1 (http.Server serves h2 on a TLS listener
// whose config offers it).
func baseTLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"h2", "http/1.1"},
	}
}

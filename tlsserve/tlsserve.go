// Package tlsserve serves HTTPS on a listener as the tls section of the
// configuration asks: certificate and key files reloaded when they change,
// or certificates obtained and renewed from an ACME CA (kept in the shared
// store under redis), and client certificates verified against a CA file
// that is reloaded too. CertSubject names a verified client certificate as
// callers' cert_subject is written.
package tlsserve

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/sidekey/sidekey/config"
	"github.com/sidekey/sidekey/store"
)

// Options configures Wrap.
type Options struct {
	// TLS is the tls section of the configuration. Mode off (or empty)
	// leaves the listener as it is.
	TLS config.TLS
	// Listen is the configured listen address; its host is where ACME
	// HTTP-01 challenges are answered.
	Listen string
	// Storage is the storage section: with type redis, ACME certificates,
	// account and locks live in Store; otherwise under {Storage.Path}/acme.
	Storage config.Storage
	// Store is the opened (sealed) store, used for ACME with type redis.
	Store store.Store
	// Logger receives certificate loads, reloads and ACME progress (named
	// "tls" and "acme"). Default: nop.
	Logger *zap.Logger
	// Now is the clock that stamps values kept in Store. Default: time.Now.
	Now func() time.Time
}

// Wrap returns ln serving HTTPS as opts.TLS.Mode asks (off: ln itself). On
// error it returns ln unchanged, so the caller can close it. In acme mode
// it obtains (or loads and renews) the certificates before it returns, and
// stops their maintenance when ctx is done.
//
// With tls.client_ca_file the listener asks clients for a certificate and
// verifies one that is presented against that file's CAs (reloaded when the
// file changes): a certificate that does not chain to them fails the
// handshake, and a client without one is still served (it may present a
// caller key).
func Wrap(ctx context.Context, ln net.Listener, opts Options) (net.Listener, error) {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	mode := opts.TLS.Mode
	if mode != "files" && mode != "acme" {
		return ln, nil
	}
	// Before anything else: a broken file fails the start before an ACME
	// CA is asked for a certificate.
	if opts.TLS.ClientCAFile != "" {
		if _, err := loadCertPool("tls.client_ca_file", opts.TLS.ClientCAFile); err != nil {
			return ln, err
		}
	}
	var tc *tls.Config
	var err error
	if mode == "files" {
		files, err := loadCertFiles(certFilesOptions{
			CertFile: opts.TLS.CertFile,
			KeyFile:  opts.TLS.KeyFile,
			Logger:   opts.Logger.Named("tls"),
		})
		if err != nil {
			return ln, err
		}
		tc = baseTLSConfig()
		tc.GetCertificate = files.GetCertificate
	} else if tc, err = acmeTLSConfig(ctx, ln, opts); err != nil {
		return ln, err
	}
	if opts.TLS.ClientCAFile != "" {
		cas, err := watchClientCAs(clientCAOptions{File: opts.TLS.ClientCAFile, Base: tc, Logger: opts.Logger.Named("tls")})
		if err != nil {
			return ln, err
		}
		tc = tc.Clone()
		tc.GetConfigForClient = cas.GetConfigForClient
		opts.Logger.Named("tls").Info("verifying client certificates", zap.String("client_ca_file", opts.TLS.ClientCAFile))
	}
	return tls.NewListener(ln, tc), nil
}

// loadCertPool reads a PEM file of CA certificates; key names the setting
// in errors, which name the file too.
func loadCertPool(key, file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("tlsserve: %s: %w", key, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("tlsserve: %s %s: no PEM certificate in it", key, file)
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

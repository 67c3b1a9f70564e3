package tlsserve

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
)

// acmeTLSConfig obtains (or loads from storage and renews if due) the
// certificates for tls.domains from the ACME CA tls.ca, and returns the TLS
// config that serves them and answers TLS-ALPN-01 challenges. certmagic
// keeps renewing them until ctx is done. No certmagic package default is
// used: the cache, config and issuer are all built here.
func acmeTLSConfig(ctx context.Context, ln net.Listener, opts Options) (*tls.Config, error) {
	t := opts.TLS
	if t.Email == "" {
		// certmagic would prompt for one on stdin.
		return nil, errors.New("tlsserve: tls.email is required with tls.mode acme")
	}
	var roots *x509.CertPool
	if t.CARootFile != "" {
		var err error
		if roots, err = loadCertPool("tls.ca_root_file", t.CARootFile); err != nil {
			return nil, err
		}
	}
	log := opts.Logger.Named("acme")
	storage := acmeStorageFor(opts, log)

	var magic *certmagic.Config
	cache := certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert: func(certmagic.Certificate) (*certmagic.Config, error) { return magic, nil },
		Logger:           log,
	})
	magic = certmagic.New(cache, certmagic.Config{
		Storage:           storage,
		Logger:            log,
		DefaultServerName: t.Domains[0], // for clients that send no SNI, e.g. probes by IP
	})
	listenHost, _, _ := net.SplitHostPort(opts.Listen)
	magic.Issuers = []certmagic.Issuer{certmagic.NewACMEIssuer(magic, certmagic.ACMEIssuer{
		CA:           t.CA,
		Email:        t.Email,
		Agreed:       true,
		TrustedRoots: roots,
		ListenHost:   listenHost,
		AltHTTPPort:  t.HTTPChallengePort,
		// TLS-ALPN-01 is answered on our own listener: certmagic finds the
		// port taken and leaves it to tc (answerChallenges, then Serve).
		AltTLSALPNPort: listenerPort(ln),
		Logger:         log,
	})}

	tc := magic.TLSConfig()
	tc.MinVersion = tls.VersionTLS12
	tc.NextProtos = append(baseTLSConfig().NextProtos, tc.NextProtos...)

	stop := answerChallenges(ln, tc, log)
	err := magic.ManageSync(ctx, t.Domains)
	stop()
	if err != nil {
		cache.Stop()
		return nil, fmt.Errorf("tlsserve: tls acme: certificate for %v from %s: %w", t.Domains, t.CA, err)
	}
	go func() {
		<-ctx.Done()
		cache.Stop()
	}()
	log.Info("serving ACME certificates", zap.Strings("domains", t.Domains), zap.String("ca", t.CA))
	return tc, nil
}

// acmeStorageFor is where certmagic keeps certificates, the ACME account,
// challenge data and locks. With the redis store it is that shared store
// (sealed like tokens), so replicas obtain a certificate once and share it;
// otherwise it is {storage.path}/acme, this process's own.
func acmeStorageFor(opts Options, log *zap.Logger) certmagic.Storage {
	if opts.Storage.Type == "redis" {
		log.Info("ACME certificates, account and locks are kept in the shared redis store", zap.String("key_prefix", acmePrefix))
		return newACMEStorage(opts.Store, opts.Now)
	}
	dir := filepath.Join(opts.Storage.Path, "acme")
	log.Info("ACME certificates and account are kept in this process's directory", zap.String("dir", dir))
	return &certmagic.FileStorage{Path: dir}
}

// listenerPort is ln's TCP port, or 0 if it has none.
func listenerPort(ln net.Listener) int {
	_, port, err := net.SplitHostPort(ln.Addr().String())
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(port)
	return n
}

package tlsserve

import (
	"crypto/tls"
	"fmt"
	"os"
	"sync"
	"time"

	"go.uber.org/zap"
)

// defaultCertCheckEvery is how often, at most, a handshake looks at the
// certificate files' modification times.
const defaultCertCheckEvery = 2 * time.Second

// certFilesOptions configures loadCertFiles.
type certFilesOptions struct {
	// CertFile and KeyFile are the PEM certificate chain and private key.
	// Required.
	CertFile, KeyFile string
	// CheckEvery is how often, at most, the files are checked for a change.
	// Default: 2s.
	CheckEvery time.Duration
	// Logger receives reloads and rejected pairs. Default: nop.
	Logger *zap.Logger
	// Now is the clock. Default: time.Now.
	Now func() time.Time
}

// certFiles serves the certificate in a cert and key file pair, and reloads
// the pair when either file changes. A broken new pair is logged and the
// previous certificate kept. It is safe for concurrent use.
type certFiles struct {
	opts certFilesOptions

	mu    sync.Mutex // guards the fields below
	cert  *tls.Certificate
	watch *fileWatch // the two files
}

// loadCertFiles loads the pair named in opts. It fails, naming the file,
// when either file is missing or the pair is not a valid certificate and
// matching key.
func loadCertFiles(opts certFilesOptions) (*certFiles, error) {
	if opts.CheckEvery <= 0 {
		opts.CheckEvery = defaultCertCheckEvery
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	c := &certFiles{opts: opts, watch: newFileWatch(opts.CheckEvery, opts.Now, opts.CertFile, opts.KeyFile)}
	cert, err := c.load()
	if err != nil {
		return nil, err
	}
	c.cert = cert
	c.logLoaded("serving TLS certificate from files", cert)
	return c, nil
}

// GetCertificate returns the current certificate, first reloading the files
// if they changed since the last look (at most every CheckEvery). It has the
// signature of tls.Config.GetCertificate.
func (c *certFiles) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.watch.changed() {
		return c.cert, nil
	}
	cert, err := c.load()
	if err != nil {
		c.opts.Logger.Error("TLS certificate files changed but cannot be loaded; keeping the previous certificate", zap.Error(err))
		return c.cert, nil
	}
	c.cert = cert
	c.logLoaded("reloaded TLS certificate from files", cert)
	return c.cert, nil
}

// load reads and parses the pair.
func (c *certFiles) load() (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(c.opts.CertFile)
	if err != nil {
		return nil, fmt.Errorf("tlsserve: tls.cert_file: %w", err)
	}
	keyPEM, err := os.ReadFile(c.opts.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("tlsserve: tls.key_file: %w", err)
	}
	// The error of X509KeyPair never quotes the key material.
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("tlsserve: tls.cert_file %s with tls.key_file %s: %w", c.opts.CertFile, c.opts.KeyFile, err)
	}
	return &cert, nil
}

func (c *certFiles) logLoaded(msg string, cert *tls.Certificate) {
	fields := []zap.Field{zap.String("cert_file", c.opts.CertFile)}
	if leaf := cert.Leaf; leaf != nil {
		fields = append(fields,
			zap.String("subject", leaf.Subject.String()),
			zap.Strings("dns_names", leaf.DNSNames),
			zap.Time("not_after", leaf.NotAfter))
		if c.opts.Now().After(leaf.NotAfter) {
			c.opts.Logger.Warn("the TLS certificate has expired", fields...)
		}
	}
	c.opts.Logger.Info(msg, fields...)
}

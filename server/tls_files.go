package server

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

	mu      sync.Mutex // guards the fields below
	cert    *tls.Certificate
	seen    fileStamps // the files as they were at the last load attempt
	checked time.Time  // when the files were last looked at
}

// fileStamps tell whether either file changed: size and modification time
// of each (zero for a file that cannot be stat'ed).
type fileStamps struct {
	certMod, keyMod   time.Time
	certSize, keySize int64
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
	c := &certFiles{opts: opts}
	c.seen = c.stamps()
	cert, err := c.load()
	if err != nil {
		return nil, err
	}
	c.cert = cert
	c.checked = opts.Now()
	c.logLoaded("serving TLS certificate from files", cert)
	return c, nil
}

// GetCertificate returns the current certificate, first reloading the files
// if they changed since the last look (at most every CheckEvery). It has the
// signature of tls.Config.GetCertificate.
func (c *certFiles) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.opts.Now()
	if now.Sub(c.checked) < c.opts.CheckEvery {
		return c.cert, nil
	}
	c.checked = now
	st := c.stamps()
	if st == c.seen {
		return c.cert, nil
	}
	c.seen = st
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
		return nil, fmt.Errorf("server: tls.cert_file: %w", err)
	}
	keyPEM, err := os.ReadFile(c.opts.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("server: tls.key_file: %w", err)
	}
	// The error of X509KeyPair never quotes the key material.
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("server: tls.cert_file %s with tls.key_file %s: %w", c.opts.CertFile, c.opts.KeyFile, err)
	}
	return &cert, nil
}

// stamps looks at both files.
func (c *certFiles) stamps() fileStamps {
	var st fileStamps
	if fi, err := os.Stat(c.opts.CertFile); err == nil {
		st.certMod, st.certSize = fi.ModTime(), fi.Size()
	}
	if fi, err := os.Stat(c.opts.KeyFile); err == nil {
		st.keyMod, st.keySize = fi.ModTime(), fi.Size()
	}
	return st
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

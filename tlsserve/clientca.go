package tlsserve

import (
	"crypto/tls"
	"sync"
	"time"

	"go.uber.org/zap"
)

// clientCAOptions configures watchClientCAs.
type clientCAOptions struct {
	// File is tls.client_ca_file. Required.
	File string
	// Base is the listener's TLS config; the served config is a copy with
	// client certificates verified against File's CAs. Required.
	Base *tls.Config
	// CheckEvery is how often, at most, a handshake looks at the file's
	// modification time and size. Default: defaultCertCheckEvery.
	CheckEvery time.Duration
	// Logger receives reloads and rejected files. Default: nop.
	Logger *zap.Logger
	// Now is the clock. Default: time.Now.
	Now func() time.Time
}

// clientCAs verifies client certificates against the CAs in a file, and
// reloads the file when it changes (a rotated client CA needs no restart).
// A broken new file is logged and the previous CAs are kept. It is safe
// for concurrent use.
type clientCAs struct {
	opts clientCAOptions

	mu     sync.Mutex // guards the fields below
	config *tls.Config
	watch  *fileWatch
}

// watchClientCAs loads opts.File; it fails, naming the setting and the
// file, when the file cannot be read or holds no certificate.
func watchClientCAs(opts clientCAOptions) (*clientCAs, error) {
	if opts.CheckEvery <= 0 {
		opts.CheckEvery = defaultCertCheckEvery
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	c := &clientCAs{opts: opts, watch: newFileWatch(opts.CheckEvery, opts.Now, opts.File)}
	if err := c.load(); err != nil {
		return nil, err
	}
	return c, nil
}

// load reads the file into a new served config.
func (c *clientCAs) load() error {
	pool, err := loadCertPool("tls.client_ca_file", c.opts.File)
	if err != nil {
		return err
	}
	tc := c.opts.Base.Clone()
	tc.ClientAuth = tls.VerifyClientCertIfGiven
	tc.ClientCAs = pool
	c.config = tc
	return nil
}

// GetConfigForClient serves as tls.Config.GetConfigForClient: the config
// with the current CAs, reloaded first if the file changed.
func (c *clientCAs) GetConfigForClient(*tls.ClientHelloInfo) (*tls.Config, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.watch.changed() {
		return c.config, nil
	}
	if err := c.load(); err != nil {
		c.opts.Logger.Warn("the changed client CA file was not loaded; keeping the previous CAs", zap.Error(err))
	} else {
		c.opts.Logger.Info("client CAs reloaded", zap.String("client_ca_file", c.opts.File))
	}
	return c.config, nil
}

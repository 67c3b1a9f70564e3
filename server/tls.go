package server

import (
	"context"
	"net"

	"github.com/sidekey/sidekey/tlsserve"
)

// wrapTLS returns ln serving HTTPS as tls.mode asks (off: ln itself), the
// listener tlsserve.Wrap makes from this server's configuration, store,
// logger and clock. On error it returns ln unchanged, so the caller can
// close it; ACME maintenance stops when ctx is done.
func (s *Server) wrapTLS(ctx context.Context, ln net.Listener) (net.Listener, error) {
	return tlsserve.Wrap(ctx, ln, tlsserve.Options{
		TLS:     s.cfg.TLS,
		Listen:  s.cfg.Listen,
		Storage: s.cfg.Storage,
		Store:   s.store,
		Logger:  s.log,
		Now:     s.now,
	})
}

package server

import (
	"context"
	"crypto/tls"
	"net"
)

// wrapTLS returns ln serving HTTPS as tls.mode asks (off: ln itself). On
// error it returns ln unchanged, so the caller can close it. In acme mode
// it obtains (or loads and renews) the certificates before it returns, and
// stops their maintenance when ctx is done.
func (s *Server) wrapTLS(ctx context.Context, ln net.Listener) (net.Listener, error) {
	switch s.cfg.TLS.Mode {
	case "files":
		files, err := loadCertFiles(certFilesOptions{
			CertFile: s.cfg.TLS.CertFile,
			KeyFile:  s.cfg.TLS.KeyFile,
			Logger:   s.log.Named("tls"),
		})
		if err != nil {
			return ln, err
		}
		tc := baseTLSConfig()
		tc.GetCertificate = files.GetCertificate
		return tls.NewListener(ln, tc), nil
	case "acme":
		tc, err := s.acmeTLSConfig(ctx, ln)
		if err != nil {
			return ln, err
		}
		return tls.NewListener(ln, tc), nil
	}
	return ln, nil
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

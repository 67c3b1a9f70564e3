package tlsserve

import (
	"crypto/tls"
	"net"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// challengeHandshakeTimeout bounds one connection accepted by
// answerChallenges.
const challengeHandshakeTimeout = 10 * time.Second

// answerChallenges accepts connections on ln and completes only their TLS
// handshake with tc, until the returned stop is called. While the first
// certificate is obtained nothing serves ln yet, so without this an ACME
// CA's TLS-ALPN-01 validation (a handshake on this listener) would hang.
// Other clients get a failed handshake meanwhile. stop waits for the accept
// loop to end and leaves ln open for Serve. If ln cannot be interrupted (it
// has no SetDeadline), nothing is accepted and stop does nothing.
func answerChallenges(ln net.Listener, tc *tls.Config, log *zap.Logger) (stop func()) {
	d, ok := ln.(interface{ SetDeadline(time.Time) error })
	if !ok {
		return func() {}
	}
	var stopping atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			conn, err := ln.Accept()
			if err != nil {
				if !stopping.Load() {
					log.Warn("accepting during certificate issuance", zap.Error(err))
				}
				return
			}
			go handshakeOnly(conn, tc)
		}
	}()
	return func() {
		stopping.Store(true)
		_ = d.SetDeadline(time.Now())
		<-done
		_ = d.SetDeadline(time.Time{})
	}
}

// handshakeOnly completes a TLS handshake on conn, then closes it.
func handshakeOnly(conn net.Conn, tc *tls.Config) {
	_ = conn.SetDeadline(time.Now().Add(challengeHandshakeTimeout))
	tconn := tls.Server(conn, tc)
	_ = tconn.Handshake()
	_ = tconn.Close()
}

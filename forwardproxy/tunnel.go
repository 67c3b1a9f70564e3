package forwardproxy

import (
	"bufio"
	"net"
	"sync"
)

// bufferedConn is a connection whose first bytes were already read into r.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

// Read reads what was buffered first, then from the connection.
func (c *bufferedConn) Read(b []byte) (int, error) { return c.r.Read(b) }

// tunnelQueue is the net.Listener the tunnel server accepts tunnels from.
type tunnelQueue struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newTunnelQueue() *tunnelQueue {
	return &tunnelQueue{conns: make(chan net.Conn), done: make(chan struct{})}
}

// put hands c to the tunnel server; false once it is closed.
func (q *tunnelQueue) put(c net.Conn) bool {
	select {
	case q.conns <- c:
		return true
	case <-q.done:
		return false
	}
}

// Accept returns the next tunnel.
func (q *tunnelQueue) Accept() (net.Conn, error) {
	select {
	case c := <-q.conns:
		return c, nil
	case <-q.done:
		return nil, net.ErrClosed
	}
}

// Close stops Accept and put.
func (q *tunnelQueue) Close() error {
	q.once.Do(func() { close(q.done) })
	return nil
}

// Addr names the queue.
func (q *tunnelQueue) Addr() net.Addr { return tunnelAddr{} }

// tunnelAddr is the address of the tunnel queue.
type tunnelAddr struct{}

// Network returns "tunnel".
func (tunnelAddr) Network() string { return "tunnel" }

// String returns "sidekey-tunnels".
func (tunnelAddr) String() string { return "sidekey-tunnels" }

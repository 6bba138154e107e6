package receiver

import (
	"net"
	"sync"
)

// limitListener holds at most n connections open at once (serve.max_connections).
// At the cap Accept waits for one to close, as golang.org/x/net/netutil's does, so a
// connection over the cap waits in the kernel's accept queue: its connect succeeds,
// and its request is read once a connection closes (idle ones within the server's
// header and idle timeouts). Once that queue (net.core.somaxconn) is full too, the
// kernel drops further SYNs and clients retry their connect.
type limitListener struct {
	net.Listener
	slots     chan struct{}
	closed    chan struct{}
	closeOnce sync.Once
}

func limitListen(ln net.Listener, n int) net.Listener {
	return &limitListener{Listener: ln, slots: make(chan struct{}, n), closed: make(chan struct{})}
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	case <-l.closed:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &limitConn{Conn: c, release: sync.OnceFunc(func() { <-l.slots })}, nil
}

func (l *limitListener) Close() error {
	err := l.Listener.Close()
	l.closeOnce.Do(func() { close(l.closed) })
	return err
}

type limitConn struct {
	net.Conn
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.release()
	return err
}

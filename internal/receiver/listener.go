package receiver

import (
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// connLimiter holds the receiver to serve.max_connections. At the cap, a new
// connection is let in by closing the one that has gone longest without a request in
// flight (an idle keep-alive, or one that has sent nothing yet): a flood of idle
// connections must not keep a heartbeat waiting in the accept queue behind it, as it
// does with golang.org/x/net/netutil's LimitListener (36 s, bench/README.md). A new
// connection is the last to go, so it has until max more have arrived to send its
// request. When every connection has a request in flight, new ones wait in the
// kernel's accept queue, as with netutil: their connect succeeds, and their request
// is read once a connection closes or goes idle; when that queue
// (net.core.somaxconn) is full too, the kernel drops further SYNs and clients retry.
// newConnGrace is how long a new connection has to send its request before it may
// be closed for another at the cap: time for a TLS handshake and a request on a LAN.
// Under a flood of connections that never send one, one waiting in the accept queue
// behind n of them waits about n/max_connections times this (bench/README.md).
var newConnGrace = 500 * time.Millisecond

type connLimiter struct {
	max      int
	newGrace time.Duration // a new connection's time to send its request before it may be closed

	mu      sync.Mutex
	conns   map[net.Conn]connSince // every connection open, as http.Server names it
	changed chan struct{}          // closed, and replaced, when one closes or goes idle
}

type connSince struct {
	idle  bool // no request in flight
	fresh bool // and none yet
	since time.Time
}

// idleConnGrace spares a keep-alive connection that has just been answered: its
// client may be sending the next request already (ship's heartbeat, then its
// upload), and net/http marks it active only once that request's headers are read.
const idleConnGrace = 100 * time.Millisecond

func newConnLimiter(max int) *connLimiter {
	return &connLimiter{max: max, newGrace: newConnGrace, conns: map[net.Conn]connSince{}, changed: make(chan struct{})}
}

// ConnState is the http.Server's ConnState hook.
func (l *connLimiter) ConnState(c net.Conn, st http.ConnState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch st {
	case http.StateNew:
		l.conns[c] = connSince{idle: true, fresh: true, since: time.Now()}
	case http.StateIdle:
		l.conns[c] = connSince{idle: true, since: time.Now()}
	case http.StateActive:
		if _, open := l.conns[c]; open { // not one room() closed a moment ago
			l.conns[c] = connSince{}
		}
		return
	case http.StateClosed, http.StateHijacked:
		delete(l.conns, c)
	}
	// A connection closed, or one that may be closed: room for one waiting.
	close(l.changed)
	l.changed = make(chan struct{})
}

// listen wraps ln, whose connections must be served by the http.Server that has
// l.ConnState as its hook.
func (l *connLimiter) listen(ln net.Listener) net.Listener {
	return &limitListener{Listener: ln, l: l, done: make(chan struct{})}
}

// room makes room for one more connection if it can, closing the longest idle one
// when at the cap. When it cannot, retry > 0 is when a connection's grace ends;
// 0 means every connection has a request in flight.
func (l *connLimiter) room() (ok bool, retry time.Duration) {
	l.mu.Lock()
	if len(l.conns) < l.max {
		l.mu.Unlock()
		return true, 0
	}
	now := time.Now()
	var victim net.Conn
	var oldest time.Time
	for c, s := range l.conns {
		if !s.idle {
			continue
		}
		grace := idleConnGrace
		if s.fresh {
			grace = l.newGrace
		}
		if wait := s.since.Add(grace).Sub(now); wait > 0 {
			if retry == 0 || wait < retry {
				retry = wait
			}
			continue
		}
		if victim == nil || s.since.Before(oldest) {
			victim, oldest = c, s.since
		}
	}
	if victim != nil {
		delete(l.conns, victim) // it is closed: it no longer counts
	}
	l.mu.Unlock()
	if victim == nil {
		return false, retry
	}
	_ = victim.Close()
	return true, 0
}

func (l *connLimiter) waitChange() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.changed
}

type limitListener struct {
	net.Listener
	l         *connLimiter
	done      chan struct{}
	closeOnce sync.Once
	waiting   atomic.Bool // a connection waits for room (tests look)
}

// Accept returns the next connection once there is room for it: it holds at most one
// connection over the cap, the one waiting here.
func (ln *limitListener) Accept() (net.Conn, error) {
	c, err := ln.Listener.Accept()
	if err != nil {
		return nil, err
	}
	defer ln.waiting.Store(false)
	for {
		changed := ln.l.waitChange()
		ok, retry := ln.l.room()
		if ok {
			return c, nil
		}
		ln.waiting.Store(true)
		var graceOver <-chan time.Time
		if retry > 0 {
			graceOver = time.After(retry)
		}
		select {
		case <-changed:
		case <-graceOver:
		case <-ln.done:
			c.Close()
			return nil, net.ErrClosed
		}
	}
}

func (ln *limitListener) Close() error {
	err := ln.Listener.Close()
	ln.closeOnce.Do(func() { close(ln.done) })
	return err
}

package ship

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// cutter is a loopback TCP proxy in front of the receiver that cuts the link: when
// the bytes it has forwarded towards the receiver (over all connections, in order)
// reach the next of cuts, it stops forwarding either way, ends the receiver's side of
// that connection there, waits for the receiver to have dealt with the cut request
// (settle), and resets the client's side. Real sockets, so the client and the
// receiver see what a dropped link does to them; HTTP is not parsed. The receiver
// sees the end (FIN) rather than a reset so that it reads every byte forwarded, and
// what it keeps is a function of the cut, not of socket buffers.
type cutter struct {
	t      *testing.T
	ln     net.Listener
	target string

	mu      sync.Mutex
	sent    int64   // bytes forwarded towards the receiver
	cuts    []int64 // thresholds on sent not reached yet, ascending
	cutDone int     // cuts made
	// settle, when set, returns once the receiver has answered the i-th cut's
	// request (from 0).
	settle func(i int)
	// onCut runs at the i-th cut, after settle and before the client's side is
	// reset: what the test does there happens before the client knows of the cut.
	onCut func(i int)
}

func newCutter(t *testing.T, target string, cuts ...int64) *cutter {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &cutter{t: t, ln: ln, target: target, cuts: cuts}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { c.serve(conn.(*net.TCPConn)) })
		}
	})
	return c
}

func (c *cutter) URL() string { return "http://" + c.ln.Addr().String() }

// Cuts is how many cuts were made.
func (c *cutter) Cuts() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cutDone
}

func (c *cutter) serve(client *net.TCPConn) {
	defer client.Close()
	up, err := net.Dial("tcp", c.target)
	if err != nil {
		return
	}
	server := up.(*net.TCPConn)
	defer server.Close()
	var cutting atomic.Bool
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		buf := make([]byte, 32<<10)
		for {
			n, err := server.Read(buf)
			if cutting.Load() {
				return // nothing of the receiver's answer to a cut request reaches the client
			}
			if n > 0 {
				if _, werr := client.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				_ = client.CloseWrite()
				return
			}
		}
	})
	buf := make([]byte, 32<<10)
	for {
		n, rerr := client.Read(buf)
		if n > 0 {
			allowed, cut := c.take(int64(n))
			if cut >= 0 {
				cutting.Store(true)
			}
			if _, err := server.Write(buf[:allowed]); err != nil {
				return
			}
			if cut >= 0 {
				_ = server.CloseWrite()
				if c.settle != nil {
					c.settle(cut)
				}
				if c.onCut != nil {
					c.onCut(cut)
				}
				reset(client)
				reset(server)
				return
			}
		}
		if rerr != nil {
			_ = server.CloseWrite()
			return
		}
	}
}

// take accounts for n bytes read from the client: how many of them go on, and the
// index of the cut they reach (-1: none).
func (c *cutter) take(n int64) (allowed int64, cut int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.cuts) == 0 || c.sent+n < c.cuts[0] {
		c.sent += n
		return n, -1
	}
	allowed = c.cuts[0] - c.sent
	c.sent, c.cuts = c.cuts[0], c.cuts[1:]
	c.cutDone++
	return allowed, c.cutDone - 1
}

// reset closes conn with an RST, as a link that vanished leaves it for the peer.
func reset(conn *net.TCPConn) {
	_ = conn.SetLinger(0)
	_ = conn.Close()
}

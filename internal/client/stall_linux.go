package client

import (
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// giveUpStalled makes the kernel drop a connection whose sent bytes stay
// unacknowledged for d (TCP_USER_TIMEOUT). Without it an upload over a link that went
// away waits out TCP's own retransmissions (about 15 minutes) before ship hears of it
// and resumes; with it, ship hears within receiver.timeout. A live but slow receiver
// is not cut: its acknowledgements keep coming while it reads.
func giveUpStalled(d time.Duration) func(network, address string, c syscall.RawConn) error {
	if d <= 0 {
		return nil
	}
	return func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(d.Milliseconds()))
		})
		if err != nil {
			return err
		}
		return serr
	}
}

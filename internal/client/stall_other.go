//go:build !linux

package client

import (
	"syscall"
	"time"
)

// giveUpStalled: TCP_USER_TIMEOUT is Linux's; elsewhere TCP's own retransmission
// limits decide when a dead connection ends.
func giveUpStalled(time.Duration) func(network, address string, c syscall.RawConn) error { return nil }

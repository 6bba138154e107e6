package receiver

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLimitListener(t *testing.T) {
	t.Parallel()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ln := limitListen(inner, 1)
	accepted := make(chan net.Conn, 2)
	errc := make(chan error, 1)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				errc <- err
				return
			}
			accepted <- c
		}
	}()
	for range 2 {
		c, err := net.Dial("tcp", inner.Addr().String())
		require.NoError(t, err)
		defer c.Close()
	}
	first := <-accepted
	assert.Never(t, func() bool { return len(accepted) > 0 }, 200*time.Millisecond, 10*time.Millisecond, "a second connection at a cap of 1")
	require.NoError(t, first.Close())
	_ = first.Close() // a second Close gives back nothing (and must not block)
	var second net.Conn
	select {
	case second = <-accepted:
	case <-time.After(5 * time.Second):
		require.FailNow(t, "the waiting connection was not accepted once the first closed")
	}
	// At the cap again, Accept waits for a slot; Close ends that wait.
	require.NoError(t, ln.Close())
	select {
	case err := <-errc:
		assert.True(t, errors.Is(err, net.ErrClosed), "%v", err)
	case <-time.After(5 * time.Second):
		assert.Fail(t, "Close did not end an Accept waiting for a slot")
	}
	second.Close()
}

package e2e

import (
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/testutil"
)

// SPEC §3.1: the client never sends a bearer token over plain http:// to an address
// that is not loopback. ship and health ship refuse before connecting, say which URL
// to use, and exit non-zero.

// acceptedNothingBefore proves nothing connected to ln so far: it connects once
// itself and accepts one connection, which must be its own (the accept queue is
// first in, first out).
func acceptedNothingBefore(t *testing.T, ln net.Listener) {
	t.Helper()
	own, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer own.Close()
	got, err := ln.Accept()
	require.NoError(t, err)
	defer got.Close()
	assert.Equal(t, own.LocalAddr().String(), got.RemoteAddr().String(), "the binary connected to %s", ln.Addr())
}

func TestShipAndHealthShipRefuseToSendTheTokenInClear(t *testing.T) {
	t.Parallel()
	// A listener on this machine's own non-loopback address: reachable, so a client
	// that did not refuse would connect to it.
	ln, err := net.Listen("tcp", net.JoinHostPort(testutil.NonLoopbackIPv4(t), "0"))
	require.NoError(t, err)
	defer ln.Close()
	url := "http://" + ln.Addr().String()
	use := "https://" + ln.Addr().String()

	for _, tc := range []struct{ url, use string }{
		{url, use},
		{"http://lab-pi:8490", "https://lab-pi:8490"}, // the README's example: never looked up
	} {
		h := newDrHost(t, "lab-07", tc.url).withToken(t, "c490_not_to_be_seen")
		h.write(t)
		require.NoError(t, os.WriteFile(filepath.Join(h.spool, "outbox", "ep-1.tar"), []byte("episode"), 0o640))
		want := "receiver.url is " + tc.url + " and a token is configured: refusing to send the token in clear; use " + tc.use

		r := Run(t, bin, h.env, nil, "--config", h.cfg, "ship")
		assert.NotEqual(t, 0, r.Code, "ship: %s", r.Stderr)
		assert.Contains(t, r.Stderr, want, "ship")
		assert.NotContains(t, r.Stderr+r.Stdout, "c490_not_to_be_seen")
		assert.FileExists(t, filepath.Join(h.spool, "outbox", "ep-1.tar"), "nothing moved")

		r = h.healthShip(t, bin, nil)
		assert.NotEqual(t, 0, r.Code, "health ship: %s", r.Stderr)
		assert.Contains(t, r.Stderr, want, "health ship")
		assert.NotContains(t, r.Stderr+r.Stdout, "c490_not_to_be_seen")
	}
	acceptedNothingBefore(t, ln)
}

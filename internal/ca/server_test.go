package ca_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/ca"
	"github.com/cis490/cis490/internal/testpki"
)

func TestRenewServer(t *testing.T) {
	t.Parallel()
	clk := newClock(time.Now())
	c := newCA(t, clk, ca.Options{})
	server := filepath.Join(c.Dir(), ca.ServerFile)
	first := serialAt(t, server, server)

	r, err := c.RenewServer(server, server, nil)
	require.NoError(t, err)
	assert.False(t, r.Renewed, r.Why)
	assert.Contains(t, r.Why, "renewed after")

	clk.add(59 * 24 * time.Hour)
	r, err = c.RenewServer(server, server, nil)
	require.NoError(t, err)
	assert.False(t, r.Renewed, "with 31 of 90 days left it waits: %s", r.Why)

	clk.add(2 * 24 * time.Hour)
	r, err = c.RenewServer(server, server, nil)
	require.NoError(t, err)
	assert.True(t, r.Renewed)
	assert.Contains(t, r.Why, "past two thirds")
	second := serialAt(t, server, server)
	assert.NotEqual(t, first, second)
	assert.Equal(t, []string{"127.0.0.1", "localhost"}, r.Issued.Names, "the certificate's names are kept")

	r, err = c.RenewServer(server, server, []string{"127.0.0.1", "localhost", "pi.lab"})
	require.NoError(t, err)
	assert.True(t, r.Renewed, "serve.ca.server_names changed")
	assert.Contains(t, r.Why, "differ from the certificate's")
	assert.Equal(t, []string{"127.0.0.1", "localhost", "pi.lab"}, r.Issued.Names)

	clk.add(200 * 24 * time.Hour)
	r, err = c.RenewServer(server, server, nil)
	require.NoError(t, err)
	assert.True(t, r.Renewed)
	assert.Contains(t, r.Why, "expired")

	ledger, err := ca.ReadLedger(c.Dir())
	require.NoError(t, err)
	n := 0
	for _, is := range ledger.Issued {
		if is.By == ca.ByServer {
			n++
		}
	}
	assert.Equal(t, 4, n, "each server certificate is a line of issued.jsonl")
}

func TestRenewServerLeavesAnotherCAsCertificateAlone(t *testing.T) {
	t.Parallel()
	c := newCA(t, newClock(time.Now().Add(400*24*time.Hour)), ca.Options{})
	byo := testpki.NewCA(t, "operator").Server("receiver")
	r, err := c.RenewServer(byo.CertFile, byo.KeyFile, nil)
	require.NoError(t, err)
	assert.False(t, r.Renewed)
	assert.Contains(t, r.Why, "not from this receiver's CA")
}

func TestParseServerNames(t *testing.T) {
	t.Parallel()
	got, err := ca.ParseServerNames("pi.lab, 192.168.1.10", "PI  ::1")
	require.NoError(t, err)
	assert.Equal(t, []string{"192.168.1.10", "::1", "pi", "pi.lab"}, got)
	_, err = ca.ParseServerNames("pi_lab")
	assert.ErrorContains(t, err, `"pi_lab" is neither a host name nor an IP address`)
}

// A revocation written by another process (cert revoke on the Pi) is seen within
// half a second of the CA's clock.
func TestRevocationsFromAnotherProcess(t *testing.T) {
	t.Parallel()
	clk := newClock(time.Now())
	receiver := newCA(t, clk, ca.Options{})
	got, leaf, err := bootstrap(t, receiver, "lab-07")
	require.NoError(t, err)
	assert.False(t, receiver.Revoked(leaf.SerialNumber))

	cli, err := ca.Open(receiver.Dir(), ca.Options{Now: clk.Now})
	require.NoError(t, err)
	_, err = cli.RevokeSerial(got.Serial)
	require.NoError(t, err)
	clk.add(100 * time.Millisecond)
	assert.False(t, receiver.Revoked(leaf.SerialNumber), "the list is looked at again at most every 500 ms")
	clk.add(400 * time.Millisecond)
	assert.True(t, receiver.Revoked(leaf.SerialNumber))
}

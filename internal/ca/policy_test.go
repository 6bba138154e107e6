package ca_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/ca"
)

func refusal(t *testing.T, err error) *ca.Refused {
	t.Helper()
	var r *ca.Refused
	require.ErrorAs(t, err, &r)
	return r
}

func TestBootstrapWhenNoneValid(t *testing.T) {
	t.Parallel()
	clk := newClock(time.Now())
	c := newCA(t, clk, ca.Options{Lifetime: 24 * time.Hour})
	first, _, err := bootstrap(t, c, "lab-07")
	require.NoError(t, err, "a host with no certificate bootstraps on its token")

	_, _, err = bootstrap(t, c, "lab-07")
	r := refusal(t, err)
	assert.Contains(t, r.Reason, "lab-07 has a valid certificate on record (serial "+first.Serial)
	assert.Contains(t, r.Reason, "serve.ca.bootstrap = when-none-valid")
	assert.Contains(t, r.Fix, "`cis490 cert allow-bootstrap lab-07`", "the command that opens it")
	_, _, err = bootstrap(t, c, "lab-08")
	assert.NoError(t, err, "another host is not concerned")

	clk.add(time.Second)
	_, err = c.AllowBootstrap("lab-07")
	require.NoError(t, err)
	clk.add(time.Second)
	_, _, err = bootstrap(t, c, "lab-07")
	require.NoError(t, err, "allow-bootstrap opens it")
	_, _, err = bootstrap(t, c, "lab-07")
	refusal(t, err) // once

	clk.add(25 * time.Hour)
	_, _, err = bootstrap(t, c, "lab-07")
	assert.NoError(t, err, "once every certificate expired, the token suffices again (a host off for a semester)")
}

func TestBootstrapNever(t *testing.T) {
	t.Parallel()
	clk := newClock(time.Now())
	c := newCA(t, clk, ca.Options{Bootstrap: ca.BootstrapNever})
	_, _, err := bootstrap(t, c, "lab-07")
	r := refusal(t, err)
	assert.Contains(t, r.Reason, "serve.ca.bootstrap = never")
	assert.Contains(t, r.Fix, "`cis490 cert allow-bootstrap lab-07`")
	assert.Len(t, lines(t, c, ca.IssuedFile), 1, "nothing issued")

	clk.add(time.Second)
	_, err = c.AllowBootstrap("lab-07")
	require.NoError(t, err)
	clk.add(time.Second)
	_, _, err = bootstrap(t, c, "lab-07")
	require.NoError(t, err)
	_, _, err = bootstrap(t, c, "lab-07")
	refusal(t, err)
}

func TestBootstrapAlways(t *testing.T) {
	t.Parallel()
	c := newCA(t, newClock(time.Now()), ca.Options{Bootstrap: ca.BootstrapAlways})
	for range 3 {
		_, _, err := bootstrap(t, c, "lab-07")
		require.NoError(t, err)
	}
}

// Revoking a host closes its bootstrap under every policy: its timer would otherwise
// fetch a new certificate with the same token within hours.
func TestRevokeHostClosesBootstrap(t *testing.T) {
	t.Parallel()
	for _, policy := range []string{ca.BootstrapWhenNoneValid, ca.BootstrapAlways} {
		t.Run(policy, func(t *testing.T) {
			clk := newClock(time.Now())
			c := newCA(t, clk, ca.Options{Bootstrap: policy})
			_, a, err := bootstrap(t, c, "lab-07")
			require.NoError(t, err)
			renewed, err := c.Issue(ca.Request{Host: "lab-07", CSR: csrPEM(t, p256(t), nil), Proof: a})
			require.NoError(t, err)
			b := leafOf(t, renewed.Chain)

			revoked, err := c.RevokeHost("lab-07")
			require.NoError(t, err)
			assert.Len(t, revoked, 2, "the live one and the one in its last hour")
			clk.add(time.Millisecond)
			assert.True(t, c.Revoked(a.SerialNumber))
			assert.True(t, c.Revoked(b.SerialNumber), "at once, not in an hour")

			_, _, err = bootstrap(t, c, "lab-07")
			r := refusal(t, err)
			assert.Contains(t, r.Reason, "revoked on the receiver")
			assert.Contains(t, r.Fix, "`cis490 cert allow-bootstrap lab-07`")

			clk.add(time.Millisecond)
			_, err = c.AllowBootstrap("lab-07")
			require.NoError(t, err)
			clk.add(time.Millisecond)
			_, _, err = bootstrap(t, c, "lab-07")
			assert.NoError(t, err)
		})
	}
}

func TestRevokeSerial(t *testing.T) {
	t.Parallel()
	clk := newClock(time.Now())
	c := newCA(t, clk, ca.Options{})
	got, leaf, err := bootstrap(t, c, "lab-07")
	require.NoError(t, err)
	_, err = c.RevokeSerial("abcdef")
	require.ErrorIs(t, err, ca.ErrUnknownSerial)

	r, err := c.RevokeSerial(got.Serial)
	require.NoError(t, err)
	assert.False(t, r.Already)
	clk.add(time.Millisecond)
	assert.True(t, c.Revoked(leaf.SerialNumber))
	r, err = c.RevokeSerial(got.Serial)
	require.NoError(t, err)
	assert.True(t, r.Already)
	assert.Len(t, lines(t, c, ca.RevokedFile), 1, "revoking twice writes once")

	// A host with nothing left to revoke is still closed.
	none, err := c.RevokeHost("lab-08")
	require.NoError(t, err)
	assert.Empty(t, none)
	clk.add(time.Millisecond)
	_, _, err = bootstrap(t, c, "lab-08")
	refusal(t, err)
}

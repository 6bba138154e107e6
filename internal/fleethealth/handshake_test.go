package fleethealth

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/index"
)

// tls-refused lasts while the host's handshakes are refused, whatever else claims its
// name, and clears at its next request that gets through.
func TestTLSRefusedClearsAtTheNextRequestThatGetsThrough(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	f.heartbeats("lab-07", t0.Add(-2*time.Hour), t0.Add(-mins(20)), mins(5))
	f.report("lab-07", "ok", t0.Add(-time.Hour))
	for at := t0.Add(-mins(15)); !at.After(t0.Add(mins(20))); at = at.Add(mins(5)) {
		f.handshake("lab-07", "bad_usage", at, "10.0.0.7:41000")
	}
	f.check(t0)
	// A request refused 401 that only claims the host (anyone can send one) proves
	// nothing: the certificate is still refused.
	f.unverified("lab-07", t0.Add(mins(7)))
	f.check(t0.Add(mins(10)))
	f.check(t0.Add(mins(20)))
	f.req("lab-07", "heartbeat", 204, t0.Add(mins(22)), commitOK) // renewed: it gets through
	f.check(t0.Add(mins(25)))
	lines := f.lines()
	require.Equal(t, []string{
		"firing lab-07/tls-refused@18:00", "firing lab-07/silent@18:10",
		"resolved lab-07/silent@18:25", "resolved lab-07/tls-refused@18:25",
	}, statuses(lines))
	assert.Contains(t, lines[0].Summary, "needs extendedKeyUsage clientAuth")
	assert.Equal(t, Critical, lines[0].Severity)
}

// A refused handshake whose certificate names no host is listed with its remote
// address; one that names a host nobody tracks lists the name. Neither alerts.
func TestRefusedHandshakesOfNoTrackedHostAreListed(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	healthy(f, t0)
	f.handshake("", "no_certificate", t0.Add(-mins(30)), "10.0.0.9:5555")
	f.handshake("", "no_certificate", t0.Add(-mins(20)), "10.0.0.9:5556")
	f.handshake("", "unknown_ca", t0.Add(-mins(10)), "[2001:db8::1]:443")
	f.handshake("lab-new", "unknown_ca", t0.Add(-mins(5)), "10.0.0.10:1234")
	res := f.check(t0)
	assert.Empty(t, f.lines())
	assert.Equal(t, []string{"lab-new"}, res.Unproven)
	assert.Equal(t, []RefusedHandshake{
		{Remote: "2001:db8::1", Reason: "unknown_ca", Count: 1, Last: t0.Add(-mins(10))},
		{Remote: "10.0.0.9", Reason: "no_certificate", Count: 2, Last: t0.Add(-mins(20))},
	}, res.RefusedHandshakes)
	assert.Equal(t, 2, res.RefusedHandshakesCount)
	require.Len(t, res.Hosts, 1, "only lab-ok is tracked")
}

// A receiver whose routes need a client certificate takes a handshake without one and
// refuses the request 401, with the host it claims marked unverified and the
// handshake refusals' reason: for a tracked host that is tls-refused, as a handshake
// refused for want of one was, and not fatal-only as well. Anyone can claim a name,
// so it never makes a host up.
func TestNoCertificateRefusalsAreTLSRefused(t *testing.T) {
	t.Parallel()
	noCert := func(f *fleet, host string, at time.Time) {
		f.t.Helper()
		require.NoError(f.t, f.idx.Append(index.Entry{TS: at, Host: host, Route: "heartbeat", Method: "POST", Status: 401,
			Error: "no_certificate", Unverified: true, Stamped: true, Commit: commitOK, Remote: "10.0.0.7:41000"}))
	}
	t.Run("a tracked host", func(t *testing.T) {
		t.Parallel()
		f := newFleet(t)
		f.heartbeats("lab-07", t0.Add(-2*time.Hour), t0.Add(-mins(20)), mins(5))
		f.report("lab-07", "ok", t0.Add(-time.Hour))
		for at := t0.Add(-mins(15)); !at.After(t0); at = at.Add(mins(5)) {
			noCert(f, "lab-07", at)
		}
		f.check(t0)
		f.req("lab-07", "heartbeat", 204, t0.Add(mins(2)), commitOK) // its certificate is back
		f.check(t0.Add(mins(5)))
		lines := f.lines()
		require.Equal(t, []string{"firing lab-07/tls-refused@18:00", "resolved lab-07/tls-refused@18:05"}, statuses(lines))
		assert.Contains(t, lines[0].Summary, "no_certificate")
		assert.Contains(t, lines[0].Summary, "configure receiver.cert_file and receiver.key_file")
	})
	t.Run("a roster host never seen", func(t *testing.T) {
		t.Parallel()
		f := newFleet(t)
		f.token("lab-08", t0.Add(-time.Hour))
		noCert(f, "lab-08", t0.Add(-mins(1)))
		f.check(t0)
		assert.Contains(t, statuses(f.lines()), "firing lab-08/tls-refused@18:00")
	})
	t.Run("a host nobody tracks", func(t *testing.T) {
		t.Parallel()
		f := newFleet(t)
		healthy(f, t0)
		noCert(f, "lab-new", t0.Add(-mins(1)))
		res := f.check(t0)
		assert.Empty(t, f.lines())
		assert.Equal(t, []string{"lab-new"}, res.Unproven)
	})
}

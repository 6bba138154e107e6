package fleethealth

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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

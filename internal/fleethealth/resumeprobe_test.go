package fleethealth

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/index"
)

// A HEAD /v1/episodes/{sha256} is ship asking where a cut upload stands (SPEC §3.3).
// Its answers are indexed under route "episodes", but none of them is an episode, and
// its 404 ("nothing of it here: start over") is an answer the gate let through, not a
// refusal: a host on a flaky link that asks three times must not look fatal-only, nor
// seem to have sent episodes it did not.
func TestResumeProbesAreNeitherEpisodesNorRefusals(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	now := t0.Add(time.Hour)
	first := now.Add(-50 * time.Minute)
	f.req("lab-07", "episodes", 201, first, commitOK)
	head := func(status int, at time.Time) {
		require.NoError(t, f.idx.Append(index.Entry{TS: at, Host: "lab-07", Route: "episodes", Method: "HEAD",
			Status: status, Commit: commitOK, Stamped: true, SHA256: "ab"}))
	}
	for i := range 4 {
		head(404, now.Add(-time.Duration(10-i)*time.Minute))
	}
	head(204, now.Add(-5*time.Minute))
	head(200, now.Add(-4*time.Minute))
	f.report("lab-07", "ok", now.Add(-time.Minute))
	require.NoError(t, f.idx.Sync())

	res, err := Snapshot(f.opts(now))
	require.NoError(t, err)
	require.Len(t, res.Hosts, 1)
	row := res.Hosts[0]
	assert.Empty(t, row.Symptoms, "resume probes are no refusals")
	assert.Equal(t, HostOK, row.Status)
	assert.Equal(t, 1, row.Requests.Episodes, "only the PUT stored an episode")
	assert.Equal(t, 0, row.Requests.Refused)
	assert.Equal(t, 7, row.Requests.OK)
	assert.True(t, row.LastEpisode.Equal(first), "a probe is not an episode: last episode %v", row.LastEpisode)

	// A probe the gate refuses is a refusal like any other gated request.
	g := newFleet(t)
	g.req("lab-08", "episodes", 201, first, commitOK)
	for i := range 3 {
		require.NoError(t, g.idx.Append(index.Entry{TS: now.Add(-time.Duration(5-i) * time.Minute), Host: "lab-08",
			Route: "episodes", Method: "HEAD", Status: 426, Commit: "abcdef1", Stamped: true, Error: "commit not allowed"}))
	}
	require.NoError(t, g.idx.Sync())
	res, err = Snapshot(g.opts(now))
	require.NoError(t, err)
	require.Len(t, res.Hosts, 1)
	var names []string
	for _, s := range res.Hosts[0].Symptoms {
		names = append(names, s.Symptom)
	}
	assert.Contains(t, names, FatalOnly)
}

package fleethealth

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/alerts"
)

func rowOf(t *testing.T, res *Result, host string) Row {
	t.Helper()
	for _, r := range res.Hosts {
		if r.Host == host {
			return r
		}
	}
	require.Failf(t, "no row", "no row for %s in %d rows", host, len(res.Hosts))
	return Row{}
}

// A host with a token that never sends a request is tracked all the same: silent from
// its token's creation plus silent_after, once.
func TestRosterHostThatNeverSpokeFiresOnceAtItsThreshold(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	healthy(f, t0.Add(time.Hour))
	f.token("lab-ok", t0.Add(-48*time.Hour))
	f.token("lab-new", t0.Add(-mins(10))) // due at 18:20
	res := f.check(t0)
	assert.Equal(t, HostInactive, rowOf(t, res, "lab-new").Status, "expected, not overdue yet")
	f.every(t0.Add(mins(5)), t0.Add(mins(55)), mins(5))
	lines := f.lines()
	require.Equal(t, []string{"firing lab-new/silent@18:20"}, statuses(lines))
	l := lines[0]
	assert.Equal(t, t0.Add(mins(20)), l.Since, "its threshold: the token's creation plus silent_after")
	assert.Equal(t, Critical, l.Severity)
	assert.Contains(t, l.Summary, "lab-new has a host token but has never sent a request (expected since 2026-11-28 17:50Z)")
	assert.Contains(t, l.Summary, "cis490 token revoke --host lab-new")
	assert.Equal(t, "2026-11-28T17:50:00Z", evidence(t, l)["expected_since"])

	res = f.check(t0.Add(time.Hour))
	row := rowOf(t, res, "lab-new")
	assert.Equal(t, HostAlerting, row.Status)
	assert.True(t, row.LastSeen.IsZero())
	assert.Len(t, f.lines(), 1, "not again within repeat_interval")
}

// A token written before creation times were kept: the host is expected from the
// first check that found it in the roster, which the state remembers.
func TestRosterHostOfUnknownCreationCountsFromTheFirstCheck(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	f.token("lab-old", time.Time{})
	f.check(t0)
	f.every(t0.Add(mins(5)), t0.Add(mins(40)), mins(5))
	lines := f.lines()
	require.Equal(t, []string{"firing lab-old/silent@18:30"}, statuses(lines))
	assert.Equal(t, t0.Add(mins(30)), lines[0].Since)
	st, err := loadState(statePath(f.dir))
	require.NoError(t, err)
	assert.Equal(t, t0, st.Hosts["lab-old"].RosterSince)
}

// A roster host gone for good stays silent past the active window, repeated every
// gone_repeat_interval instead of repeat_interval, never expired; revoking its token
// retires its alert, once.
func TestRosterHostGoneStaysOpenUntilItsTokenIsRevoked(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	f.cfg.RepeatInterval = 6 * time.Hour
	f.token("lab-07", t0.Add(-72*time.Hour))
	quiet(f) // last request 17:30: silent from 18:00
	f.every(t0, t0.Add(72*time.Hour), time.Hour)
	want := []string{
		"firing lab-07/silent@18:00", "firing lab-07/silent@00:00", "firing lab-07/silent@06:00", "firing lab-07/silent@12:00",
		// 18:00 the next day: quiet for 24h30m, gone: the next repeat is a day after 12:00's.
		"firing lab-07/silent@12:00", "firing lab-07/silent@12:00",
	}
	lines := f.lines()
	require.Equal(t, want, statuses(lines))
	assertUniqueFiringKeys(t, lines)
	last := lines[len(lines)-1]
	assert.Equal(t, t0, last.Since, "the same alert, open since its threshold")
	assert.Equal(t, true, evidence(t, last)["gone"])
	assert.Contains(t, last.Summary, "has sent nothing for 2d18h (last request at 2026-11-28 17:30Z)")

	res := f.check(t0.Add(72 * time.Hour))
	row := rowOf(t, res, "lab-07")
	assert.Equal(t, HostAlerting, row.Status)
	assert.Equal(t, t0.Add(-mins(30)), row.LastSeen, "the state remembers when it was last seen")

	f.revoke("lab-07")
	at := t0.Add(72*time.Hour + mins(5))
	f.check(at)
	f.check(at.Add(mins(5)))
	f.check(at.Add(24 * time.Hour))
	lines = f.lines()
	require.Equal(t, append(want, "retired lab-07/silent@18:05"), statuses(lines), "closed once")
	ret := lines[len(lines)-1]
	assert.Equal(t, alerts.StatusRetired, ret.Status)
	assert.Contains(t, ret.Summary, "lab-07 has no host token any more")
	st, err := loadState(statePath(f.dir))
	require.NoError(t, err)
	assert.NotContains(t, st.Hosts, "lab-07")
}

// A host seen in the window whose token is revoked is no longer tracked: listed as
// not tracked, its alerts retired.
func TestRevokedHostStillInTheWindowIsNotTracked(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	f.token("lab-07", t0.Add(-72*time.Hour))
	quiet(f)
	f.check(t0)
	f.revoke("lab-07")
	res := f.check(t0.Add(mins(5)))
	assert.Equal(t, []string{"firing lab-07/silent@18:00", "retired lab-07/silent@18:05"}, statuses(f.lines()))
	assert.Empty(t, res.Hosts)
	assert.Equal(t, []string{"lab-07"}, res.Unproven)
}

// A roster host whose handshakes were refused stays tls-refused after those lines
// leave the window, until a request of its gets through; gone, its alerts repeat
// every gone_repeat_interval, not hourly.
func TestTLSRefusedHeldForAQuietRosterHost(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	f.token("lab-07", t0.Add(-72*time.Hour))
	f.heartbeats("lab-07", t0.Add(-2*time.Hour), t0.Add(-time.Hour), mins(5))
	f.handshake("lab-07", "expired", t0.Add(-mins(50)), "10.0.0.7:40000")
	f.check(t0)
	f.check(t0.Add(30 * time.Hour))        // every line of it has left the window
	res := f.check(t0.Add(31 * time.Hour)) // an hour later: no repeat
	assert.Contains(t, symptomsOf(rowOf(t, res, "lab-07")), TLSRefused)
	f.req("lab-07", "heartbeat", 204, t0.Add(31*time.Hour+mins(2)), commitOK)
	f.check(t0.Add(31*time.Hour + mins(5)))
	assert.Equal(t, []string{
		"firing lab-07/silent@18:00", "firing lab-07/tls-refused@18:00",
		"firing lab-07/silent@00:00", "firing lab-07/tls-refused@00:00",
		"resolved lab-07/silent@01:05", "resolved lab-07/tls-refused@01:05",
	}, statuses(f.lines()))
}

func symptomsOf(r Row) []string {
	var out []string
	for _, s := range r.Symptoms {
		out = append(out, s.Symptom)
	}
	return out
}

// A tokens file that cannot be read stops the check: an empty roster would retire
// every host at once.
func TestUnreadableTokensFileIsAnError(t *testing.T) {
	t.Parallel()
	for name, setup := range map[string]func(path string){
		"missing": func(string) {},
		"garbage": func(path string) { require.NoError(t, os.WriteFile(path, []byte("[[token]\nnot toml"), 0o600)) },
		"folder":  func(path string) { require.NoError(t, os.Mkdir(path, 0o700)) },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newFleet(t)
			quiet(f)
			f.tokensPath = filepath.Join(t.TempDir(), "tokens.toml")
			setup(f.tokensPath)
			_, err := Check(t.Context(), f.opts(t0))
			require.Error(t, err)
			assert.ErrorContains(t, err, "the roster")
			assert.ErrorContains(t, err, "serve.tokens_file")
			assert.NoFileExists(t, f.alertsPath)
		})
	}
}

package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/alerts"
	"github.com/cis490/cis490/internal/fleethealth"
)

// alertLines reads the receiver's alerts.jsonl; none yet is no line.
func (r *fleetReceiver) alertLines(t *testing.T) []alerts.Alert {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(r.data, "alerts.jsonl"))
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	var out []alerts.Alert
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		a, ok := alerts.Parse([]byte(l))
		require.True(t, ok, l)
		out = append(out, a)
	}
	return out
}

// A --now an hour ahead is a simulation: the real binary says so, shows what it would
// notify, and writes nothing (no alerts.jsonl line dated an hour ahead, no state)
// unless --record is given too.
func TestFleetCheckNowFarFromTheClockWritesNothingWithoutRecord(t *testing.T) {
	t.Parallel()
	r := startFleetReceiver(t, false)
	r.ships(t, "lab-gone", commitAllowed)
	r.reports(t, "lab-gone")

	sim := r.cis490(t, "fleet-health", "check", "--now", "+1h")
	require.Equal(t, 0, sim.Code, sim.Stderr)
	assert.Contains(t, sim.Stderr, "a simulation, so nothing is written or notified; add --record")
	assert.Regexp(t, `(?m)^lab-gone\s+1h00m ago \(host-health 204\)\s+alerting\s+silent since`, sim.Stdout)
	assert.Contains(t, sim.Stdout, "would notify (dry run):\n  firing   lab-gone/silent")
	assert.NoFileExists(t, filepath.Join(r.data, "alerts.jsonl"))
	assert.NoFileExists(t, filepath.Join(r.data, "fleet-health.json"))

	back := r.cis490(t, "fleet-health", "check", "--now", "-30m", "--json")
	require.Equal(t, 0, back.Code, back.Stderr)
	assert.Contains(t, back.Stderr, "behind the clock")
	assert.NoFileExists(t, filepath.Join(r.data, "alerts.jsonl"))

	rec := r.cis490(t, "fleet-health", "check", "--now", "+1h", "--record", "--json")
	require.Equal(t, 0, rec.Code, rec.Stderr)
	assert.NotContains(t, rec.Stderr, "simulation")
	var res fleethealth.Result
	require.NoError(t, json.Unmarshal([]byte(rec.Stdout), &res))
	assert.False(t, res.DryRun)
	lines := r.alertLines(t)
	require.Len(t, lines, 1)
	assert.Equal(t, "lab-gone", lines[0].Host)
	assert.Equal(t, fleethealth.Silent, lines[0].Symptom)
	assert.Equal(t, fleethealth.Critical, lines[0].Severity)
	assert.WithinDuration(t, time.Now().Add(time.Hour), lines[0].TS, time.Minute, "ts is the --now it was recorded as of")
	assert.FileExists(t, filepath.Join(r.data, "fleet-health.json"))

	dry := r.cis490(t, "fleet-health", "check", "--now", "+3h", "--record", "--dry-run")
	require.Equal(t, 0, dry.Code, dry.Stderr)
	assert.Len(t, r.alertLines(t), 1, "--dry-run writes nothing, --record or not")
}

// With a tokens file the roster is its host tokens: a host minted a token and never
// heard from fires silent once its threshold passes, and revoking the token retires
// the alert, once, all through the real binary's token and fleet-health commands.
func TestFleetRosterFromTheTokensFile(t *testing.T) {
	t.Parallel()
	r := startFleetReceiver(t, true)
	tok := r.cis490(t, "token", "new", "--host", "lab-new")
	require.Equal(t, 0, tok.Code, tok.Stderr)
	minted := time.Now()

	early := r.check(t, minted)
	require.Len(t, early.Hosts, 2, "the roster is lab-new alone (the admin is not a host), and the Pi has its row")
	assert.Equal(t, "lab-new", early.Hosts[0].Host)
	assert.Equal(t, fleethealth.HostInactive, early.Hosts[0].Status, "expected, not overdue yet")
	assert.Equal(t, "pi", early.Hosts[1].Host)
	assert.Equal(t, fleethealth.HostOK, early.Hosts[1].Status, "%+v", early.Hosts[1].Symptoms)
	assert.Empty(t, early.Notifications)

	due := minted.Add(silentAfter + 2*time.Second) // within 5 minutes of the clock: a real check
	res := r.check(t, due)
	require.Len(t, res.Notifications, 1)
	n := res.Notifications[0]
	assert.Equal(t, "firing lab-new/silent", n.Status+" "+n.Host+"/"+n.Symptom)
	assert.Contains(t, n.Summary, "has a host token but has never sent a request")
	assert.Empty(t, r.check(t, due.Add(time.Second)).Notifications, "once")

	rev := r.cis490(t, "token", "revoke", "--host", "lab-new")
	require.Equal(t, 0, rev.Code, rev.Stderr)
	res = r.check(t, due.Add(2*time.Second))
	require.Len(t, res.Hosts, 1)
	assert.Equal(t, "pi", res.Hosts[0].Host, "lab-new is no longer tracked")
	require.Len(t, res.Notifications, 1)
	assert.Equal(t, alerts.StatusRetired, res.Notifications[0].Status)
	assert.Empty(t, r.check(t, due.Add(3*time.Second)).Notifications)
	tail := r.cis490(t, "alerts", "tail", "--json")
	require.Equal(t, 0, tail.Code, tail.Stderr)
	assert.Equal(t, []string{"firing lab-new/silent", "retired lab-new/silent"}, alertKeys(t, tail.Stdout))
}

// A silence made with the real `alerts silence` holds lab-07's silent alert back while
// it lasts (the row says silenced, and until when), and the alert fires at the first
// check after it ends.
func TestFleetCheckHonoursASilence(t *testing.T) {
	t.Parallel()
	r := startFleetReceiver(t, false)
	r.ships(t, "lab-07", commitAllowed)
	r.reports(t, "lab-07")
	sil := r.cis490(t, "alerts", "silence", "--host", "lab-07", "--for", "1m", "--reason", "moving racks")
	require.Equal(t, 0, sil.Code, sil.Stderr)
	id := strings.TrimSpace(sil.Stdout)

	res := r.check(t, time.Now().Add(silentAfter+time.Second))
	row := res.Hosts[0]
	require.Equal(t, "lab-07", row.Host)
	assert.Equal(t, fleethealth.HostSilenced, row.Status)
	require.NotNil(t, row.Silence)
	assert.Equal(t, id, row.Silence.ID)
	assert.Equal(t, "moving racks", row.Silence.Reason)
	require.Len(t, row.Symptoms, 1)
	assert.Equal(t, fleethealth.Silent, row.Symptoms[0].Symptom, "evaluated and shown")
	assert.Empty(t, res.Notifications)
	assert.Empty(t, r.alertLines(t), "nothing written while silenced")

	res = r.check(t, row.Silence.Until.Add(time.Second)) // a minute ahead: a real check
	require.Len(t, res.Notifications, 1)
	assert.Equal(t, "firing lab-07/silent", res.Notifications[0].Status+" lab-07/"+res.Notifications[0].Symptom)
	assert.Len(t, r.alertLines(t), 1)
}

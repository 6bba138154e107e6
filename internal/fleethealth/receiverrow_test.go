package fleethealth

import (
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/config"
	"github.com/cis490/cis490/internal/protocol"
	"github.com/cis490/cis490/internal/testutil"
)

// pi is a receiver that answers /healthz with a fresh gate and has free bytes left in
// its data folder, against the default 512 MiB min_free_bytes.
func pi(dir string, free uint64) *ReceiverFacts {
	return &ReceiverFacts{Host: "pi", DataDir: dir, FreeBytes: free, MinFreeBytes: 512 << 20,
		Health: &protocol.Health{Status: protocol.HealthOK}}
}

func (f *fleet) checkWith(now time.Time, rf *ReceiverFacts) *Result {
	f.t.Helper()
	opts := f.opts(now)
	opts.Receiver = rf
	res, err := Check(f.t.Context(), opts)
	require.NoError(f.t, err)
	return res
}

// The Pi has a row of its own though it sends no request: its symptoms, and its own
// doctor report's; never silent.
func TestReceiverRowWithoutRequests(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	healthy(f, t0.Add(3*time.Hour))
	f.report("pi", "warn", t0.Add(-time.Hour), "server-cert")
	res := f.checkWith(t0, pi(f.dir, 100<<20))
	row := rowOf(t, res, "pi")
	assert.Equal(t, HostAlerting, row.Status)
	assert.Equal(t, []string{ReportWarning, DiskLow}, symptomsOf(row))
	assert.Equal(t, "warn", row.Report.Status)
	lines := f.lines()
	require.Equal(t, []string{"firing pi/report-warning@18:00", "firing pi/disk-low@18:00"}, statuses(lines))
	assert.Equal(t, Critical, lines[1].Severity)
	assert.Contains(t, lines[1].Summary, "pi's disk is low")

	// Space freed: disk-low resolves; hours without a request never make it silent.
	f.report("pi", "ok", t0.Add(time.Hour))
	f.checkWith(t0.Add(2*time.Hour), pi(f.dir, 10<<30))
	res = f.checkWith(t0.Add(3*time.Hour), pi(f.dir, 10<<30))
	assert.Equal(t, HostOK, rowOf(t, res, "pi").Status)
	assert.Equal(t, []string{
		"firing pi/report-warning@18:00", "firing pi/disk-low@18:00",
		"resolved pi/report-warning@20:00", "resolved pi/disk-low@20:00",
	}, statuses(f.lines()))
}

// A 507 anywhere in the fleet within fatal_window is disk-low on the Pi's row, dated
// by the 507; one older than that is not.
func TestA507IsDiskLowOnThePisRow(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		at    time.Time
		fires bool
	}{
		{"within fatal_window", t0.Add(-mins(10)), true},
		{"older", t0.Add(-mins(61)), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFleet(t)
			healthy(f, t0)
			f.req("lab-ok", "episodes", 507, tc.at, commitOK)
			res := f.checkWith(t0, pi(f.dir, 10<<30))
			row := rowOf(t, res, "pi")
			if !tc.fires {
				assert.Empty(t, row.Symptoms)
				return
			}
			require.Equal(t, []string{DiskLow}, symptomsOf(row))
			assert.Equal(t, tc.at, row.Symptoms[0].Since)
			assert.Equal(t, HostOK, rowOf(t, res, "lab-ok").Status, "the 507 is the receiver's trouble, not the host's")
		})
	}
}

// A check that does not gather the receiver's facts (not on the Pi) knows nothing of
// its row: the open alerts stay as they are, neither resolved nor expired.
func TestReceiverRowKeptWhenNotGathered(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	f.checkWith(t0, &ReceiverFacts{Host: "pi", DataDir: f.dir, HealthErr: os.ErrDeadlineExceeded})
	f.check(t0.Add(mins(5)))
	f.check(t0.Add(25 * time.Hour))
	assert.Equal(t, []string{"firing pi/receiver-down@18:00"}, statuses(f.lines()))
	st, err := loadState(statePath(f.dir))
	require.NoError(t, err)
	require.Contains(t, st.Hosts, "pi")
	assert.NotNil(t, st.Hosts["pi"].Alerts[ReceiverDown])
}

// The whole way from a real full disk: a data folder on a small tmpfs, filled, is
// disk-low on the Pi's row through GatherReceiverFacts.
func TestReceiverRowFromAFullTmpfs(t *testing.T) {
	t.Parallel()
	f := newFleetIn(t, testutil.Tmpfs(t, 8<<20))
	healthy(f, t0)
	testutil.FillDisk(t, f.dir)
	cfg := config.Default()
	cfg.Host, cfg.Serve.DataDir, cfg.Serve.MinFreeBytes = "pi", f.dir, config.MiB
	cfg.Serve.Listen = "127.0.0.1:1" // nothing answers there: receiver-down too
	rf := GatherReceiverFacts(t.Context(), cfg)
	require.NoError(t, rf.FreeErr)
	opts := f.opts(t0)
	opts.Receiver, opts.DryRun = rf, true // a full disk takes no alerts.jsonl line
	res, err := Check(t.Context(), opts)
	require.NoError(t, err)
	row := rowOf(t, res, "pi")
	assert.Equal(t, []string{DiskLow, ReceiverDown}, symptomsOf(row))
	assert.Equal(t, []string{"firing pi/disk-low@18:00", "firing pi/receiver-down@18:00"}, statuses(res.Notifications))
}

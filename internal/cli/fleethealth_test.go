package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/config"
	"github.com/cis490/cis490/internal/fleethealth"
	"github.com/cis490/cis490/internal/index"
	"github.com/cis490/cis490/internal/testutil"
)

func fleetData(t *testing.T) config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.Serve.DataDir = t.TempDir()
	cfg.FleetHealth.Syslog = false
	w, err := index.OpenWriter(filepath.Join(cfg.Serve.DataDir, "index"))
	require.NoError(t, err)
	for at := alertT0.Add(-2 * time.Hour); !at.After(alertT0); at = at.Add(5 * time.Minute) {
		require.NoError(t, w.Append(index.Entry{TS: at, Host: "lab-01", Route: "heartbeat", Method: "POST", Status: 204, Commit: "1234567", Stamped: true}))
		if at.Before(alertT0.Add(-time.Hour)) {
			require.NoError(t, w.Append(index.Entry{TS: at, Host: "lab-02", Route: "heartbeat", Method: "POST", Status: 204, Commit: "1234567", Stamped: true}))
		}
	}
	require.NoError(t, w.Close())
	return cfg
}

func TestFleetCheckTable(t *testing.T) {
	t.Parallel()
	cfg := fleetData(t)
	out := &testutil.SyncBuffer{}
	opts := &fleetCheckOptions{streams: Streams{Out: out, Err: out}, now: "2026-11-28T18:00:00Z", clock: atAlertT0, gather: noReceiver}
	require.NoError(t, runFleetCheck(t.Context(), opts, cfg, zerolog.Nop()))
	lines := strings.Split(out.String(), "\n")
	assert.Regexp(t, `^HOST\s+LAST SEEN\s+STATUS\s+SYMPTOM\s+LAST EPISODE\s+COMMIT\s+DOCTOR\s+CERT\s+ALERTS$`, lines[0])
	assert.Regexp(t, `^lab-02\s+1h05m ago \(heartbeat 204\)\s+alerting\s+silent since 2026-11-28 17:25Z\s+-\s+1234567 allowed\s+-\s+-\s+1$`, lines[1],
		"worst first; its alert is open once the check has notified it")
	assert.Regexp(t, `^lab-01\s+0s ago \(heartbeat 204\)\s+ok\s+-\s+-\s+1234567 allowed\s+-\s+-\s+-$`, lines[2])
	assert.Equal(t, "2 hosts: 1 ok, 1 alerting, 0 silenced", lines[3])
	assert.Contains(t, out.String(), "notified:\n  firing   lab-02/silent: lab-02 has sent nothing for 1h05m")
	assert.FileExists(t, cfg.AlertsPath())
}

func TestFleetCheckDryRunJSON(t *testing.T) {
	t.Parallel()
	cfg := fleetData(t)
	out := &testutil.SyncBuffer{}
	opts := &fleetCheckOptions{streams: Streams{Out: out, Err: out}, now: "2026-11-28T18:00:00Z", dryRun: true, json: true, gather: noReceiver}
	require.NoError(t, runFleetCheck(t.Context(), opts, cfg, zerolog.Nop()))
	var res fleethealth.Result
	require.NoError(t, json.Unmarshal([]byte(out.String()), &res))
	assert.True(t, res.DryRun)
	require.Len(t, res.Hosts, 2)
	assert.Equal(t, []string{"lab-02", "lab-01"}, []string{res.Hosts[0].Host, res.Hosts[1].Host}, "worst first")
	assert.Equal(t, fleethealth.HostAlerting, res.Hosts[0].Status)
	assert.Equal(t, fleethealth.Summary{Hosts: 2, OK: 1, Alerting: 1, Critical: 1}, res.Summary)
	require.Len(t, res.Notifications, 1)
	assert.Equal(t, "lab-02/silent/2026-11-28T18", res.Notifications[0].DedupKey)
	assert.NoFileExists(t, cfg.AlertsPath(), "a dry run writes nothing")
	_, err := os.Stat(filepath.Join(cfg.Serve.DataDir, "fleet-health.json"))
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func atAlertT0() time.Time { return alertT0 }

// noReceiver leaves the Pi's own row out: these tests are about the lab hosts.
func noReceiver(context.Context, config.Config) *fleethealth.ReceiverFacts { return nil }

// A --now far from the clock is a simulation: it writes and notifies nothing unless
// --record says otherwise, and says so on standard error. Relative times read as
// alerts tail --since reads them.
func TestFleetCheckNowFarFromTheClock(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		now            string
		record, dryRun bool
		writes         bool
		stderr         string
	}{
		{now: "+1h", stderr: "--now is 1h0m0s ahead of the clock: a simulation, so nothing is written or notified; add --record to write and notify as of 2026-11-28T19:10:00Z"},
		{now: "2026-11-28T17:10:00Z", stderr: "--now is 1h0m0s behind the clock"},
		{now: "+1h", record: true, writes: true},
		{now: "-30m", record: true, writes: true},
		{now: "+4m", writes: true},
		{now: "-5m", writes: true},
		{now: "+5m1s", stderr: "a simulation"},
		{now: "+1h", record: true, dryRun: true},
		{now: "", dryRun: true},
	} {
		t.Run(fmt.Sprintf("%s record=%v dry=%v", tc.now, tc.record, tc.dryRun), func(t *testing.T) {
			t.Parallel()
			cfg := fleetData(t)
			var out, errb testutil.SyncBuffer
			opts := &fleetCheckOptions{streams: Streams{Out: &out, Err: &errb}, now: tc.now, record: tc.record, dryRun: tc.dryRun,
				clock: func() time.Time { return alertT0.Add(10 * time.Minute) }, gather: noReceiver}
			if tc.now == "" {
				opts.clock = nil
			}
			if tc.stderr != "" || !tc.writes {
				opts.json = true
			}
			require.NoError(t, runFleetCheck(t.Context(), opts, cfg, zerolog.Nop()))
			if tc.stderr != "" {
				assert.Contains(t, errb.String(), tc.stderr)
			} else {
				assert.Empty(t, errb.String())
			}
			_, err := os.Stat(filepath.Join(cfg.Serve.DataDir, "fleet-health.json"))
			if tc.writes {
				assert.NoError(t, err, "the state is saved")
				assert.FileExists(t, cfg.AlertsPath())
				return
			}
			assert.ErrorIs(t, err, os.ErrNotExist, "no state saved")
			assert.NoFileExists(t, cfg.AlertsPath())
			if tc.now == "+1h" {
				var res fleethealth.Result
				require.NoError(t, json.Unmarshal([]byte(out.String()), &res))
				assert.True(t, res.DryRun)
				assert.NotEmpty(t, res.Notifications, "it still says what it would notify")
			}
		})
	}
}

// On the Pi the check has a row for the receiver itself, from the real probe: here
// nothing answers on serve.listen, so it is receiver-down.
func TestFleetCheckHasTheReceiversOwnRow(t *testing.T) {
	t.Parallel()
	cfg := fleetData(t)
	cfg.Host = "pi"
	cfg.Serve.Listen = "127.0.0.1:1"
	var out, errb testutil.SyncBuffer
	opts := &fleetCheckOptions{streams: Streams{Out: &out, Err: &errb}, dryRun: true, json: true,
		now: "2026-11-28T18:00:00Z", clock: atAlertT0}
	require.NoError(t, runFleetCheck(t.Context(), opts, cfg, zerolog.Nop()))
	var res fleethealth.Result
	require.NoError(t, json.Unmarshal([]byte(out.String()), &res))
	require.Len(t, res.Hosts, 3)
	row := res.Hosts[1]
	assert.Equal(t, "pi", row.Host, "critical like lab-02's silent, after it by name")
	require.Len(t, row.Symptoms, 1)
	assert.Equal(t, fleethealth.ReceiverDown, row.Symptoms[0].Symptom)
}

func TestFleetCheckBadNowIsAUsageError(t *testing.T) {
	t.Parallel()
	cfg := fleetData(t)
	for _, now := range []string{"yesterday", "+", "1h+", "2026-11-28 18:00"} {
		err := runFleetCheck(t.Context(), &fleetCheckOptions{streams: Streams{Out: &testutil.SyncBuffer{}}, now: now}, cfg, zerolog.Nop())
		var ee *exitError
		require.ErrorAs(t, err, &ee, now)
		assert.Equal(t, ExitUsage, ee.code)
		assert.ErrorContains(t, err, "--now ")
		assert.ErrorContains(t, err, "+1h ahead")
	}
}

func TestFleetCheckCannotRunIsExit1(t *testing.T) {
	t.Parallel()
	cfg := fleetData(t)
	require.NoError(t, os.WriteFile(filepath.Join(cfg.Serve.DataDir, "fleet-health.json"), []byte("{"), 0o640))
	err := runFleetCheck(t.Context(), &fleetCheckOptions{streams: Streams{Out: &testutil.SyncBuffer{}}}, cfg, zerolog.Nop())
	require.Error(t, err)
	var ee *exitError
	assert.False(t, errors.As(err, &ee), "not a usage error: exit 1")
	assert.Contains(t, err.Error(), "damaged")
}

// The flags reach the configuration through the command line, as a user types them.
func TestFleetCheckAndAlertsTailFlags(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("CIS490_CONFIG", "")
	cfg := fleetData(t)
	var out, errb testutil.SyncBuffer
	code := Main(t.Context(), []string{"fleet-health", "check", "--data-dir", cfg.Serve.DataDir, "--now", "2026-11-28T18:00:00Z", "--record"},
		Streams{In: strings.NewReader(""), Out: &out, Err: &errb})
	require.Equal(t, ExitOK, code, errb.String())
	assert.Contains(t, out.String(), "lab-02/silent")

	out = testutil.SyncBuffer{}
	code = Main(t.Context(), []string{"alerts", "tail", "--file", cfg.AlertsPath(), "--json"}, Streams{Out: &out, Err: &errb})
	require.Equal(t, ExitOK, code, errb.String())
	assert.Contains(t, out.String(), `"dedup_key":"lab-02/silent/2026-11-28T18"`)

	code = Main(t.Context(), []string{"fleet-health", "check", "--now", "tomorrow"}, Streams{Out: &out, Err: &errb})
	assert.Equal(t, ExitUsage, code)
	code = Main(t.Context(), []string{"alerts", "tail", "--color", "rainbow"}, Streams{Out: &out, Err: &errb})
	assert.Equal(t, ExitUsage, code)
}

// A data folder without index/ is not the receiver's (a wrong --config, or a check
// run on a lab host): say so, exit 2, and create nothing there.
func TestFleetCheckRefusesAFolderWithoutIndex(t *testing.T) {
	t.Parallel()
	cfg := fleetData(t)
	cfg.Serve.DataDir = filepath.Join(t.TempDir(), "not-the-receiver")
	var out testutil.SyncBuffer
	err := runFleetCheck(t.Context(), &fleetCheckOptions{streams: Streams{Out: &out}}, cfg, zerolog.Nop())
	require.Error(t, err)
	var ee *exitError
	require.True(t, errors.As(err, &ee), "a configuration error: exit 2")
	assert.Equal(t, ExitUsage, ee.code)
	assert.Contains(t, err.Error(), "no request index")
	assert.Contains(t, err.Error(), "serve.data_dir")
	assert.NoDirExists(t, cfg.Serve.DataDir, "nothing created")
	assert.Empty(t, out.String())
}

func TestFleetTableNamesUntrackedHosts(t *testing.T) {
	t.Parallel()
	cfg := config.Default()
	now := time.Date(2026, 11, 28, 18, 0, 0, 0, time.UTC)
	res := &fleethealth.Result{Now: now, WindowFrom: now.Add(-24 * time.Hour), Summary: fleethealth.Summary{NotTracked: 28},
		Unproven: []string{"lab-new", "lab-typo"}, UnprovenCount: 25,
		RefusedHandshakes: []fleethealth.RefusedHandshake{{Remote: "10.0.0.9", Reason: "no_certificate", Count: 2,
			Last: time.Date(2026, 11, 28, 17, 40, 0, 0, time.UTC)}}, RefusedHandshakesCount: 3}
	var out testutil.SyncBuffer
	require.NoError(t, writeCheck(&out, res, cfg))
	assert.Contains(t, out.String(), "no host to show: no host sent a request in the 24h00m before 2026-11-28 18:00Z, and none has a host token (index in ")
	assert.Contains(t, out.String(), "\n0 hosts: 0 ok, 0 alerting, 0 silenced; 28 not tracked\n")
	assert.Contains(t, out.String(), "not tracked: lab-new, lab-typo and 23 more sent only requests or handshakes refused")
	assert.Contains(t, out.String(), "refused TLS handshakes naming no host: 10.0.0.9 (no_certificate ×2, last 2026-11-28 17:40Z) and 2 more\n")
}

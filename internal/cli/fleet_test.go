package cli

import (
	"context"
	"encoding/json"
	"io"
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

func fleetCmdOptions(out, errb io.Writer) *fleetOptions {
	return &fleetOptions{streams: Streams{Out: out, Err: errb}, interval: 10 * time.Second,
		isTerminal: func(io.Writer) bool { return false }, gather: noReceiver, now: atAlertT0}
}

// assertNothingWritten: cis490 fleet only reads the data folder.
func assertNothingWritten(t *testing.T, cfg config.Config) {
	t.Helper()
	assert.NoFileExists(t, cfg.AlertsPath())
	assert.NoFileExists(t, filepath.Join(cfg.Serve.DataDir, "fleet-health.json"))
	assert.NoFileExists(t, filepath.Join(cfg.Serve.DataDir, "fleet-health.lock"))
}

func TestFleetLocal(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		json  bool
		check func(t *testing.T, out string)
	}{
		{"table", false, func(t *testing.T, out string) {
			lines := strings.Split(out, "\n")
			require.Len(t, lines, 5, out)
			assert.Regexp(t, `^HOST\s+LAST SEEN\s+STATUS\s+SYMPTOM\s+LAST EPISODE\s+COMMIT\s+DOCTOR\s+CERT\s+ALERTS$`, lines[0])
			assert.Regexp(t, `^lab-02\s+1h05m ago \(heartbeat 204\)\s+alerting\s+silent since 2026-11-28 17:25Z\s+-\s+1234567 allowed\s+-\s+-\s+-$`, lines[1],
				"no check ran: no alert is open")
			assert.Regexp(t, `^lab-01\s+0s ago \(heartbeat 204\)\s+ok\s+-\s+-\s+1234567 allowed\s+-\s+-\s+-$`, lines[2])
			assert.Equal(t, "2 hosts: 1 ok, 1 alerting, 0 silenced", lines[3])
			assert.NotContains(t, out, "notif", "fleet notifies nothing, and says nothing of notifying")
		}},
		{"json", true, func(t *testing.T, out string) {
			var v fleethealth.Fleet
			require.NoError(t, json.Unmarshal([]byte(out), &v), out)
			assert.Equal(t, alertT0, v.GeneratedAt)
			assert.Equal(t, alertT0.Add(-24*time.Hour), v.WindowFrom)
			assert.Equal(t, fleethealth.Summary{Hosts: 2, OK: 1, Alerting: 1, Critical: 1}, v.Summary)
			require.Len(t, v.Hosts, 2)
			assert.Equal(t, "lab-02", v.Hosts[0].Host)
			assert.Equal(t, fleethealth.Silent, v.Hosts[0].WorstSymptom)
			var raw map[string]any
			require.NoError(t, json.Unmarshal([]byte(out), &raw))
			assert.NotContains(t, raw, "notifications", "the document of GET /v1/fleet, not a check's result")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := fleetData(t)
			var out, errb testutil.SyncBuffer
			opts := fleetCmdOptions(&out, &errb)
			opts.json = tc.json
			require.NoError(t, runFleet(t.Context(), opts, cfg, zerolog.Nop(), false))
			tc.check(t, out.String())
			assert.Empty(t, errb.String())
			assertNothingWritten(t, cfg)
		})
	}
}

// The Pi's own row comes from the receiver beside the command, as fleet-health check
// finds it: here nothing answers on serve.listen.
func TestFleetLocalHasTheReceiversOwnRow(t *testing.T) {
	t.Parallel()
	cfg := fleetData(t)
	cfg.Host = "pi"
	cfg.Serve.Listen = "127.0.0.1:1"
	var out, errb testutil.SyncBuffer
	opts := fleetCmdOptions(&out, &errb)
	opts.gather = nil
	require.NoError(t, runFleet(t.Context(), opts, cfg, zerolog.Nop(), false))
	assert.Regexp(t, `(?m)^pi\s+-\s+alerting\s+receiver-down since 2026-11-28 18:00Z\s`, out.String())
	assertNothingWritten(t, cfg)
}

// --watch shows the fleet at once, then again at every tick, with what changed in
// between, until interrupted; off a terminal the tables follow each other a blank
// line apart, on one each redraws the screen. A read that fails while watching is
// said on standard error and tried again at the next tick.
func TestFleetWatch(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		terminal bool
		json     bool
	}{
		{"pipe", false, false},
		{"terminal", true, false},
		{"json lines", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := fleetData(t)
			var out, errb testutil.SyncBuffer
			opts := fleetCmdOptions(&out, &errb)
			opts.watch, opts.json = true, tc.json
			opts.isTerminal = func(io.Writer) bool { return tc.terminal }
			ctx, cancel := context.WithCancel(t.Context())
			// Each read asks the clock first: the test holds it there until the data
			// folder is as the read must find it. A tick is taken only once the last
			// table is shown.
			clock := make(chan time.Time)
			opts.now = func() time.Time {
				select {
				case now := <-clock:
					return now
				case <-ctx.Done():
					return alertT0
				}
			}
			tick := make(chan time.Time)
			var asked time.Duration
			opts.ticks = func(d time.Duration) (<-chan time.Time, func()) { asked = d; return tick, func() {} }
			done := make(chan error, 1)
			go func() { done <- runFleet(ctx, opts, cfg, zerolog.Nop(), false) }()

			dir := filepath.Join(cfg.Serve.DataDir, "index")
			clock <- alertT0 // the first table
			tick <- alertT0
			require.NoError(t, os.Rename(dir, dir+".away"))
			clock <- alertT0 // this read fails: said, and the watch goes on
			tick <- alertT0
			require.NoError(t, os.Rename(dir+".away", dir))
			w, err := index.OpenWriter(dir)
			require.NoError(t, err)
			require.NoError(t, w.Append(indexEntry("lab-03", alertT0.Add(-time.Minute))))
			require.NoError(t, w.Close())
			clock <- alertT0 // shows lab-03
			tick <- alertT0  // taken once it is shown; the next read waits for the clock
			cancel()
			require.NoError(t, <-done, "interrupted is the normal end of --watch")
			assert.Equal(t, 10*time.Second, asked, "the --interval")

			assert.Equal(t, 1, strings.Count(errb.String(), "cis490 fleet: "), errb.String())
			assert.Contains(t, errb.String(), "no request index in this data folder")
			assert.Contains(t, errb.String(), "trying again in 10s")
			got := out.String() // two tables: the read that failed showed none
			switch {
			case tc.json:
				lines := strings.Split(strings.TrimSpace(got), "\n")
				require.Len(t, lines, 2, got)
				var first, last fleethealth.Fleet
				require.NoError(t, json.Unmarshal([]byte(lines[0]), &first))
				require.NoError(t, json.Unmarshal([]byte(lines[1]), &last))
				assert.Equal(t, 2, first.Summary.Hosts)
				assert.Equal(t, 3, last.Summary.Hosts)
			case tc.terminal:
				assert.Equal(t, 2, strings.Count(got, "\x1b[H\x1b[2J"), "the screen is redrawn for each")
				assert.True(t, strings.HasPrefix(got, "\x1b[H\x1b[2JHOST"))
				assert.NotContains(t, got, "\n\n")
				assert.True(t, strings.HasSuffix(got, "3 hosts: 2 ok, 1 alerting, 0 silenced\n"))
			default:
				tables := strings.Split(got, "\n\n")
				require.Len(t, tables, 2, got)
				assert.Contains(t, tables[0], "2 hosts: 1 ok, 1 alerting, 0 silenced")
				assert.Regexp(t, `(?m)^lab-03\s+1m ago \(heartbeat 204\)\s+ok\s`, tables[1])
				assert.Contains(t, tables[1], "3 hosts: 2 ok, 1 alerting, 0 silenced")
				assert.NotContains(t, got, "\x1b[")
			}
			assertNothingWritten(t, cfg)
		})
	}
}

func indexEntry(host string, at time.Time) index.Entry {
	return index.Entry{TS: at, Host: host, Route: "heartbeat", Method: "POST", Status: 204, Commit: "1234567", Stamped: true}
}

func TestFleetUsage(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("CIS490_CONFIG", "")
	cfg := fleetData(t)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"fleet", "--interval", "5s"}, ExitUsage, "--interval goes with --watch"},
		{[]string{"fleet", "--watch", "--interval", "10ms"}, ExitUsage, "--interval 10ms: at least 1s"},
		{[]string{"fleet", "--watch", "--interval", "soon"}, ExitUsage, "invalid argument"},
		{[]string{"fleet", "extra"}, ExitUsage, "unknown command"},
		{[]string{"fleet", "--data-dir", filepath.Join(t.TempDir(), "elsewhere")}, ExitUsage, "no request index in this data folder"},
		{[]string{"fleet", "--data-dir", cfg.Serve.DataDir, "--json"}, ExitOK, ""},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errb testutil.SyncBuffer
			code := Main(t.Context(), tc.args, Streams{In: strings.NewReader(""), Out: &out, Err: &errb})
			assert.Equal(t, tc.code, code, errb.String())
			assert.Contains(t, errb.String(), tc.want)
		})
	}
}

package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/alerts"
	"github.com/cis490/cis490/internal/config"
	"github.com/cis490/cis490/internal/testutil"
)

var alertT0 = time.Date(2026, 11, 28, 18, 0, 0, 0, time.UTC)

func testAlert(n int, host, symptom, status string) alerts.Alert {
	at := alertT0.Add(time.Duration(n) * time.Minute)
	return alerts.Alert{TS: at, Host: host, Symptom: symptom, Status: status, DedupKey: alerts.DedupKey(host, symptom, at),
		Since: at.Add(-time.Minute), Summary: fmt.Sprintf("%s summary %d", host, n), Evidence: json.RawMessage(`{}`)}
}

type tailRun struct {
	path       string
	out, err   *testutil.SyncBuffer
	opts       *alertsTailOptions
	cfg        config.Config
	terminal   bool
	noColorEnv string
}

func newTailRun(t *testing.T) *tailRun {
	t.Helper()
	r := &tailRun{path: filepath.Join(t.TempDir(), "alerts.jsonl"), out: &testutil.SyncBuffer{}, err: &testutil.SyncBuffer{}}
	r.cfg = config.Default()
	r.cfg.FleetHealth.AlertsFile = r.path
	r.opts = &alertsTailOptions{streams: Streams{Out: r.out, Err: r.err}, n: 10, color: "auto", poll: 20 * time.Millisecond,
		isTerminal: func(io.Writer) bool { return r.terminal }, getenv: func(k string) string {
			if k == "NO_COLOR" {
				return r.noColorEnv
			}
			return ""
		}}
	return r
}

func (r *tailRun) run(t *testing.T) error {
	t.Helper()
	return runAlertsTail(t.Context(), r.opts, r.cfg, zerolog.Nop())
}

func TestAlertsTailLastLinesAndFilters(t *testing.T) {
	t.Parallel()
	r := newTailRun(t)
	var as []alerts.Alert
	for i := range 15 {
		as = append(as, testAlert(i, fmt.Sprintf("lab-%02d", i%3), "silent", alerts.StatusFiring))
	}
	as = append(as, testAlert(20, "lab-01", "unstamped", alerts.StatusResolved))
	require.NoError(t, alerts.Append(r.path, as...))

	require.NoError(t, r.run(t))
	lines := strings.Split(strings.TrimSpace(r.out.String()), "\n")
	require.Len(t, lines, 10, "the last 10 by default")
	assert.Equal(t, "2026-11-28T18:20:00Z  resolved  lab-01/unstamped  lab-01 summary 20 (since 2026-11-28 18:19Z)", lines[9])
	assert.NotContains(t, r.out.String(), "\x1b[", "no colour off a terminal")

	for _, tc := range []struct {
		set  func(o *alertsTailOptions)
		want int
	}{
		{func(o *alertsTailOptions) { o.n = 3 }, 3},
		{func(o *alertsTailOptions) { o.n = 0 }, 0},
		{func(o *alertsTailOptions) { o.n, o.filter.Host = 100, "LAB-01" }, 6},
		{func(o *alertsTailOptions) { o.filter.Symptom = "unstamped" }, 1},
		{func(o *alertsTailOptions) { o.filter.Status = "firing"; o.n = 100 }, 15},
		{func(o *alertsTailOptions) { o.since = "2026-11-28T18:12:00Z" }, 4},
	} {
		r2 := newTailRun(t)
		r2.path, r2.cfg.FleetHealth.AlertsFile = r.path, r.path
		tc.set(r2.opts)
		require.NoError(t, r2.run(t))
		assert.Equal(t, tc.want, strings.Count(r2.out.String(), "\n"), "%+v %s", r2.opts.filter, r2.opts.since)
	}
}

func TestAlertsTailJSONIsTheRawLines(t *testing.T) {
	t.Parallel()
	r := newTailRun(t)
	require.NoError(t, alerts.Append(r.path, testAlert(1, "lab-01", "silent", "firing"), testAlert(2, "lab-02", "silent", "firing")))
	r.opts.json = true
	r.opts.color = "always"
	require.NoError(t, r.run(t))
	raw, err := os.ReadFile(r.path)
	require.NoError(t, err)
	assert.Equal(t, string(raw), r.out.String())
}

func TestAlertsTailColour(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		color    string
		terminal bool
		noColor  string
		want     bool
	}{
		{"auto on a terminal", "auto", true, "", true},
		{"auto in a pipe", "auto", false, "", false},
		{"always in a pipe", "always", false, "", true},
		{"never on a terminal", "never", true, "", false},
		{"NO_COLOR on a terminal", "auto", true, "1", false},
		{"NO_COLOR beats always", "always", true, "yes", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newTailRun(t)
			require.NoError(t, alerts.Append(r.path, testAlert(1, "lab-01", "silent", "firing"), testAlert(2, "lab-01", "silent", "resolved")))
			r.opts.color, r.terminal, r.noColorEnv = tc.color, tc.terminal, tc.noColor
			require.NoError(t, r.run(t))
			assert.Equal(t, tc.want, strings.Contains(r.out.String(), "\x1b[1;31mfiring  \x1b[0m"), r.out.String())
			assert.Equal(t, tc.want, strings.Contains(r.out.String(), "\x1b[32mresolved\x1b[0m"), r.out.String())
		})
	}
}

func TestAlertsTailUsageErrors(t *testing.T) {
	t.Parallel()
	for _, set := range []func(o *alertsTailOptions){
		func(o *alertsTailOptions) { o.color = "sometimes" },
		func(o *alertsTailOptions) { o.filter.Status = "burning" },
		func(o *alertsTailOptions) { o.filter.Symptom = "sillent" },
		func(o *alertsTailOptions) { o.since = "a while" },
		func(o *alertsTailOptions) { o.n = -1 },
	} {
		r := newTailRun(t)
		set(r.opts)
		err := r.run(t)
		var ee *exitError
		require.ErrorAs(t, err, &ee)
		assert.Equal(t, ExitUsage, ee.code, err.Error())
	}
}

func TestAlertsTailMissingFile(t *testing.T) {
	t.Parallel()
	r := newTailRun(t)
	require.NoError(t, r.run(t))
	assert.Empty(t, r.out.String())
	assert.Contains(t, r.err.String(), "no alerts yet")
}

func TestAlertsTailFollowAcrossRotationAndTruncation(t *testing.T) {
	t.Parallel()
	r := newTailRun(t)
	require.NoError(t, alerts.Append(r.path, testAlert(1, "lab-01", "silent", "firing")))
	r.opts.follow, r.opts.n, r.opts.filter.Status = true, 1, "firing"
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- runAlertsTail(ctx, r.opts, r.cfg, zerolog.Nop()) }()
	count := func(n int) func() bool {
		return func() bool { return strings.Count(r.out.String(), "\n") == n }
	}
	require.Eventually(t, count(1), 5*time.Second, 10*time.Millisecond)
	require.NoError(t, alerts.Append(r.path, testAlert(2, "lab-02", "silent", "firing"), testAlert(3, "lab-03", "silent", "resolved")))
	require.Eventually(t, count(2), 5*time.Second, 10*time.Millisecond)
	require.NoError(t, os.Rename(r.path, r.path+".1"))
	require.NoError(t, alerts.Append(r.path, testAlert(4, "lab-04", "silent", "firing")))
	require.Eventually(t, count(3), 5*time.Second, 10*time.Millisecond)
	require.NoError(t, os.Truncate(r.path, 0))
	require.NoError(t, alerts.Append(r.path, testAlert(5, "lab-05", "silent", "firing")))
	require.Eventually(t, count(4), 5*time.Second, 10*time.Millisecond)
	cancel()
	require.NoError(t, <-done, "interrupting -f is a normal end")
	var hosts []string
	for _, l := range strings.Split(strings.TrimSpace(r.out.String()), "\n") {
		hosts = append(hosts, strings.Fields(l)[2])
	}
	assert.Equal(t, []string{"lab-01/silent", "lab-02/silent", "lab-04/silent", "lab-05/silent"}, hosts)
}

package fleethealth

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/alerts"
)

// quiet makes lab-07 go silent at 17:30 (its last heartbeat): silent since 18:00.
func quiet(f *fleet) {
	f.heartbeats("lab-07", t0.Add(-3*time.Hour), t0.Add(-mins(30)), mins(5))
	f.report("lab-07", "ok", t0.Add(-3*time.Hour))
}

func TestTwelveRunsFireOnceAndAnHourLaterRepeats(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	quiet(f)
	f.every(t0, t0.Add(mins(55)), mins(5)) // twelve runs
	require.Equal(t, []string{"firing lab-07/silent@18:00"}, statuses(f.lines()))

	f.check(t0.Add(time.Hour))
	lines := f.lines()
	require.Equal(t, []string{"firing lab-07/silent@18:00", "firing lab-07/silent@19:00"}, statuses(lines))
	assert.Equal(t, "lab-07/silent/2026-11-28T19", lines[1].DedupKey)
	assert.Equal(t, lines[0].Since, lines[1].Since, "a repeat keeps the time the symptom started")
	assert.Contains(t, lines[1].Summary, "1h30m", "a repeat says how long it has been")
}

func TestRecoveryWritesOneResolved(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	quiet(f)
	f.check(t0)
	f.heartbeats("lab-07", t0.Add(mins(7)), t0.Add(2*time.Hour), mins(5)) // back at 18:07
	f.every(t0.Add(mins(5)), t0.Add(2*time.Hour), mins(5))
	lines := f.lines()
	require.Equal(t, []string{"firing lab-07/silent@18:00", "resolved lab-07/silent@18:10"}, statuses(lines))
	r := lines[1]
	assert.Equal(t, "lab-07/silent/2026-11-28T18", r.DedupKey)
	assert.Equal(t, t0, r.Since)
	assert.Contains(t, r.Summary, "no longer silent")
	assert.Equal(t, "10m", evidence(t, r)["open_for"])
}

func TestFatalOnlyClearsAtTheNextSuccess(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	f.report("lab-07", "ok", t0.Add(-time.Hour))
	for i := 3; i >= 1; i-- {
		f.req("lab-07", "heartbeat", 426, t0.Add(-mins(5*i)), commitOld)
	}
	f.check(t0)
	f.req("lab-07", "heartbeat", 426, t0.Add(mins(1)), commitOld)
	f.check(t0.Add(mins(5)))
	f.req("lab-07", "heartbeat", 204, t0.Add(mins(6)), commitOK)
	f.check(t0.Add(mins(10)))
	f.check(t0.Add(mins(15)))
	assert.Equal(t, []string{"firing lab-07/fatal-only@18:00", "resolved lab-07/fatal-only@18:10"}, statuses(f.lines()))
}

// A symptom that comes and goes: runs at :58 and :02 and every 5 minutes between never
// write two firing lines with one dedup_key, nor two within repeat_interval: one that
// comes back that soon is flapping, and waits.
func TestDedupKeyIsNeverReused(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	f.cfg.SilentAfter = 10 * time.Minute
	f.report("lab-07", "ok", t0.Add(-time.Hour))
	for _, at := range []time.Time{t0.Add(-mins(20)), t0, t0.Add(mins(15))} { // 17:40, 18:00, 18:15
		f.req("lab-07", "heartbeat", 204, at, commitOK)
	}
	// 17:58 silent (since 17:50); 18:02 back; 18:12 silent (since 18:10), but within
	// an hour of 17:58's line: held back; 18:17 back (nothing to resolve: it was never
	// announced); 18:27 silent (since 18:25), held back until 18:58: out at 19:02.
	runs := []time.Time{t0.Add(-mins(2)), t0.Add(mins(2))}
	for at := t0.Add(mins(7)); at.Before(t0.Add(mins(63))); at = at.Add(mins(5)) {
		runs = append(runs, at)
	}
	for _, at := range runs {
		f.check(at)
	}
	lines := f.lines()
	require.Equal(t, []string{
		"firing lab-07/silent@17:58", "resolved lab-07/silent@18:02", "firing lab-07/silent@19:02",
	}, statuses(lines))
	assert.Equal(t, t0.Add(mins(25)), lines[2].Since, "the held-back line keeps its threshold time")
	assert.True(t, lines[2].Flapping, "it came back within repeat_interval of its resolution")
	assert.False(t, lines[0].Flapping)
	assertUniqueFiringKeys(t, lines)
}

func TestShortRepeatIntervalStillOneFiringLineAnHour(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	f.cfg.RepeatInterval = 20 * time.Minute
	quiet(f)
	f.every(t0.Add(-mins(2)), t0.Add(3*time.Hour), mins(5))
	f.every(t0.Add(mins(58)), t0.Add(mins(62)), mins(4)) // :58 and :02 again, out of step
	lines := f.lines()
	assertUniqueFiringKeys(t, lines)
	assert.Equal(t, []string{
		"firing lab-07/silent@18:03", "firing lab-07/silent@19:03", "firing lab-07/silent@20:03",
	}, statuses(lines)[:3])
}

func assertUniqueFiringKeys(t *testing.T, lines []alerts.Alert) {
	t.Helper()
	seen := map[string]bool{}
	for _, l := range lines {
		if l.Status == alerts.StatusFiring {
			assert.False(t, seen[l.DedupKey], "dedup_key %s used twice", l.DedupKey)
			seen[l.DedupKey] = true
		}
	}
}

func TestConcurrentRunsDoNotDoubleFire(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	quiet(f)
	f.heartbeats("lab-08", t0.Add(-3*time.Hour), t0.Add(-mins(40)), mins(5))
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			_, err := Check(t.Context(), f.opts(t0.Add(mins(1))))
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	assert.Equal(t, []string{"firing lab-07/silent@18:01", "firing lab-08/silent@18:01"}, statuses(f.lines()))
}

func TestStateSurvivesARestart(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	quiet(f)
	f.check(t0)
	// A new process: nothing in memory, only the data folder.
	before, err := os.ReadFile(statePath(f.dir))
	require.NoError(t, err)
	st, err := loadState(statePath(f.dir))
	require.NoError(t, err)
	a := st.Hosts["lab-07"].Alerts[Silent]
	require.NotNil(t, a)
	assert.Equal(t, AlertState{Since: t0, Announced: true, LastNotified: t0, Summary: a.Summary}, *a)
	assert.Equal(t, t0, st.Fired["lab-07/silent/2026-11-28T18"])

	f.check(t0.Add(mins(5)))
	assert.Len(t, f.lines(), 1, "the restarted check knows it already fired")
	after, err := os.ReadFile(statePath(f.dir))
	require.NoError(t, err)
	assert.NotEqual(t, before, after)
	leftovers, err := filepath.Glob(filepath.Join(f.dir, ".fleet-health*"))
	require.NoError(t, err)
	assert.Empty(t, leftovers, "atomic writes leave no temporary file")
}

func TestDamagedStateIsAnErrorNotAFreshStart(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	quiet(f)
	require.NoError(t, os.WriteFile(statePath(f.dir), []byte(`{"version":1,"hosts":{`), 0o640))
	_, err := Check(t.Context(), f.opts(t0))
	require.ErrorContains(t, err, "is damaged")
	assert.ErrorContains(t, err, "remove it to start over")
	assert.NoFileExists(t, f.alertsPath)
}

func TestQuietLongerThanTheWindowExpiresOnce(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	quiet(f) // last request 17:30
	f.check(t0)
	expiry := t0.Add(-mins(30)).Add(24 * time.Hour)
	f.check(expiry.Add(-time.Minute))
	f.check(expiry.Add(time.Minute))
	f.check(expiry.Add(mins(6)))
	lines := f.lines()
	require.Equal(t, []string{"firing lab-07/silent@18:00", "firing lab-07/silent@17:29", "expired lab-07/silent@17:31"},
		statuses(lines), "one minute before the window ends it is still silent; one after, expired; then nothing")
	exp := lines[2]
	assert.Equal(t, alerts.StatusExpired, exp.Status)
	assert.Equal(t, "lab-07/silent/2026-11-29T17", exp.DedupKey)
	assert.Contains(t, exp.Summary, "longer than the active window")
	st, err := loadState(statePath(f.dir))
	require.NoError(t, err)
	assert.NotContains(t, st.Hosts, "lab-07", "forgotten until it sends a request")

	// It comes back: tracked again from scratch.
	back := expiry.Add(time.Hour)
	f.req("lab-07", "heartbeat", 204, back, commitOK)
	f.check(back.Add(mins(1)))
	st, err = loadState(statePath(f.dir))
	require.NoError(t, err)
	assert.Equal(t, back, st.Hosts["lab-07"].FirstSeen)
}

func TestDryRunWritesNothing(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	quiet(f)
	opts := f.opts(t0)
	opts.DryRun = true
	res, err := Check(t.Context(), opts)
	require.NoError(t, err)
	assert.Equal(t, []string{"firing lab-07/silent@18:00"}, statuses(res.Notifications), "it says what it would notify")
	entries, err := os.ReadDir(f.dir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	assert.ElementsMatch(t, []string{"index", "host-health"}, names)
}

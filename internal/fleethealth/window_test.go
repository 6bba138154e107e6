package fleethealth

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/index"
)

// garbage is what a crash, a disk error or a hand edit leaves in an index file.
var garbage = []string{
	"not json at all",
	`{"ts":"2026-11-28T17:59:00Z","host":"lab-07","status":"two hundred"}`,
	`{"host":"lab-07","route":"heartbeat","status":204}`,
	"\x00\x00\x00\x00",
	`{"ts":"2026-11-28T17:5`,
	"   ",
	"",
}

// indexWithGarbage writes 5000 entries over three days, not sorted by ts, then puts
// garbage in the middle of each file and a torn line at its end.
func indexWithGarbage(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	w, err := index.OpenWriter(dir)
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(1, 2))
	start := t0.Add(-50 * time.Hour)
	routes := []string{"episodes", "heartbeat", "host-health", "whoami", "alerts", "tls"}
	statusesOf := []int{200, 201, 204, 400, 401, 403, 426, 428, 503, 507}
	for i := range 5000 {
		// Unique, unsorted times: lines are appended as requests finish.
		at := start.Add(time.Duration(i)*36*time.Second - time.Duration(rng.IntN(600))*time.Second).Add(time.Duration(i) * time.Nanosecond)
		e := index.Entry{TS: at, Host: fmt.Sprintf("lab-%02d", rng.IntN(20)), Route: routes[rng.IntN(len(routes))],
			Method: []string{"PUT", "POST", "GET"}[rng.IntN(3)], Status: statusesOf[rng.IntN(len(statusesOf))]}
		if rng.IntN(4) > 0 {
			e.Commit, e.Stamped = commitOK, true
		}
		if e.Status == 401 && rng.IntN(2) == 0 {
			e.Unverified = true
		}
		if e.Route == "tls" { // a refused handshake, named or not
			e.Status, e.Error = 0, []string{"unknown_ca", "expired", "bad_usage", "no_certificate"}[rng.IntN(4)]
			e.Remote = fmt.Sprintf("10.0.0.%d:%d", rng.IntN(4), 40000+rng.IntN(1000))
			if rng.IntN(3) == 0 {
				e.Host = ""
			}
		}
		require.NoError(t, w.Append(e))
	}
	require.NoError(t, w.Close())
	files, err := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	require.NoError(t, err)
	require.Len(t, files, 3)
	for _, p := range files {
		data, err := os.ReadFile(p)
		require.NoError(t, err)
		lines := strings.SplitAfter(string(data), "\n")
		mid := len(lines) / 2
		mixed := append(append(append([]string{}, lines[:mid]...), strings.Join(garbage, "\n")+"\n"), lines[mid:]...)
		require.NoError(t, os.WriteFile(p, []byte(strings.Join(mixed, "")+`{"ts":"2026-11-2`), 0o640))
	}
	return dir
}

// onePass is the facts of entries added in the order index.Read gives them.
func onePass(t *testing.T, dir string, from, to time.Time) (*windowFacts, []index.Entry, index.Stats) {
	t.Helper()
	want := newWindowFacts(to)
	var entries []index.Entry
	st, err := index.Read(dir, from, to, func(e index.Entry) error {
		want.add(e)
		entries = append(entries, e)
		return nil
	})
	require.NoError(t, err)
	for _, f := range want.hosts {
		f.prune()
	}
	return want, entries, st
}

// The check's read of the window (index.ReadWindow, on every core) must gather the
// facts one pass in file order gathers.
func TestReadWindowMatchesIndexRead(t *testing.T) {
	t.Parallel()
	dir := indexWithGarbage(t)
	for _, window := range []struct{ from, to time.Time }{
		{t0.Add(-24 * time.Hour), t0},
		{t0.Add(-24 * time.Hour).Add(-mins(17)), t0.Add(-mins(3)).Add(500 * time.Millisecond)},
		{t0.Add(-48 * time.Hour), t0.Add(-47 * time.Hour)},
	} {
		t.Run(window.from.Format("02T15:04"), func(t *testing.T) {
			want, _, ist := onePass(t, dir, window.from, window.to)
			got, st, err := readWindow(dir, window.from, window.to)
			require.NoError(t, err)
			assert.Equal(t, want, got)
			assert.Equal(t, ist.Files, st.Files)
			// A garbage line whose ts shows it outside the window is passed over
			// rather than found to be garbage: each line is counted once either way.
			assert.Equal(t, ist.Entries+ist.Skipped, st.Entries+st.Outside+st.Skipped)
			assert.Greater(t, st.Outside, 0)
		})
	}
}

// index.ReadWindow hands each worker's entries over in parts, in no order: merging
// the facts of any split of the entries, in any order, gives what one pass gives.
func TestFactsMergeAsOnePass(t *testing.T) {
	t.Parallel()
	dir := indexWithGarbage(t)
	want, entries, _ := onePass(t, dir, t0.Add(-48*time.Hour), t0)
	require.NotEmpty(t, entries)
	rng := rand.New(rand.NewPCG(3, 4))
	for _, parts := range []int{1, 2, 3, 7, 64} {
		t.Run(fmt.Sprint(parts), func(t *testing.T) {
			sets := make([]*windowFacts, parts)
			for i := range sets {
				sets[i] = newWindowFacts(t0)
			}
			for _, i := range rng.Perm(len(entries)) {
				sets[rng.IntN(parts)].add(entries[i])
			}
			got := newWindowFacts(t0)
			for _, i := range rng.Perm(parts) {
				got.merge(sets[i])
			}
			for _, f := range got.hosts {
				f.prune()
			}
			assert.Equal(t, want, got)
		})
	}
}

func TestCheckSurvivesTornAndGarbageIndexLines(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	quiet(f)
	f.heartbeats("lab-08", t0.Add(-time.Hour), t0, mins(5))
	f.report("lab-08", "ok", t0.Add(-time.Hour))
	require.NoError(t, f.idx.Close())
	path := filepath.Join(indexDir(f.dir), "2026-11-28.jsonl")
	file, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = file.WriteString(strings.Join(garbage, "\n") + "\n" + `{"ts":"2026-11-28T17:59:59Z","host":"lab-07","route":"heartb`)
	require.NoError(t, err)
	require.NoError(t, file.Close())

	res := f.check(t0)
	assert.Equal(t, []string{"firing lab-07/silent@18:00"}, statuses(f.lines()),
		"the torn line would have been lab-07's heartbeat: it is skipped, not half-read")
	assert.Equal(t, 6, res.Index.Skipped, "five garbage lines and the torn one")
	assert.Len(t, res.Hosts, 2)
}

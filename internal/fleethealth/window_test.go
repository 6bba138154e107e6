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

// The fast window read must see exactly what index.Read sees, whatever the chunking.
func TestReadWindowMatchesIndexRead(t *testing.T) {
	t.Parallel()
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
	// Garbage in the middle of each file, and a torn last line.
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

	for _, window := range []struct{ from, to time.Time }{
		{t0.Add(-24 * time.Hour), t0},
		{t0.Add(-24 * time.Hour).Add(-mins(17)), t0.Add(-mins(3)).Add(500 * time.Millisecond)},
		{t0.Add(-48 * time.Hour), t0.Add(-47 * time.Hour)},
	} {
		want := newWindowFacts()
		ist, err := index.Read(dir, window.from, window.to, func(e index.Entry) error { want.add(e); return nil })
		require.NoError(t, err)
		for _, f := range want.hosts {
			f.prune()
		}
		for _, size := range []int64{97, 4096, chunkBytes} {
			t.Run(fmt.Sprintf("%s/%d", window.from.Format("15:04"), size), func(t *testing.T) {
				got, st, err := readWindowIn(dir, window.from, window.to, size)
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

func TestOutsideOnlyJudgesLinesItCanRead(t *testing.T) {
	t.Parallel()
	from, to := "2026-11-28T17:00:00", "2026-11-28T18:00:00"
	for line, want := range map[string]bool{
		`{"ts":"2026-11-28T16:59:59.999Z","host":"a"}`:       true,
		`{"ts":"2026-11-28T17:00:00Z","host":"a"}`:           false,
		`{"ts":"2026-11-28T18:00:00.999999999Z","host":"a"}`: false, // same second as to: the decoder decides
		`{"ts":"2026-11-28T18:00:01Z","host":"a"}`:           true,
		`{"ts":"2026-11-28T20:00:00+05:00","host":"a"}`:      false, // not UTC: the decoder decides
		`{"host":"a","ts":"2026-11-28T10:00:00Z"}`:           false,
		`{"ts":"2026-11-28T10:00:00Z`:                        true, // torn, and outside anyway
		`garbage`:                                            false,
	} {
		assert.Equal(t, want, outside([]byte(line), from, to), line)
	}
}

package index

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
	strings.Repeat("x", MaxLineBytes+1),
}

// windowDir writes 5000 entries over three days, not sorted by ts, some of them
// only encoding/json can read, then puts garbage in the middle of each file and a
// torn line at its end.
func windowDir(t *testing.T, end time.Time) string {
	t.Helper()
	dir := t.TempDir()
	w, err := OpenWriter(dir)
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(1, 2))
	first := end.Add(-50 * time.Hour)
	for i := range 5000 {
		// Unique, unsorted times: lines are appended as requests finish.
		at := first.Add(time.Duration(i)*36*time.Second - time.Duration(rng.IntN(600))*time.Second).Add(time.Duration(i) * time.Nanosecond)
		require.NoError(t, w.Append(randomEntry(rng, at)))
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

func byTS(a, b Entry) int { return cmp.Or(a.TS.Compare(b.TS), cmp.Compare(a.ID, b.ID)) }

// ReadWindow must see exactly what Read sees, whatever the chunking.
func TestReadWindowMatchesRead(t *testing.T) {
	t.Parallel()
	end := time.Date(2026, 11, 28, 18, 0, 0, 0, time.UTC)
	dir := windowDir(t, end)
	for _, window := range []struct{ from, to time.Time }{
		{end.Add(-24 * time.Hour), end},
		{end.Add(-24*time.Hour - 17*time.Minute), end.Add(-3*time.Minute + 500*time.Millisecond)},
		{end.Add(-48 * time.Hour), end.Add(-47 * time.Hour)},
		{time.Time{}, end.Add(100 * time.Hour)},
	} {
		var want []Entry
		rst, err := Read(dir, window.from, window.to, func(e Entry) error { want = append(want, e); return nil })
		require.NoError(t, err)
		slices.SortFunc(want, byTS)
		require.NotEmpty(t, want)
		for _, size := range []int64{97, 4096, chunkBytes} {
			t.Run(fmt.Sprintf("%s/%d", window.from.Format("02T15:04"), size), func(t *testing.T) {
				t.Parallel()
				parts, st, err := readWindow(dir, window.from, window.to, size,
					func() *[]Entry { return new([]Entry) }, func(p *[]Entry, e Entry) { *p = append(*p, e) })
				require.NoError(t, err)
				var got []Entry
				for _, p := range parts {
					got = append(got, *p...)
				}
				slices.SortFunc(got, byTS)
				require.Len(t, got, len(want))
				for i := range want {
					assert.True(t, sameEntry(want[i], got[i]), "%+v\n%+v", want[i], got[i])
				}
				assert.Equal(t, rst.Files, st.Files)
				// A garbage line whose ts shows it outside the window is passed over
				// rather than found to be garbage: each line is counted once either way.
				assert.Equal(t, rst.Entries+rst.Skipped, st.Entries+st.Outside+st.Skipped)
				assert.Equal(t, st.Lines, st.Entries+st.Outside+st.Skipped)
				if !window.from.IsZero() {
					assert.Greater(t, st.Outside, 0)
				}
			})
		}
	}
}

func TestReadWindowOfNoIndexIsEmpty(t *testing.T) {
	t.Parallel()
	for name, dir := range map[string]string{"missing": filepath.Join(t.TempDir(), "nope"), "empty": t.TempDir()} {
		t.Run(name, func(t *testing.T) {
			parts, st, err := ReadWindow(dir, time.Time{}, time.Now(), func() int { return 0 }, func(int, Entry) {
				t.Error("no entries expected")
			})
			require.NoError(t, err)
			assert.Empty(t, parts)
			assert.Equal(t, WindowStats{}, st)
		})
	}
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

package index

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var start = time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)

// writeDays creates 40 day files, each with entries at 00:00, 12:00 and 23:59:59.
func writeDays(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	w, err := OpenWriter(dir)
	require.NoError(t, err)
	for d := range 40 {
		for _, off := range []time.Duration{0, 12 * time.Hour, 24*time.Hour - time.Second} {
			require.NoError(t, w.Append(Entry{TS: start.AddDate(0, 0, d).Add(off), Host: "lab-01"}))
		}
	}
	require.NoError(t, w.Close())
	// Neighbours that are not day files.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "2026-10-11.jsonl.bak"), []byte("x\n"), 0o640))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "notes.jsonl"), []byte("x\n"), 0o640))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "2027-01-01.jsonl"), 0o750))
	return dir
}

func TestReadOpensOnlyTheWindowsDays(t *testing.T) {
	dir := writeDays(t)
	day := func(d, h int) time.Time { return start.AddDate(0, 0, d).Add(time.Duration(h) * time.Hour) }
	plus5 := time.FixedZone("+05", 5*3600)
	for _, tc := range []struct {
		name           string
		from, to       time.Time
		files, matched int
	}{
		{"24h across midnight", day(9, 12), day(10, 12), 2, 4},
		{"48h", day(9, 12), day(11, 12), 3, 7},
		{"aligned 2 days", day(9, 0), day(11, 0).Add(-time.Nanosecond), 2, 6},
		{"within a day", day(20, 1), day(20, 13), 1, 1},
		{"other zone, same instants", day(9, 12).In(plus5), day(10, 12).In(plus5), 2, 4},
		{"past the last file", day(38, 0), day(45, 0), 2, 6},
		{"before the first file", day(-10, 0), day(-1, 0), 0, 0},
		{"inverted", day(11, 0), day(9, 0), 0, 0},
		{"all history", time.Time{}, day(1000, 0), 40, 120},
	} {
		t.Run(tc.name, func(t *testing.T) {
			matched := 0
			st, err := Read(dir, tc.from, tc.to, func(e Entry) error {
				assert.False(t, e.TS.Before(tc.from) || e.TS.After(tc.to), e.TS)
				matched++
				return nil
			})
			require.NoError(t, err)
			assert.Equal(t, tc.files, st.Files)
			assert.Equal(t, 3*tc.files, st.Entries, "entries counts every valid line of the opened files")
			assert.Equal(t, tc.matched, matched)
		})
	}
}

func TestReadMissingDirIsEmpty(t *testing.T) {
	st, err := Read(filepath.Join(t.TempDir(), "nope"), time.Time{}, time.Now(), func(Entry) error {
		t.Fatal("no entries expected")
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, Stats{}, st)
}

func TestReadKeepsFileOrderAndStopsOnCallbackError(t *testing.T) {
	dir := t.TempDir()
	w, err := OpenWriter(dir)
	require.NoError(t, err)
	for _, e := range []Entry{{TS: day1.Add(time.Minute), ID: "a"}, {TS: day1, ID: "b"}, {TS: day1.Add(time.Hour), ID: "c"}} {
		require.NoError(t, w.Append(e))
	}
	require.NoError(t, w.Close())

	var got []string
	_, err = Read(dir, day1, day1.Add(time.Hour), func(e Entry) error { got = append(got, e.ID); return nil })
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "b", "c"}, got)

	stop := errors.New("enough")
	got = nil
	_, err = Read(dir, day1, day1.Add(time.Hour), func(e Entry) error {
		got = append(got, e.ID)
		if len(got) == 2 {
			return stop
		}
		return nil
	})
	assert.Same(t, stop, err)
	assert.Equal(t, []string{"a", "b"}, got)
}

func line(t *testing.T, e Entry) string {
	t.Helper()
	b, err := json.Marshal(e)
	require.NoError(t, err)
	return string(b)
}

func TestScanSurvivesBadLines(t *testing.T) {
	good := line(t, Entry{TS: day1, ID: "good"})
	padded := func(n int) string { // a valid line of exactly n bytes
		base := line(t, Entry{TS: day1, ID: "long"})
		return strings.Replace(base, `"error":""`, `"error":"`+strings.Repeat("e", n-len(base))+`"`, 1)
	}
	require.Len(t, padded(MaxLineBytes), MaxLineBytes)
	for _, tc := range []struct {
		name  string
		in    string
		want  Stats
		wants []string
	}{
		{"empty", "", Stats{}, nil},
		{"blank lines", "\n\n  \t\n\r\n" + good + "\n\n", Stats{Lines: 6, Entries: 1}, []string{"good"}},
		{"garbage", "not json\n{\n" + good + "\n\x00\xff\n", Stats{Lines: 4, Entries: 1, Skipped: 3}, []string{"good"}},
		{"unknown fields", `{"ts":"2026-11-28T10:00:00Z","id":"u","future":{"x":[1,2]}}` + "\n", Stats{Lines: 1, Entries: 1}, []string{"u"}},
		{"no ts", `{"host":"lab-01"}` + "\nnull\n[]\n" + `{"ts":"yesterday"}` + "\n", Stats{Lines: 4, Skipped: 4}, nil},
		{"wrong type", `{"ts":"2026-11-28T10:00:00Z","status":"ok"}` + "\n", Stats{Lines: 1, Skipped: 1}, nil},
		{"two objects on a line", good + good + "\n", Stats{Lines: 1, Skipped: 1}, nil},
		{"torn last line", good + "\n" + good[:20], Stats{Lines: 2, Entries: 1, Skipped: 1}, []string{"good"}},
		{"last line without newline", good + "\n" + good, Stats{Lines: 2, Entries: 2}, []string{"good", "good"}},
		{"crlf", good + "\r\n", Stats{Lines: 1, Entries: 1}, []string{"good"}},
		{"longer than the read buffer", padded(200<<10) + "\n", Stats{Lines: 1, Entries: 1}, []string{"long"}},
		{"exactly the limit", padded(MaxLineBytes) + "\n" + padded(MaxLineBytes), Stats{Lines: 2, Entries: 2}, []string{"long", "long"}},
		{"over the limit", padded(MaxLineBytes+1) + "\n" + good + "\n" + padded(MaxLineBytes+1), Stats{Lines: 3, Entries: 1, Skipped: 2}, []string{"good"}},
		{"overlong blank", strings.Repeat(" ", 3<<20) + "\n" + good, Stats{Lines: 2, Entries: 1, Skipped: 1}, []string{"good"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			st, err := Scan(strings.NewReader(tc.in), func(e Entry) error { got = append(got, e.ID); return nil })
			require.NoError(t, err)
			assert.Equal(t, tc.want, st)
			assert.Equal(t, tc.wants, got)
		})
	}
}

type repeatReader byte

func (r repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

func TestScanSkipsOverlongLineInBoundedMemory(t *testing.T) {
	const lineLen = 256 << 20
	in := io.MultiReader(io.LimitReader(repeatReader('x'), lineLen), strings.NewReader("\n"+line(t, Entry{TS: day1, ID: "after"})))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var got []string
	st, err := Scan(in, func(e Entry) error { got = append(got, e.ID); return nil })
	runtime.ReadMemStats(&after)
	require.NoError(t, err)
	assert.Equal(t, Stats{Lines: 2, Entries: 1, Skipped: 1}, st)
	assert.Equal(t, []string{"after"}, got)
	assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(16<<20), "a 256 MiB line must not be buffered")
}

func TestScanReturnsReadErrors(t *testing.T) {
	boom := errors.New("disk on fire")
	r := io.MultiReader(strings.NewReader(line(t, Entry{TS: day1})+"\n"), iotest.ErrReader(boom))
	st, err := Scan(r, func(Entry) error { return nil })
	assert.ErrorIs(t, err, boom)
	assert.Equal(t, 1, st.Entries)
}

func nonBlankLines(data []byte) int {
	n := 0
	for l := range bytes.Lines(data) {
		body := bytes.TrimSuffix(l, []byte{'\n'})
		if len(body) > MaxLineBytes || len(bytes.TrimSpace(body)) > 0 {
			n++
		}
	}
	return n
}

func FuzzScan(f *testing.F) {
	good := `{"ts":"2026-11-28T10:00:00.123456789Z","host":"lab-07","route":"heartbeat","status":204}`
	for _, seed := range []string{
		"",
		good + "\n",
		good + "\n" + good[:37],
		good[:50] + good + "\n",
		"\n\n \r\n\t\n",
		"garbage\n{\n}\n[]\nnull\n\"str\"\n42\n",
		`{"ts":"2026-11-28T10:00:00Z","extra":{"nested":[1,{"a":null}]}}` + "\n",
		`{"ts":"0001-01-01T00:00:00Z"}` + "\n" + `{"ts":""}`,
		"\x00\xff\xfe" + good,
		good + good,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := Scan(bytes.NewReader(data), func(e Entry) error {
			if e.TS.IsZero() {
				t.Errorf("entry with zero ts delivered: %+v", e)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("Scan of in-memory input returned %v", err)
		}
		if want := nonBlankLines(data); st.Entries+st.Skipped != want {
			t.Fatalf("entries %d + skipped %d != %d non-blank lines", st.Entries, st.Skipped, want)
		}
	})
}

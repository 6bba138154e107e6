package index

import (
	"bytes"
	"encoding/json"
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

// naiveTail is what Tail must answer: every entry of host from from on, read forward
// in file order as Read reads them, the last n of them, newest first.
func naiveTail(t *testing.T, dir string, from time.Time, host string, n int) []Entry {
	t.Helper()
	var all []Entry
	_, err := Read(dir, from, time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC), func(e Entry) error {
		if e.Host == host {
			all = append(all, e)
		}
		return nil
	})
	require.NoError(t, err)
	all = all[max(0, len(all)-n):]
	slices.Reverse(all)
	return all
}

func entryIDs(es []Entry) []string {
	out := []string{}
	for _, e := range es {
		out = append(out, e.ID)
	}
	return out
}

// writeFiles writes each day's text as its day file.
func writeFiles(t *testing.T, days map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for day, text := range days {
		require.NoError(t, os.WriteFile(filepath.Join(dir, day+".jsonl"), []byte(text), 0o640))
	}
	return dir
}

func TestTailSurvivesWhatReadersSurvive(t *testing.T) {
	at := func(hhmm string) string { return "2026-11-28T" + hhmm + ":00Z" }
	l := func(id, ts, host string) string {
		return fmt.Sprintf(`{"ts":%q,"id":%q,"host":%q,"route":"heartbeat","status":204}`, ts, id, host)
	}
	long := func(id, ts string, size int) string { // a valid line of lab-01 of exactly size bytes
		base := l(id, ts, "lab-01")
		return strings.Replace(base, `"status":204`, `"status":204,"pad":"`+strings.Repeat("p", size-len(base)-9)+`"`, 1)
	}
	require.Len(t, long("x", at("10:00"), 5000), 5000)
	from := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name  string
		files map[string]string
		host  string
		n     int
		want  []string
	}{
		{"newest first", map[string]string{"2026-11-28": l("a", at("10:00"), "lab-01") + "\n" + l("b", at("11:00"), "lab-01") + "\n"}, "lab-01", 10, []string{"b", "a"}},
		{"at most n", map[string]string{"2026-11-28": l("a", at("10:00"), "lab-01") + "\n" + l("b", at("11:00"), "lab-01") + "\n" + l("c", at("12:00"), "lab-01") + "\n"}, "lab-01", 2, []string{"c", "b"}},
		{"n of 0", map[string]string{"2026-11-28": l("a", at("10:00"), "lab-01") + "\n"}, "lab-01", 0, []string{}},
		{"other hosts, and names that contain this one", map[string]string{"2026-11-28": strings.Join([]string{
			l("a", at("10:00"), "lab-01"), l("x", at("10:01"), "lab-010"), l("y", at("10:02"), "xlab-01"),
			`{"ts":"` + at("10:03") + `","id":"z","host":"lab-02","remote":"lab-01"}`, l("b", at("10:04"), "lab-01"),
		}, "\n") + "\n"}, "lab-01", 10, []string{"b", "a"}},
		{"torn last line", map[string]string{"2026-11-28": l("a", at("10:00"), "lab-01") + "\n" + l("b", at("11:00"), "lab-01")[:30]}, "lab-01", 10, []string{"a"}},
		{"last line without newline", map[string]string{"2026-11-28": l("a", at("10:00"), "lab-01") + "\n" + l("b", at("11:00"), "lab-01")}, "lab-01", 10, []string{"b", "a"}},
		{"blank lines and crlf", map[string]string{"2026-11-28": "\n\n" + l("a", at("10:00"), "lab-01") + "\r\n  \n\t\n" + l("b", at("11:00"), "lab-01") + "\n\n\n"}, "lab-01", 10, []string{"b", "a"}},
		{"garbage that names the host", map[string]string{"2026-11-28": l("a", at("10:00"), "lab-01") + "\n" +
			`{"ts":"2026-11-28T10:30:00Z","host":"lab-01","status":"two hundred"}` + "\n" + `{"host":"lab-01"}` + "\n" +
			"\x00\xff\"lab-01\"\n" + l("b", at("11:00"), "lab-01") + "\n"}, "lab-01", 10, []string{"b", "a"}},
		{"unknown fields and spaces", map[string]string{"2026-11-28": `{ "ts": "` + at("10:00") + `", "id": "a", "host": "lab-01", "future": {"x": [1, null]} }` + "\n"}, "lab-01", 10, []string{"a"}},
		{"a host spelt with escapes", map[string]string{"2026-11-28": `{"ts":"` + at("10:00") + `","id":"a","host":"lab\u002d01"}` + "\n"}, "lab-01", 10, []string{"a"}},
		{"ts not sorted: an old line between new ones", map[string]string{"2026-11-28": l("a", at("10:00"), "lab-01") + "\n" +
			l("old", at("08:00"), "lab-01") + "\n" + l("b", at("11:00"), "lab-01") + "\n" + l("old2", at("08:59"), "lab-01") + "\n"}, "lab-01", 10, []string{"b", "a"}},
		{"lines before from in the newer file do not stop the read", map[string]string{
			"2026-11-28": l("a", at("10:00"), "lab-01") + "\n",
			"2026-11-29": `{"ts":"2026-11-28T08:00:00Z","id":"old","host":"lab-01"}` + "\n" + `{"ts":"2026-11-29T01:00:00Z","id":"b","host":"lab-01"}` + "\n",
		}, "lab-01", 10, []string{"b", "a"}},
		{"files before from's day are not read", map[string]string{
			"2026-11-27": `{"ts":"2026-11-28T10:00:00Z","id":"misfiled","host":"lab-01"}` + "\n",
			"2026-11-28": l("a", at("10:00"), "lab-01") + "\n",
		}, "lab-01", 10, []string{"a"}},
		{"newest file first", map[string]string{
			"2026-11-28": l("a", at("10:00"), "lab-01") + "\n",
			"2026-11-30": `{"ts":"2026-11-30T01:00:00Z","id":"c","host":"lab-01"}` + "\n",
			"2026-11-29": `{"ts":"2026-11-29T01:00:00Z","id":"b","host":"lab-01"}` + "\n",
		}, "lab-01", 10, []string{"c", "b", "a"}},
		{"lines longer than a block", map[string]string{"2026-11-28": long("a", at("10:00"), 5000) + "\n" + long("b", at("10:01"), 200) + "\n" + long("c", at("10:02"), 70000) + "\n"}, "lab-01", 10, []string{"c", "b", "a"}},
		{"a long first line", map[string]string{"2026-11-28": long("a", at("10:00"), 3*tailBlock+17)}, "lab-01", 10, []string{"a"}},
		{"exactly the line limit", map[string]string{"2026-11-28": long("a", at("10:00"), MaxLineBytes) + "\n"}, "lab-01", 10, []string{"a"}},
		{"over the line limit", map[string]string{"2026-11-28": long("a", at("10:00"), 1000) + "\n" + long("x", at("10:01"), MaxLineBytes+1) + "\n" +
			strings.Repeat(" ", MaxLineBytes+5) + "\n" + long("b", at("10:02"), 1000) + "\n" + long("y", at("10:03"), MaxLineBytes+1)}, "lab-01", 10, []string{"b", "a"}},
		{"no index", map[string]string{}, "lab-01", 10, []string{}},
	} {
		for _, block := range []int{7, 100, 4096, tailBlock} {
			t.Run(fmt.Sprintf("%s/%d", tc.name, block), func(t *testing.T) {
				dir := writeFiles(t, tc.files)
				got, _, err := tail(dir, from, tc.host, tc.n, block)
				require.NoError(t, err)
				assert.Equal(t, tc.want, entryIDs(got))
				assert.Equal(t, entryIDs(naiveTail(t, dir, from, tc.host, tc.n)), entryIDs(got), "what a forward read finds")
			})
		}
	}
}

func TestTailOfAMissingFolderIsEmpty(t *testing.T) {
	got, st, err := Tail(filepath.Join(t.TempDir(), "nope"), time.Time{}, "lab-01", 50)
	require.NoError(t, err)
	assert.Empty(t, got)
	assert.Equal(t, TailStats{}, st)
}

// TestTailMatchesAForwardRead holds Tail to the naive forward read over random index
// folders (the writer's lines, unsorted times, some only encoding/json reads, garbage
// in the middle and a torn line at the end of each file), for any block size, host,
// window and n.
func TestTailMatchesAForwardRead(t *testing.T) {
	t.Parallel()
	end := time.Date(2026, 11, 28, 18, 0, 0, 0, time.UTC)
	dir := windowDir(t, end)
	// Every file holds only its own day's lines (the writer wrote them), so the forward
	// read of a window is the whole index's entries from its start on.
	var all []Entry
	_, err := Read(dir, time.Time{}, end.Add(time.Hour), func(e Entry) error { all = append(all, e); return nil })
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(7, 11))
	hosts := []string{"lab-07", "LAB-08", "", "lab-ü", `lab"q`, "lab\\x", "lab\t9", "a.b-c", "lab-0", "nobody"}
	for i := range 40 {
		host := hosts[rng.IntN(len(hosts))]
		from := end.Add(-time.Duration(rng.IntN(60*60)) * time.Minute)
		if i%15 == 0 {
			from = time.Time{}
		}
		n := []int{1, 2, 5, 50, 400, 10000}[rng.IntN(6)]
		block := []int{128, 1000, 4096, tailBlock}[rng.IntN(4)]
		got, _, err := tail(dir, from, host, n, block)
		require.NoError(t, err)
		var want []Entry
		if i%20 == 0 {
			want = naiveTail(t, dir, from, host, n)
		} else {
			for _, e := range slices.Backward(all) {
				if len(want) < n && e.Host == host && !e.TS.Before(from) {
					want = append(want, e)
				}
			}
		}
		require.Len(t, got, len(want), "host %q from %s n %d block %d", host, from, n, block)
		for j := range want {
			require.True(t, sameEntry(want[j], got[j]), "host %q from %s n %d block %d: entry %d\n%+v\n%+v", host, from, n, block, j, want[j], got[j])
		}
	}
}

// TestTailReadsOnlyTheEnd: of a day of a fleet, a host shipping every 5 minutes has
// its last 50 lines in the last two hours, a twelfth of the file.
func TestTailReadsOnlyTheEnd(t *testing.T) {
	t.Parallel()
	dir, end := fleetDay(t, 60)
	info, err := os.Stat(filepath.Join(dir, dayOf(end.Add(-time.Hour))+".jsonl"))
	require.NoError(t, err)
	got, st, err := Tail(dir, end.Add(-24*time.Hour), "lab-030", 50)
	require.NoError(t, err)
	require.Len(t, got, 50)
	assert.True(t, slices.IsSortedFunc(got, func(a, b Entry) int { return b.TS.Compare(a.TS) }), "newest first")
	assert.Equal(t, 1, st.Files)
	assert.Less(t, st.Bytes, info.Size()/10, "read %d of %d bytes", st.Bytes, info.Size())
	assert.Equal(t, 50, st.Decoded, "only lab-030's lines are decoded")

	// A host that never spoke: every file of the window, and nothing decoded.
	got, st, err = Tail(dir, end.Add(-24*time.Hour), "lab-999", 50)
	require.NoError(t, err)
	assert.Empty(t, got)
	assert.Equal(t, info.Size(), st.Bytes)
	assert.Zero(t, st.Decoded)
}

// fleetDay writes one day file of hosts heartbeating and shipping every 5 minutes,
// as the receiver writes them (bench/fleetview's shape), ending at the returned time.
func fleetDay(t testing.TB, hosts int) (string, time.Time) {
	t.Helper()
	dir := t.TempDir()
	day := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf) // the writer's lines, without a write(2) each
	rng := rand.New(rand.NewPCG(4, 90))
	const commit = "1234567890abcdef1234567890abcdef12345678"
	for at := day; at.Before(day.AddDate(0, 0, 1).Add(-5 * time.Minute)); at = at.Add(5 * time.Minute) {
		for h := range hosts {
			host := fmt.Sprintf("lab-%03d", h)
			ts := at.Add(time.Duration(h) * time.Second)
			remote := fmt.Sprintf("10.0.%d.%d:%d", h/250, h%250+1, 40000+rng.IntN(20000))
			require.NoError(t, enc.Encode(Entry{TS: ts, Host: host, Route: "heartbeat", Method: "POST", Status: 204,
				Commit: commit, Stamped: true, DurMS: 0.4 + rng.Float64(), Remote: remote}))
			require.NoError(t, enc.Encode(Entry{TS: ts.Add(2 * time.Second), Host: host, Route: "episodes", Method: "PUT",
				Status: 201, Bytes: 5<<20 + rng.Int64N(1<<20), SHA256: fmt.Sprintf("%064x", rng.Uint64()), Commit: commit,
				Stamped: true, DurMS: 300 + 100*rng.Float64(), Remote: remote}))
		}
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, dayOf(day)+".jsonl"), buf.Bytes(), 0o640))
	return dir, day.AddDate(0, 0, 1)
}

// BenchmarkTail: a host's last 50 lines of a 300-host day (about 170,000 lines),
// against decoding the day, which is what reading the window forward costs.
func BenchmarkTail(b *testing.B) {
	dir, end := fleetDay(b, 300)
	from := end.Add(-24 * time.Hour)
	b.Run("active-host", func(b *testing.B) {
		var st TailStats
		for b.Loop() {
			_, st, _ = Tail(dir, from, "lab-150", 50)
		}
		b.ReportMetric(float64(st.Bytes), "bytes-read/op")
	})
	b.Run("silent-host", func(b *testing.B) { // reads the whole day, decodes nothing
		var st TailStats
		for b.Loop() {
			_, st, _ = Tail(dir, from, "lab-999", 50)
		}
		b.ReportMetric(float64(st.Bytes), "bytes-read/op")
	})
	b.Run("forward-read", func(b *testing.B) {
		for b.Loop() {
			var last []Entry
			_, _ = Read(dir, from, end, func(e Entry) error {
				if e.Host == "lab-150" {
					last = append(last, e)
				}
				return nil
			})
		}
	})
}

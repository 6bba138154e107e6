package alerts

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

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 11, 28, 18, 0, 0, 0, time.UTC)

func alert(n int) Alert {
	at := t0.Add(time.Duration(n) * time.Minute)
	host := fmt.Sprintf("lab-%02d", n)
	return Alert{TS: at, Host: host, Symptom: "silent", Status: StatusFiring, DedupKey: DedupKey(host, "silent", at),
		Since: at.Add(-time.Minute), Summary: host + " is silent", Evidence: json.RawMessage(`{"n":` + fmt.Sprint(n) + `}`)}
}

func hosts(ls []Line) []string {
	var out []string
	for _, l := range ls {
		out = append(out, l.Alert.Host)
	}
	return out
}

func TestDedupKeyIsTheUTCHour(t *testing.T) {
	t.Parallel()
	plus5 := time.FixedZone("+05", 5*3600)
	assert.Equal(t, "lab-07/silent/2026-11-28T18", DedupKey("lab-07", "silent", time.Date(2026, 11, 28, 23, 59, 0, 0, plus5)))
}

func TestAppendThenCollect(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "sub", "alerts.jsonl")
	require.NoError(t, Append(path, alert(1), alert(2)))
	require.NoError(t, Append(path))
	require.NoError(t, Append(path, alert(3)))
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o640), fi.Mode().Perm())

	got, err := Collect(NewReader(path), -1, Filter{})
	require.NoError(t, err)
	assert.Equal(t, []string{"lab-01", "lab-02", "lab-03"}, hosts(got))
	assert.Equal(t, alert(2), got[1].Alert)
	raw, err := json.Marshal(alert(2))
	require.NoError(t, err)
	assert.Equal(t, string(raw), string(got[1].Raw), "Raw is the line as written")

	got, err = Collect(NewReader(path), 2, Filter{})
	require.NoError(t, err)
	assert.Equal(t, []string{"lab-02", "lab-03"}, hosts(got), "the last n, oldest first")
	got, err = Collect(NewReader(filepath.Join(t.TempDir(), "none.jsonl")), 10, Filter{})
	require.NoError(t, err)
	assert.Empty(t, got, "no file yet is no alerts")
}

func TestAppendEndsATornLine(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "alerts.jsonl")
	require.NoError(t, os.WriteFile(path, []byte(`{"ts":"2026-11-28T18:00:00Z","host":"lab-0`), 0o640))
	require.NoError(t, Append(path, alert(4)))
	got, err := Collect(NewReader(path), -1, Filter{})
	require.NoError(t, err)
	assert.Equal(t, []string{"lab-04"}, hosts(got), "the torn line is skipped, the new one whole")
}

func TestFilterAndSince(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "alerts.jsonl")
	resolved := alert(5)
	resolved.Status, resolved.Symptom = StatusResolved, "fatal-only"
	require.NoError(t, Append(path, alert(1), alert(3), resolved, alert(9)))
	for _, tc := range []struct {
		f    Filter
		n    int
		want []string
	}{
		{Filter{Since: t0.Add(3 * time.Minute)}, -1, []string{"lab-03", "lab-05", "lab-09"}},
		{Filter{Host: "LAB-03"}, -1, []string{"lab-03"}},
		{Filter{Symptom: "fatal-only"}, -1, []string{"lab-05"}},
		{Filter{Status: "firing"}, 2, []string{"lab-03", "lab-09"}},
		{Filter{Status: "expired"}, -1, nil},
		{Filter{}, 0, nil},
	} {
		got, err := Collect(NewReader(path), tc.n, tc.f)
		require.NoError(t, err)
		assert.Equal(t, tc.want, hosts(got), "%+v", tc.f)
	}

	since, err := ParseSince("2h", t0)
	require.NoError(t, err)
	assert.Equal(t, t0.Add(-2*time.Hour), since)
	since, err = ParseSince("3d", t0)
	require.NoError(t, err)
	assert.Equal(t, t0.Add(-72*time.Hour), since)
	since, err = ParseSince("2026-11-28T19:00:00+01:00", t0)
	require.NoError(t, err)
	assert.True(t, since.Equal(t0))
	_, err = ParseSince("yesterday", t0)
	assert.ErrorContains(t, err, "RFC 3339")
	since, err = ParseSince("-2h", t0)
	require.NoError(t, err)
	assert.Equal(t, t0.Add(-2*time.Hour), since, "a signed duration back means the same")
	since, err = ParseSince("", t0)
	require.NoError(t, err)
	assert.True(t, since.IsZero(), "no --since, no bound")
}

// One parser for every time a command takes: --since and fleet-health check --now.
func TestParseTime(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want time.Time
	}{
		{"+1h", t0.Add(time.Hour)},
		{"-30m", t0.Add(-30 * time.Minute)},
		{"2h", t0.Add(-2 * time.Hour)},
		{"+1d2h", t0.Add(26 * time.Hour)},
		{"-3d", t0.Add(-72 * time.Hour)},
		{" +90s ", t0.Add(90 * time.Second)},
		{"2026-11-28T19:00:00+01:00", t0},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseTime(tc.in, t0)
			require.NoError(t, err)
			assert.True(t, tc.want.Equal(got), "got %v", got)
		})
	}
	for _, in := range []string{"", "+", "-", "tomorrow", "+-1h", "--1h", "+1x", "1h+"} {
		t.Run("bad "+in, func(t *testing.T) {
			_, err := ParseTime(in, t0)
			require.Error(t, err)
			assert.ErrorContains(t, err, "+1h ahead")
		})
	}
}

func appendRaw(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o640)
	require.NoError(t, err)
	_, err = f.WriteString(s)
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

func readAll(t *testing.T, r *Reader) []string {
	t.Helper()
	var out []string
	require.NoError(t, r.Lines(func(l []byte) error { out = append(out, string(l)); return nil }))
	return out
}

func TestReaderWaitsForTheWholeLine(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "alerts.jsonl")
	r := NewReader(path)
	defer r.Close()
	assert.Empty(t, readAll(t, r))
	appendRaw(t, path, "one\ntw")
	assert.Equal(t, []string{"one"}, readAll(t, r))
	appendRaw(t, path, "o\n\nthree\n")
	assert.Equal(t, []string{"two", "", "three"}, readAll(t, r))
	appendRaw(t, path, strings.Repeat("x", MaxLineBytes+10)+"\nfour\n")
	assert.Equal(t, []string{"four"}, readAll(t, r), "an overlong line is skipped")
}

func TestReaderSurvivesRotationAndTruncation(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "alerts.jsonl")
	r := NewReader(path)
	defer r.Close()
	appendRaw(t, path, "1\n2\n")
	assert.Equal(t, []string{"1", "2"}, readAll(t, r))

	// logrotate's create mode: renamed away, a writer still appends to the old file,
	// then a new file appears. The old one is finished first.
	require.NoError(t, os.Rename(path, path+".1"))
	appendRaw(t, path+".1", "3\n")
	assert.Equal(t, []string{"3"}, readAll(t, r), "the old file is finished while no new one exists")
	appendRaw(t, path, "4\n")
	assert.Equal(t, []string{"4"}, readAll(t, r))
	assert.Equal(t, 1, r.Rotations)

	// copytruncate: the same file, emptied.
	require.NoError(t, os.Truncate(path, 0))
	appendRaw(t, path, "5\n")
	assert.Equal(t, []string{"5"}, readAll(t, r))

	// Emptied and written past the old length before the reader looks: its size does
	// not show it, the last line read no longer being there does.
	require.NoError(t, os.Truncate(path, 0))
	appendRaw(t, path, "66\n77\n88\n")
	assert.Equal(t, []string{"66", "77", "88"}, readAll(t, r))
	assert.Equal(t, 2, r.Truncations)
	assert.Empty(t, readAll(t, r), "nothing twice")
}

// The follower across append, rotation and truncation: every line once, in order.
func TestFollowAcrossAppendRotationAndTruncation(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "alerts.jsonl")
	require.NoError(t, Append(path, alert(1), alert(2)))
	r := NewReader(path)
	got, err := Collect(r, 1, Filter{})
	require.NoError(t, err)
	require.Equal(t, []string{"lab-02"}, hosts(got))

	lines := make(chan string, 100)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- NewFollower(r, 50*time.Millisecond).Follow(ctx, func(raw []byte) error {
			if a, ok := Parse(raw); ok {
				lines <- a.Host
			}
			return nil
		})
	}()
	expect := func(want ...string) {
		t.Helper()
		for _, w := range want {
			select {
			case h := <-lines:
				require.Equal(t, w, h)
			case <-time.After(10 * time.Second):
				t.Fatalf("waited for %s", w)
			}
		}
	}
	require.NoError(t, Append(path, alert(3)))
	expect("lab-03")
	require.NoError(t, os.Rename(path, path+".1"))
	require.NoError(t, Append(path+".1", alert(4)))
	require.NoError(t, Append(path, alert(5), alert(6)))
	expect("lab-04", "lab-05", "lab-06")
	require.NoError(t, os.Truncate(path, 0))
	require.NoError(t, Append(path, alert(7)))
	expect("lab-07")
	require.NoError(t, os.Remove(path))
	require.NoError(t, Append(path, alert(8)))
	expect("lab-08")

	cancel()
	select {
	case err := <-done:
		assert.True(t, errors.Is(err, context.Canceled), "%v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("Follow did not stop with its context")
	}
	select {
	case h := <-lines:
		t.Fatalf("a line arrived twice or out of nowhere: %s", h)
	default:
	}
}

// A writer that opened the file just before logrotate renamed it appends its line
// after the reader has moved on to the new file: it still arrives, within the grace.
func TestReaderReadsARenamedFileDuringTheGrace(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "alerts.jsonl")
	r := NewReader(path)
	defer r.Close()
	clock := t0
	r.now = func() time.Time { return clock }
	appendRaw(t, path, "1\n")
	assert.Equal(t, []string{"1"}, readAll(t, r))
	require.NoError(t, os.Rename(path, path+".1"))
	appendRaw(t, path, "3\n")
	assert.Equal(t, []string{"3"}, readAll(t, r))
	appendRaw(t, path+".1", "2\n")
	appendRaw(t, path, "4\n")
	assert.Equal(t, []string{"2", "4"}, readAll(t, r), "the old file's lines come first")
	appendRaw(t, path+".1", "unterminated")
	clock = clock.Add(RotationGrace + time.Second)
	assert.Equal(t, []string{"unterminated"}, readAll(t, r), "the old file is finished, its last line handed on as it is")
	appendRaw(t, path+".1", "\n5\n")
	assert.Empty(t, readAll(t, r), "after the grace the old file is no longer read")
}

// A follower of GET /v1/alerts that reconnects asks from a little before the newest
// line it printed, never before its first answer's oldest, and skips what it printed.
func TestPrintedResumesWithSlackAndSkipsWhatWasPrinted(t *testing.T) {
	t0 := time.Date(2026, 11, 28, 18, 0, 0, 0, time.UTC)
	line := func(raw string, at time.Time) Line { return Line{Raw: []byte(raw), Alert: Alert{TS: at}} }
	p := NewPrinted()
	_, ok := p.ResumeFrom()
	assert.False(t, ok, "nothing printed: no since")
	assert.True(t, p.Add(line("a", t0.Add(-time.Hour))))
	assert.True(t, p.Add(line("b", t0)))
	assert.False(t, p.Add(line("b", t0)), "printed already")
	p.FirstDone()
	since, ok := p.ResumeFrom()
	require.True(t, ok)
	assert.Equal(t, t0.Add(-resumeSlack), since)
	assert.True(t, p.Add(line("c", t0.Add(-2*time.Minute))), "a line out of time order is new")

	q := NewPrinted()
	q.Add(line("x", t0))
	q.FirstDone()
	since, _ = q.ResumeFrom()
	assert.Equal(t, t0, since, "never before the first answer's oldest line (what -n left out stays out)")
}

package alerts

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func collectBackward(t *testing.T, data []byte, chunk int) []string {
	t.Helper()
	var got []string
	require.NoError(t, backward(bytes.NewReader(data), int64(len(data)), chunk, func(line []byte) bool {
		got = append(got, string(line))
		return true
	}))
	return got
}

func TestBackwardGivesLinesLastFirst(t *testing.T) {
	t.Parallel()
	data := []byte("one\ntwo\n\nthree\ngarbage{\n{\"ts\":\"2026-")
	want := []string{`{"ts":"2026-`, "garbage{", "three", "two", "one"}
	for _, chunk := range []int{1, 2, 3, 7, 64 << 10} {
		assert.Equal(t, want, collectBackward(t, data, chunk), "chunk %d", chunk)
	}
	assert.Equal(t, []string{"b", "a"}, collectBackward(t, []byte("a\nb\n"), 1), "a final newline ends the last line")
	assert.Empty(t, collectBackward(t, nil, 4))
}

func TestBackwardSkipsOverlongLines(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", MaxLineBytes+10)
	data := []byte("before\n" + long + "\nafter\n" + long)
	for _, chunk := range []int{4096, 64 << 10, 4 << 20} {
		assert.Equal(t, []string{"after", "before"}, collectBackward(t, data, chunk), "chunk %d", chunk)
	}
}

func TestBackwardStopsWhenAsked(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "alerts.jsonl")
	require.NoError(t, Append(path, alert(1), alert(2), alert(3)))
	var got []string
	require.NoError(t, Backward(path, func(line []byte) bool {
		a, _ := Parse(line)
		got = append(got, a.Host)
		return len(got) < 2
	}))
	assert.Equal(t, []string{"lab-03", "lab-02"}, got)

	require.NoError(t, Backward(filepath.Join(t.TempDir(), "none.jsonl"), func([]byte) bool {
		t.Error("a missing file has no lines")
		return true
	}))
	err := Backward(t.TempDir(), func([]byte) bool { return true })
	assert.ErrorContains(t, err, "is a directory")
}

// countingReaderAt counts the bytes read through it.
type countingReaderAt struct {
	r    io.ReaderAt
	read int64
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.read += int64(n)
	return n, err
}

// Recent reads back from the end and stops at the first line older than since: its
// cost follows the recent lines, not the file's age.
func TestRecentReadsOnlyTheTail(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	line := func(a Alert) {
		b, err := json.Marshal(a)
		require.NoError(t, err)
		buf.Write(append(b, '\n'))
	}
	old := t0.Add(-30 * 24 * time.Hour)
	for i := range 20000 {
		a := alert(1)
		a.TS = old.Add(time.Duration(i) * time.Minute)
		line(a)
	}
	recent := []Alert{alert(2), alert(3), alert(4)}
	recent[1].Status = StatusResolved
	for _, a := range recent {
		line(a)
	}
	buf.WriteString("torn{\n")
	r := &countingReaderAt{r: bytes.NewReader(buf.Bytes())}
	var back []Alert
	require.NoError(t, backward(r, int64(buf.Len()), backChunk, recentSince(&back, t0)))
	assert.Equal(t, []Alert{recent[2], recent[1], recent[0]}, back, "last first, back to since")
	assert.Less(t, r.read, int64(buf.Len()/10), "it read %d of %d bytes", r.read, buf.Len())

	path := filepath.Join(t.TempDir(), "alerts.jsonl")
	require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o640))
	got, err := Recent(path, t0)
	require.NoError(t, err)
	assert.Equal(t, recent, got, "oldest first")
	got, err = Recent(filepath.Join(t.TempDir(), "none.jsonl"), t0)
	require.NoError(t, err)
	assert.Empty(t, got)
	_, err = Recent(t.TempDir(), t0)
	assert.ErrorContains(t, err, "is a directory")
}

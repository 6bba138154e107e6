package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// crashedEpisode leaves what a receiver killed between linking an episode and writing
// its .json leaves (kill -9 timed at completion did it 5 times in 10): the tarball,
// received at at, and no metadata beside it.
func crashedEpisode(t *testing.T, dataDir, host string, body []byte, at time.Time) string {
	t.Helper()
	dir := filepath.Join(dataDir, "episodes", host)
	require.NoError(t, os.MkdirAll(dir, dirPerm))
	path := filepath.Join(dir, digest(body))
	require.NoError(t, os.WriteFile(path, body, filePerm))
	require.NoError(t, os.Chtimes(path, at, at))
	return path
}

func readSidecar(t *testing.T, episodePath string) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(episodePath + ".json")
	require.NoError(t, err, "the episode's metadata sidecar")
	var m map[string]any
	require.NoError(t, json.Unmarshal(raw, &m))
	return m
}

var crashedAt = time.Date(2025, 6, 7, 8, 9, 10, 0, time.UTC)

func TestRetryWritesMissingSidecar(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := newStore(t, dir, Options{})
	body := []byte("stored, then the receiver was killed")
	sha := digest(body)
	path := crashedEpisode(t, dir, "lab-07", body, crashedAt)

	retry := EpisodeMeta{Episode: "ep-7.tar", Commit: "abc1234", Remote: "10.0.0.7:4000", ReceivedAt: time.Now()}
	res, err := s.PutEpisode(context.Background(), "lab-07", sha, bytes.NewReader(body), 1<<20, retry)
	require.NoError(t, err)
	want := PutResult{SHA256: sha, Size: int64(len(body)), ReceivedAt: crashedAt, Episode: "ep-7.tar"}
	assert.Equal(t, want, res)
	sidecar := map[string]any{
		"episode": "ep-7.tar", "size": float64(len(body)), "received_at": "2025-06-07T08:09:10Z",
		"commit": "abc1234", "remote": "10.0.0.7:4000", "repaired": true,
	}
	assert.Equal(t, sidecar, readSidecar(t, path))

	// Written once, it is what every later retry reports, and they change nothing.
	res, err = s.PutEpisode(context.Background(), "lab-07", sha, bytes.NewReader(body), 1<<20, EpisodeMeta{Episode: "renamed", Commit: "fffffff"})
	require.NoError(t, err)
	assert.Equal(t, want, res)
	assert.Equal(t, sidecar, readSidecar(t, path))
	assert.Equal(t, []string{"episodes/", "episodes/lab-07/", "episodes/lab-07/" + sha, "episodes/lab-07/" + sha + ".json", "host-health/", "tmp/"}, tree(t, dir))
}

// Retries under different names racing to repair one episode write one sidecar, and
// each is answered with the name it holds.
func TestConcurrentRetriesWriteOneSidecar(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := newStore(t, dir, Options{})
	body := []byte("stored, then the receiver was killed")
	path := crashedEpisode(t, dir, "lab-07", body, crashedAt)

	const n = 10
	results := make([]PutResult, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			results[i], errs[i] = s.PutEpisode(context.Background(), "lab-07", digest(body), bytes.NewReader(body), 1<<20,
				EpisodeMeta{Episode: fmt.Sprintf("ep-%d", i)})
		})
	}
	wg.Wait()
	stored := readSidecar(t, path)["episode"]
	for i := range n {
		require.NoError(t, errs[i])
		assert.Equal(t, stored, results[i].Episode, "retry %d", i)
	}
}

// Identical uploads under different names: whichever wins, every answer names the
// episode its sidecar names, even for a duplicate that arrives while the winner is
// between link and metadata.
func TestRacingUploadsAgreeWithTheSidecar(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := newStore(t, dir, Options{})
	body := bytes.Repeat([]byte("race"), 1<<18)
	sha := digest(body)

	const n = 12
	results := make([]PutResult, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			results[i], errs[i] = s.PutEpisode(context.Background(), "lab-07", sha, bytes.NewReader(body), 2<<20,
				EpisodeMeta{Episode: fmt.Sprintf("ep-%d", i)})
		})
	}
	close(start)
	wg.Wait()
	stored := readSidecar(t, filepath.Join(dir, "episodes", "lab-07", sha))
	assert.NotContains(t, stored, "repaired", "written by the upload that stored it")
	for i := range n {
		require.NoError(t, errs[i])
		assert.Equal(t, stored["episode"], results[i].Episode, "upload %d", i)
	}
}

// logLines parses the JSON lines a store logged.
func logLines(t *testing.T, b *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), line)
		out = append(out, m)
	}
	return out
}

// At start, episodes without a sidecar get one with what the file tells (size, time)
// and no name, marked repaired; the next retry, which knows the name, completes it.
func TestOpenWritesPlaceholderSidecars(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := newStore(t, dir, Options{})
	complete := []byte("an episode stored whole")
	_, err := s.PutEpisode(context.Background(), "lab-08", digest(complete), bytes.NewReader(complete), 1<<20, EpisodeMeta{Episode: "whole.tar"})
	require.NoError(t, err)
	completePath := filepath.Join(dir, "episodes", "lab-08", digest(complete))
	before, err := os.ReadFile(completePath + ".json")
	require.NoError(t, err)

	body := []byte("stored, then the receiver was killed")
	orphan := crashedEpisode(t, dir, "lab-07", body, crashedAt)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "episodes", "lab-07", "notes.txt"), []byte("not an episode"), 0o600))

	var log bytes.Buffer
	s, err = Open(dir, Options{Logger: zerolog.New(&log)})
	require.NoError(t, err)
	assert.Equal(t, map[string]any{
		"episode": "", "size": float64(len(body)), "received_at": "2025-06-07T08:09:10Z",
		"commit": "", "remote": "", "repaired": true,
	}, readSidecar(t, orphan))
	after, err := os.ReadFile(completePath + ".json")
	require.NoError(t, err)
	assert.Equal(t, string(before), string(after), "a complete sidecar is left alone")
	assert.NoFileExists(t, filepath.Join(dir, "episodes", "lab-07", "notes.txt.json"), "only episodes get sidecars")

	var found map[string]any
	for _, l := range logLines(t, &log) {
		if l["count"] != nil {
			found = l
		}
	}
	require.NotNil(t, found, "a log line counts the repairs:\n%s", log.String())
	assert.Equal(t, "warn", found["level"])
	assert.EqualValues(t, 1, found["count"])
	assert.Equal(t, []any{orphan}, found["paths"])

	res, err := s.PutEpisode(context.Background(), "lab-07", digest(body), bytes.NewReader(body), 1<<20,
		EpisodeMeta{Episode: "ep-7.tar", Commit: "abc1234", Remote: "10.0.0.7:4000"})
	require.NoError(t, err)
	assert.Equal(t, "ep-7.tar", res.Episode)
	assert.Equal(t, map[string]any{
		"episode": "ep-7.tar", "size": float64(len(body)), "received_at": "2025-06-07T08:09:10Z",
		"commit": "abc1234", "remote": "10.0.0.7:4000", "repaired": true,
	}, readSidecar(t, orphan))

	log.Reset()
	_, err = Open(dir, Options{Logger: zerolog.New(&log)})
	require.NoError(t, err)
	assert.NotContains(t, log.String(), `"count"`, "nothing left to repair")
}

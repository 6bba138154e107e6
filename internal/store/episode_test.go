package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPutEpisodeThenDuplicate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := newStore(t, dir, Options{})
	ctx := context.Background()
	body := []byte("a tarball, exactly as received")
	sha := digest(body)
	at := time.Date(2025, 3, 4, 5, 6, 7, 8, time.UTC)
	meta := EpisodeMeta{Episode: "ep-001.tar.zst", Commit: "abc1234", Remote: "10.0.0.7:51234", ReceivedAt: at}

	_, found, err := s.Stored(t.Context(), "lab-07", sha, meta)
	require.NoError(t, err)
	assert.False(t, found)

	res, err := s.PutEpisode(ctx, "lab-07", sha, bytes.NewReader(body), int64(len(body)), meta)
	require.NoError(t, err)
	assert.Equal(t, PutResult{SHA256: sha, Size: int64(len(body)), Created: true, ReceivedAt: at, Episode: meta.Episode}, res)

	path := filepath.Join(dir, "episodes", "lab-07", sha)
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, body, got)
	var onDisk map[string]any
	raw, err := os.ReadFile(path + ".json")
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &onDisk))
	assert.Equal(t, map[string]any{
		"episode": "ep-001.tar.zst", "size": float64(len(body)), "received_at": "2025-03-04T05:06:07.000000008Z",
		"commit": "abc1234", "remote": "10.0.0.7:51234",
	}, onDisk)

	stored, found, err := s.Stored(t.Context(), "lab-07", sha, EpisodeMeta{Episode: "asked-again"})
	require.NoError(t, err)
	assert.True(t, found)
	assert.Equal(t, PutResult{SHA256: sha, Size: int64(len(body)), ReceivedAt: at, Episode: meta.Episode}, stored)

	// A retry under another name and commit is still the same bytes: it reports
	// what was stored first.
	again := EpisodeMeta{Episode: "renamed", Commit: "fffffff", ReceivedAt: at.Add(time.Hour)}
	res, err = s.PutEpisode(ctx, "lab-07", sha, bytes.NewReader(body), 1<<20, again)
	require.NoError(t, err)
	assert.Equal(t, PutResult{SHA256: sha, Size: int64(len(body)), ReceivedAt: at, Episode: meta.Episode}, res)
	assert.Equal(t, []string{"episodes/", "episodes/lab-07/", "episodes/lab-07/" + sha, "episodes/lab-07/" + sha + ".json", "host-health/", "tmp/"}, tree(t, dir))
}

func TestPutEpisodeDefaultsAndFallbacks(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := newStore(t, dir, Options{})
	ctx := context.Background()
	body := []byte{}
	sha := digest(body)

	before := time.Now()
	res, err := s.PutEpisode(ctx, "lab-07", sha, bytes.NewReader(body), 0, EpisodeMeta{Episode: "empty"})
	require.NoError(t, err)
	assert.True(t, res.Created)
	assert.WithinRange(t, res.ReceivedAt, before, time.Now())
	st, err := os.Stat(filepath.Join(dir, "episodes", "lab-07", sha))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(filePerm), st.Mode().Perm())

	// A crash between link and metadata leaves the tarball alone; it still counts.
	require.NoError(t, os.Remove(filepath.Join(dir, "episodes", "lab-07", sha+".json")))
	res, err = s.PutEpisode(ctx, "lab-07", sha, bytes.NewReader(body), 0, EpisodeMeta{Episode: "retry"})
	require.NoError(t, err)
	assert.False(t, res.Created)
	assert.Equal(t, "retry", res.Episode)
	assert.Equal(t, st.ModTime().UTC(), res.ReceivedAt)
}

func TestConcurrentIdenticalUploadsStoreOneCopy(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := newStore(t, dir, Options{})
	body := bytes.Repeat([]byte("0123456789abcdef"), 1<<17) // 2 MiB, so the uploads overlap
	sha := digest(body)

	const n = 20
	results := make([]PutResult, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			results[i], errs[i] = s.PutEpisode(context.Background(), "lab-07", sha, bytes.NewReader(body), 4<<20, EpisodeMeta{Episode: "ep"})
		})
	}
	close(start)
	wg.Wait()

	created := 0
	for i := range n {
		require.NoError(t, errs[i])
		assert.Equal(t, int64(len(body)), results[i].Size)
		assert.Equal(t, "ep", results[i].Episode)
		if results[i].Created {
			created++
		}
	}
	assert.Equal(t, 1, created)
	assert.Equal(t, []string{"episodes/", "episodes/lab-07/", "episodes/lab-07/" + sha, "episodes/lab-07/" + sha + ".json", "host-health/", "tmp/"}, tree(t, dir))
}

var errDisconnect = errors.New("client went away")

// brokenReader delivers half the body, then fails the way a dropped connection does.
type brokenReader struct{ r io.Reader }

func (b *brokenReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF {
		return n, errDisconnect
	}
	return n, err
}

// cancellingReader cancels the upload's context once the body has started to arrive.
type cancellingReader struct {
	r      io.Reader
	cancel context.CancelFunc
}

func (c *cancellingReader) Read(p []byte) (int, error) {
	c.cancel()
	return c.r.Read(p)
}

func TestFailedUploadsKeepNothing(t *testing.T) {
	t.Parallel()
	big := bytes.Repeat([]byte("z"), 3<<20+5) // more than one chunk, not whole blocks
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()

	tests := []struct {
		name     string
		ctx      context.Context
		body     func(cancel context.CancelFunc) io.Reader
		sha      string
		maxBytes int64
		want     error
	}{
		{"digest mismatch", context.Background(), whole(big), digest([]byte("other")), 4 << 20, ErrDigestMismatch},
		{"one byte too large", context.Background(), whole(big), digest(big), int64(len(big)) - 1, ErrTooLarge},
		{"far too large", context.Background(), whole(big), digest(big), 1 << 20, ErrTooLarge},
		{"client disconnects", context.Background(), func(context.CancelFunc) io.Reader { return &brokenReader{bytes.NewReader(big[:len(big)/2])} }, digest(big), 4 << 20, errDisconnect},
		{"context cancelled before", cancelled, whole(big), digest(big), 4 << 20, context.Canceled},
		{"context cancelled midway", nil, func(cancel context.CancelFunc) io.Reader { return &cancellingReader{bytes.NewReader(big), cancel} }, digest(big), 4 << 20, context.Canceled},
		{"negative limit", context.Background(), whole(big), digest(big), -1, nil},
	}
	for _, mode := range writeModes {
		for _, tt := range tests {
			t.Run(mode.name+"/"+tt.name, func(t *testing.T) {
				dir := t.TempDir()
				s := storeIn(t, dir, mode.direct)
				ctx, cancel := tt.ctx, context.CancelFunc(func() {})
				if ctx == nil {
					ctx, cancel = context.WithCancel(context.Background())
					defer cancel()
				}
				_, err := s.PutEpisode(ctx, "lab-07", tt.sha, tt.body(cancel), tt.maxBytes, EpisodeMeta{Episode: "ep"})
				require.Error(t, err)
				if tt.want != nil {
					assert.ErrorIs(t, err, tt.want)
				}
				assert.Equal(t, emptyStore, tree(t, dir))
			})
		}
	}
}

func whole(b []byte) func(context.CancelFunc) io.Reader {
	return func(context.CancelFunc) io.Reader { return bytes.NewReader(b) }
}

func TestDigestMismatchNamesBoth(t *testing.T) {
	t.Parallel()
	s := newStore(t, t.TempDir(), Options{})
	body := []byte("corrupted in transit")
	declared := digest([]byte("what was sent"))
	_, err := s.PutEpisode(context.Background(), "lab-07", declared, bytes.NewReader(body), 1<<20, EpisodeMeta{Episode: "ep"})
	var mismatch *DigestMismatchError
	require.ErrorAs(t, err, &mismatch)
	assert.Equal(t, DigestMismatchError{Declared: declared, Got: digest(body)}, *mismatch)
}

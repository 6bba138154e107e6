package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func newStore(t testing.TB, dir string, opts Options) *Store {
	t.Helper()
	opts.Logger = zerolog.New(zerolog.NewTestWriter(t))
	s, err := Open(dir, opts)
	require.NoError(t, err)
	return s
}

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// tree lists every path under root, relative to it, with "/" after directories.
func tree(t *testing.T, root string) []string {
	t.Helper()
	var paths []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() {
			rel += "/"
		}
		paths = append(paths, rel)
		return nil
	})
	require.NoError(t, err)
	return paths
}

var emptyStore = []string{"episodes/", "host-health/", "tmp/"}

func TestOpenCreatesLayout(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "new", "data")
	newStore(t, dir, Options{})
	assert.Equal(t, emptyStore, tree(t, dir))
	st, err := os.Stat(dir)
	require.NoError(t, err)
	// The umask may take bits away, never add them; reading it would mean changing
	// it for the whole (parallel) test binary.
	assert.Zero(t, st.Mode().Perm()&^0o750, "data dir mode %v", st.Mode())
}

func TestOpenSweepsTmp(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	newStore(t, dir, Options{})
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tmp", "ep-123"), []byte("half an upload"), 0o600))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "tmp", "stray", "deep"), 0o750))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "host-health", "lab-01.json"), []byte(`{}`), 0o600))

	var log bytes.Buffer
	_, err := Open(dir, Options{Logger: zerolog.New(&log)})
	require.NoError(t, err)
	assert.Equal(t, []string{"episodes/", "host-health/", "host-health/lab-01.json", "tmp/"}, tree(t, dir))
	assert.Contains(t, log.String(), `"removed":2`)
}

func TestOpenErrorsSayWhatToDo(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "not-a-dir")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	for _, dir := range []string{"", file} {
		_, err := Open(dir, Options{Logger: zerolog.Nop()})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "serve.data_dir")
	}
}

func TestCheckFree(t *testing.T) {
	t.Parallel()
	s := newStore(t, t.TempDir(), Options{})
	free, err := s.FreeBytes()
	require.NoError(t, err)
	assert.Positive(t, free)
	assert.NoError(t, s.CheckFree(0))
	assert.ErrorIs(t, s.CheckFree(1<<62), ErrNoSpace)
}

func TestMinFreeBytesRefusesUploads(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := newStore(t, dir, Options{MinFreeBytes: 1 << 62})
	err := s.CheckFree(0)
	require.ErrorIs(t, err, ErrNoSpace)
	assert.Contains(t, err.Error(), "min_free_bytes")

	body := []byte("episode")
	_, err = s.PutEpisode(context.Background(), "lab-07", digest(body), bytes.NewReader(body), 1<<20, EpisodeMeta{Episode: "ep"})
	require.ErrorIs(t, err, ErrNoSpace)
	assert.Equal(t, emptyStore, tree(t, dir))
}

// A tiny tmpfs is the honest way to get ENOSPC from write(2) in the middle of an
// upload; faking the error would not prove that the partial file is removed.
func TestFullDiskMidUpload(t *testing.T) {
	t.Parallel()
	for _, mode := range writeModes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
				t.Skipf("cannot mount a tmpfs to fill up (needs root outside a sandbox): %v", err)
			}
			t.Cleanup(func() { assert.NoError(t, unix.Unmount(dir, 0)) })

			s := storeIn(t, dir, mode.direct)
			body := bytes.Repeat([]byte("x"), 2<<20)
			_, err := s.PutEpisode(context.Background(), "lab-07", digest(body), bytes.NewReader(body), 4<<20, EpisodeMeta{Episode: "ep"})
			require.ErrorIs(t, err, ErrNoSpace)
			assert.Equal(t, emptyStore, tree(t, dir))

			small := []byte("still works once space is back")
			_, err = s.PutEpisode(context.Background(), "lab-07", digest(small), bytes.NewReader(small), 1<<20, EpisodeMeta{Episode: "ep"})
			assert.NoError(t, err)
		})
	}
}

func TestBadNamesWriteNothing(t *testing.T) {
	t.Parallel()
	parent := t.TempDir()
	dir := filepath.Join(parent, "data")
	s := newStore(t, dir, Options{})
	body := []byte("x")
	sha := digest(body)

	hosts := []string{
		"", ".", "..", "../x", "a/b", "lab-07/../../etc", "%2e%2e", "lab\x00", "läb",
		"LAB-07", " lab", "-lab", "lab_07", strings.Repeat("a", 254), "a..b", `a\b`,
	}
	episodes := []string{"", ".", "..", "../x", "a/b", ".hidden", "-x", "ep\x00", "épisode", "ep name", strings.Repeat("e", 201)}
	shas := []string{
		"", strings.ToUpper(sha), sha[:63], sha + "0", "../" + sha[3:], strings.Repeat("g", 64), sha[:32] + "/" + sha[33:],
	}
	ctx := context.Background()
	check := func(name string, err error) {
		t.Helper()
		assert.ErrorIs(t, err, ErrBadName, name)
	}
	for _, h := range hosts {
		_, err := s.PutEpisode(ctx, h, sha, bytes.NewReader(body), 10, EpisodeMeta{Episode: "ep"})
		check("put host "+h, err)
		_, _, err = s.Stored(t.Context(), h, sha, EpisodeMeta{Episode: "ep"})
		check("stored host "+h, err)
		check("put health "+h, s.PutHostHealth(h, []byte(`{}`), time.Now()))
		_, err = s.HostHealth(h)
		check("get health "+h, err)
	}
	for _, e := range episodes {
		_, err := s.PutEpisode(ctx, "lab-07", sha, bytes.NewReader(body), 10, EpisodeMeta{Episode: e})
		check("put episode "+e, err)
		_, _, err = s.Stored(t.Context(), "lab-07", sha, EpisodeMeta{Episode: e})
		check("stored episode "+e, err)
	}
	for _, bad := range shas {
		_, err := s.PutEpisode(ctx, "lab-07", bad, bytes.NewReader(body), 10, EpisodeMeta{Episode: "ep"})
		check("put sha "+bad, err)
		_, _, err = s.Stored(t.Context(), "lab-07", bad, EpisodeMeta{Episode: "ep"})
		check("stored sha "+bad, err)
	}
	assert.Equal(t, []string{"data/", "data/episodes/", "data/host-health/", "data/tmp/"}, tree(t, parent))
}

// Concurrent uploads that each fit must not together breach MinFreeBytes.
func TestReserveCountsUploadsInFlight(t *testing.T) {
	t.Parallel()
	const gib = int64(1 << 30)
	st := newStore(t, t.TempDir(), Options{MinFreeBytes: 100 * gib})
	useFakeDisk(st, 103*gib)
	first, err := st.reserve(2 * gib)
	require.NoError(t, err, "one 2 GiB upload fits in the 3 GiB above the floor")
	_, err = st.reserve(2 * gib)
	require.ErrorIs(t, err, ErrNoSpace, "a second one would not")
	require.ErrorIs(t, st.CheckFree(2*gib), ErrNoSpace)
	first.release()
	second, err := st.reserve(2 * gib)
	require.NoError(t, err, "released space is available again")
	second.release()
	assert.Zero(t, st.reserved.Load())
}

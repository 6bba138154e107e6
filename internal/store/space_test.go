package store

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// fakeDisk stands in for statfs, because a full or dying SD card cannot be had here:
// a disk with free bytes that shrinks by what the store's uploads write (and, to keep
// it simple, does not grow back when a refused upload's file is removed).
type fakeDisk struct {
	free, least atomic.Int64
}

func useFakeDisk(s *Store, free int64) *fakeDisk {
	d := &fakeDisk{}
	d.free.Store(free)
	d.least.Store(free)
	s.statfs = func(_ string, st *unix.Statfs_t) error {
		*st = unix.Statfs_t{Bsize: 1, Bavail: uint64(max(d.free.Load(), 0))}
		return nil
	}
	s.pwrite = func(fd int, p []byte, off int64) (int, error) {
		n, err := unix.Pwrite(fd, p, off)
		left := d.free.Add(-int64(max(n, 0)))
		for least := d.least.Load(); left < least && !d.least.CompareAndSwap(least, left); least = d.least.Load() {
		}
		return n, err
	}
	return d
}

const mib = 1 << 20

// A body without Content-Length (chunked) is held to min_free_bytes as it arrives:
// refused as soon as the next chunk would not fit above the floor, keeping nothing.
func TestChunkedBodyKeepsMinFree(t *testing.T) {
	t.Parallel()
	const floor, room = 100 * mib, 8 * mib
	for _, tc := range []struct {
		name string
		size int
		ok   bool
	}{
		{"fits", room - 12345, true},
		{"fits exactly", room, true},
		{"one byte over", room + 1, false},
		{"far over", 30 * mib, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			s := storeIn(t, dir, false) // buffered: the fake counts no O_DIRECT padding
			s.opts.MinFreeBytes = floor
			disk := useFakeDisk(s, floor+room)
			body := randomBody(tc.size)
			_, err := s.PutEpisode(context.Background(), "lab-07", digest(body), &pieces{bytes.NewReader(body), 70000}, 1<<30, EpisodeMeta{Episode: "ep"})
			if tc.ok {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, ErrNoSpace)
				assert.Contains(t, err.Error(), "min_free_bytes")
				assert.Equal(t, emptyStore, tree(t, dir))
			}
			assert.GreaterOrEqual(t, disk.least.Load(), int64(floor), "free space never below min_free_bytes")
			assertNothingInFlight(t, s, dir)
			assert.Zero(t, s.reserved.Load(), "every reservation given back")
		})
	}
}

// gatedReader hands out its bytes only as the test releases them.
type gatedReader struct {
	r    io.Reader
	gate chan int // how many more bytes may be read
	left int
}

func (g *gatedReader) Read(b []byte) (int, error) {
	if g.left == 0 {
		n, ok := <-g.gate
		if !ok {
			return 0, io.EOF
		}
		g.left = n
	}
	n, err := g.r.Read(b[:min(len(b), g.left)])
	g.left -= n
	return n, err
}

// An upload that declared its length holds all of it from the start: a chunked one
// alongside cannot take that space, and one declaring more than there is room for is
// refused before its body is read.
func TestDeclaredLengthIsHeldForTheWholeUpload(t *testing.T) {
	t.Parallel()
	const floor, room = 100 * mib, 8 * mib
	dir := t.TempDir()
	s := storeIn(t, dir, false)
	s.opts.MinFreeBytes = floor
	disk := useFakeDisk(s, floor+room)

	declared := randomBody(6 * mib)
	gate := make(chan int)
	done := make(chan error, 1)
	go func() {
		_, err := s.PutEpisode(context.Background(), "lab-07", digest(declared), &gatedReader{r: bytes.NewReader(declared), gate: gate}, 1<<30,
			EpisodeMeta{Episode: "declared", Size: int64(len(declared))})
		done <- err
	}()
	gate <- mib // the declared upload is under way

	chunked := randomBody(3 * mib)
	_, err := s.PutEpisode(context.Background(), "lab-08", digest(chunked), bytes.NewReader(chunked), 1<<30, EpisodeMeta{Episode: "chunked"})
	require.ErrorIs(t, err, ErrNoSpace, "2 MiB are left beside the declared 6 MiB")

	unread := &gatedReader{r: bytes.NewReader(chunked), gate: make(chan int)} // any read would block
	_, err = s.PutEpisode(context.Background(), "lab-09", digest(chunked), unread, 1<<30, EpisodeMeta{Episode: "too-big", Size: 3 * mib})
	require.ErrorIs(t, err, ErrNoSpace)

	gate <- len(declared)
	close(gate)
	require.NoError(t, <-done)
	assert.GreaterOrEqual(t, disk.least.Load(), int64(floor))
	assert.FileExists(t, filepath.Join(dir, "episodes", "lab-07", digest(declared)))
	assert.NoDirExists(t, filepath.Join(dir, "episodes", "lab-08"))
	assert.NoDirExists(t, filepath.Join(dir, "episodes", "lab-09"))
	assertNothingInFlight(t, s, dir)
	assert.Zero(t, s.reserved.Load(), "every reservation given back")
}

// On a real (small) file system, concurrent chunked uploads that together would cross
// min_free_bytes: some are refused, free space never falls below the floor, and
// nothing partial stays in tmp/. The five 30 MB uploads that took a disk from 186 MB
// to 29 MB free with a 100 MiB floor, scaled down to a 64 MiB tmpfs.
func TestConcurrentChunkedUploadsKeepMinFree(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=64m"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("cannot mount a tmpfs (CI runs as root, so it must): %v", err)
		}
		t.Skipf("cannot mount a tmpfs (needs root outside a sandbox): %v", err)
	}
	t.Cleanup(func() { assert.NoError(t, unix.Unmount(dir, 0)) })
	const floor = 24 * mib
	s := newStore(t, dir, Options{MinFreeBytes: floor})
	// Free space right after each write: it only falls when something is written.
	var least atomic.Int64
	least.Store(1 << 62)
	s.pwrite = func(fd int, p []byte, off int64) (int, error) {
		n, err := unix.Pwrite(fd, p, off)
		var st unix.Statfs_t
		if unix.Statfs(dir, &st) == nil {
			free := int64(st.Bavail) * int64(st.Bsize)
			for l := least.Load(); free < l && !least.CompareAndSwap(l, free); l = least.Load() {
			}
		}
		return n, err
	}

	const uploads, size = 6, 12 * mib // 72 MiB, with 40 MiB above the floor
	errs := make([]error, uploads)
	bodies := make([][]byte, uploads)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range uploads {
		bodies[i] = randomBody(size + i)
		wg.Go(func() {
			<-start
			_, errs[i] = s.PutEpisode(context.Background(), "lab-07", digest(bodies[i]), &pieces{bytes.NewReader(bodies[i]), 64 << 10}, 1<<30, EpisodeMeta{Episode: "ep"})
		})
	}
	close(start)
	wg.Wait()

	refused := 0
	for i, err := range errs {
		if err != nil {
			require.ErrorIs(t, err, ErrNoSpace, "upload %d", i)
			refused++
			continue
		}
		got, err := os.ReadFile(filepath.Join(dir, "episodes", "lab-07", digest(bodies[i])))
		require.NoError(t, err)
		assert.True(t, bytes.Equal(bodies[i], got), "upload %d stored whole", i)
	}
	assert.Positive(t, refused, "72 MiB cannot fit in the 40 MiB above the floor")
	// Sidecars and directories are not reserved: a few pages.
	assert.GreaterOrEqual(t, least.Load(), int64(floor-64<<10), "free space stays above min_free_bytes")
	assertNothingInFlight(t, s, dir)
	assert.Zero(t, s.reserved.Load(), "every reservation given back")
	t.Logf("%d of %d refused; least free %d bytes, floor %d", refused, uploads, least.Load(), floor)
}

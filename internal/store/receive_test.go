package store

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// writeModes are the two ways an upload reaches the disk: O_DIRECT where the file
// system takes it (ext4 on a Pi's SD card does), buffered writes where it does not.
var writeModes = []struct {
	name   string
	direct bool
}{{"direct", true}, {"buffered", false}}

// requireDirectEnv makes a file system without O_DIRECT fail the direct-mode tests
// instead of skipping them; .ci/run sets it, so CI always tests both modes.
const requireDirectEnv = "CIS490_TEST_REQUIRE_DIRECT_IO"

// storeIn opens a store in dir that writes uploads the given way. The buffered mode
// is what Open picks on a file system that refuses O_DIRECT; forcing it here tests
// that path on any file system.
func storeIn(t *testing.T, dir string, direct bool) *Store {
	t.Helper()
	s := newStore(t, dir, Options{})
	if direct && !s.direct.Load() {
		if os.Getenv(requireDirectEnv) != "" {
			t.Fatalf("the file system of %s refuses O_DIRECT, and %s is set", dir, requireDirectEnv)
		}
		t.Skipf("the file system of %s refuses O_DIRECT; only buffered uploads can be tested here", dir)
	}
	s.direct.Store(direct)
	return s
}

// pieces returns at most max bytes per Read, as a network does, so chunks are filled
// from many reads.
type pieces struct {
	r   io.Reader
	max int
}

func (p *pieces) Read(b []byte) (int, error) { return p.r.Read(b[:min(len(b), p.max)]) }

func randomBody(size int) []byte {
	b := make([]byte, size)
	_, _ = rand.NewChaCha8([32]byte{'b', 'o', 'd', 'y', byte(size)}).Read(b)
	return b
}

func assertNothingInFlight(t *testing.T, s *Store, dir string) {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, "tmp"))
	require.NoError(t, err)
	assert.Empty(t, entries, "nothing may stay behind in tmp/")
	assert.Zero(t, len(s.spares), "every spare chunk given back")
}

// Sizes around the block and chunk boundaries: O_DIRECT writes whole blocks, so the
// last chunk is padded and the file cut back to the body's size.
func TestUploadSizesRoundTrip(t *testing.T) {
	t.Parallel()
	sizes := []int{0, 1, dioAlign - 1, dioAlign, dioAlign + 1, chunkSize - 1, chunkSize, chunkSize + 1, 5*chunkSize + 12345}
	for _, mode := range writeModes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			s := storeIn(t, dir, mode.direct)
			for _, size := range sizes {
				body := randomBody(size)
				sha := digest(body)
				res, err := s.PutEpisode(context.Background(), "lab-07", sha, &pieces{bytes.NewReader(body), 7000}, 1<<30, EpisodeMeta{Episode: "ep"})
				require.NoError(t, err, "size %d", size)
				assert.Equal(t, int64(size), res.Size)
				got, err := os.ReadFile(filepath.Join(dir, "episodes", "lab-07", sha))
				require.NoError(t, err)
				assert.True(t, bytes.Equal(body, got), "size %d: stored bytes differ from the body", size)
			}
			assertNothingInFlight(t, s, dir)
		})
	}
}

// A disk can fail in the middle of an upload (a dead SD card cannot be had here, so
// pwrite fails on cue): the upload reports it and keeps nothing, in both modes,
// whether the failure comes as an error or as a short write first.
func TestWriteErrorMidUpload(t *testing.T) {
	t.Parallel()
	for _, mode := range writeModes {
		for _, tc := range []struct {
			name  string
			short bool
			errno error
			want  error
		}{
			{"disk full", false, unix.ENOSPC, ErrNoSpace},
			{"short write, then disk full", true, unix.ENOSPC, ErrNoSpace},
			{"I/O error", false, unix.EIO, unix.EIO},
		} {
			t.Run(mode.name+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				dir := t.TempDir()
				s := storeIn(t, dir, mode.direct)
				var calls atomic.Int32
				s.pwrite = func(fd int, p []byte, off int64) (int, error) {
					switch calls.Add(1) {
					case 1, 2:
						return unix.Pwrite(fd, p, off)
					case 3:
						if tc.short {
							return unix.Pwrite(fd, p[:dioAlign], off)
						}
					}
					return 0, tc.errno
				}
				body := randomBody(6 * chunkSize)
				_, err := s.PutEpisode(context.Background(), "lab-07", digest(body), bytes.NewReader(body), 1<<30, EpisodeMeta{Episode: "ep"})
				require.ErrorIs(t, err, tc.want)
				assert.NotErrorIs(t, err, unix.EINVAL, "the write's own error, not one from a retry at a bad offset")
				assert.Equal(t, emptyStore, tree(t, dir))
				assertNothingInFlight(t, s, dir)
			})
		}
	}
}

// A file system can refuse O_DIRECT after Open's probe said yes (remounted, or
// something mounted over tmp/). Here pwrite refuses any write on a file opened with
// O_DIRECT, as such a file system does: the upload goes on buffered, and so do the
// next ones. Both writers of an upload may be refused at once; the one that finds the
// other has already fallen back must retry buffered too.
func TestDirectIORefusedAfterOpen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := storeIn(t, dir, true)
	var refused atomic.Int32
	s.pwrite = func(fd int, p []byte, off int64) (int, error) {
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
		if err != nil {
			// Not require: this runs on a writer goroutine. The error fails the
			// upload, and the test goroutine reports it.
			return 0, fmt.Errorf("test pwrite: F_GETFL: %w", err)
		}
		if flags&unix.O_DIRECT != 0 {
			refused.Add(1)
			return 0, unix.EINVAL
		}
		return unix.Pwrite(fd, p, off)
	}
	for _, size := range []int{3*chunkSize + 77, 12345} {
		body := randomBody(size)
		sha := digest(body)
		_, err := s.PutEpisode(context.Background(), "lab-07", sha, bytes.NewReader(body), 1<<30, EpisodeMeta{Episode: "ep"})
		require.NoError(t, err)
		got, err := os.ReadFile(filepath.Join(dir, "episodes", "lab-07", sha))
		require.NoError(t, err)
		assert.True(t, bytes.Equal(body, got), "size %d: stored bytes differ from the body", size)
		assert.False(t, s.direct.Load(), "the store stops using O_DIRECT")
	}
	assert.LessOrEqual(t, refused.Load(), int32(writers), "at most the writes already in flight are refused")
	assertNothingInFlight(t, s, dir)
}

type panickingReader struct {
	r     io.Reader
	after int
}

func (p *panickingReader) Read(b []byte) (int, error) {
	if p.after <= 0 {
		panic("reader broke")
	}
	n, err := p.r.Read(b[:min(len(b), p.after)])
	p.after -= n
	return n, err
}

// net/http recovers a handler's panic and goes on serving: the upload must not hang
// on its way out, nor keep its file or its chunks.
func TestPanicInBodyReadLeavesNothing(t *testing.T) {
	t.Parallel()
	for _, mode := range writeModes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			s := storeIn(t, dir, mode.direct)
			body := randomBody(4 * chunkSize)
			done := make(chan any)
			go func() {
				defer func() { done <- recover() }()
				_, _ = s.PutEpisode(context.Background(), "lab-07", digest(body), &panickingReader{bytes.NewReader(body), 2*chunkSize + 5}, 1<<30, EpisodeMeta{Episode: "ep"})
			}()
			select {
			case p := <-done:
				assert.Equal(t, "reader broke", p)
			case <-time.After(10 * time.Second):
				t.Fatal("PutEpisode hung after its body reader panicked")
			}
			assert.Equal(t, emptyStore, tree(t, dir))
			assertNothingInFlight(t, s, dir)
		})
	}
}

// Many uploads at once, some failing in each way, share the spares and give every one
// back; only the good ones are kept.
func TestConcurrentUploadsWithFailures(t *testing.T) {
	t.Parallel()
	for _, mode := range writeModes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			s := storeIn(t, dir, mode.direct)
			var wg sync.WaitGroup
			var stored atomic.Int32
			for i := range 12 {
				body := randomBody(2*chunkSize + i*1000)
				sha := digest(body)
				var r io.Reader = bytes.NewReader(body)
				switch i % 4 {
				case 1:
					sha = digest([]byte("something else"))
				case 2:
					r = &brokenReader{bytes.NewReader(body[:chunkSize+3])}
				case 3:
					r = &pieces{r, 1500}
				}
				wg.Go(func() {
					_, err := s.PutEpisode(context.Background(), "lab-07", sha, r, 1<<30, EpisodeMeta{Episode: "ep"})
					if i%4 == 1 || i%4 == 2 {
						assert.Error(t, err)
						return
					}
					if assert.NoError(t, err) {
						stored.Add(1)
					}
				})
			}
			wg.Wait()
			assert.Equal(t, int32(6), stored.Load())
			entries, err := os.ReadDir(filepath.Join(dir, "episodes", "lab-07"))
			require.NoError(t, err)
			assert.Len(t, entries, 12, "6 tarballs and their metadata")
			assertNothingInFlight(t, s, dir)
		})
	}
}

// Memory must not grow with the number of uploads: beyond one chunk each, uploads
// share spareChunks, and give them back when they end.
func TestUploadsShareSpareChunks(t *testing.T) {
	t.Parallel()
	s := storeIn(t, t.TempDir(), false)
	var ps []*pipeline
	total := 0
	for range spareChunks {
		f, direct, err := s.createUpload()
		require.NoError(t, err)
		t.Cleanup(func() { f.Close(); os.Remove(f.Name()) })
		p := s.startPipeline(&upload{f: f, direct: direct}, nil) // nothing is dispatched, so nothing is reserved
		ps = append(ps, p)
		assert.GreaterOrEqual(t, len(p.all), 1, "every upload gets a chunk")
		assert.LessOrEqual(t, len(p.all), ringSize)
		total += len(p.all)
	}
	assert.Equal(t, spareChunks+spareChunks, total, "%d uploads: one chunk each plus the %d spares", spareChunks, spareChunks)
	for _, p := range ps {
		require.NoError(t, p.stop())
		require.NoError(t, p.stop(), "stop twice")
	}
	assert.Zero(t, len(s.spares), "spares given back")

	f, direct, err := s.createUpload()
	require.NoError(t, err)
	defer os.Remove(f.Name())
	defer f.Close()
	p := s.startPipeline(&upload{f: f, direct: direct}, nil) // nothing is dispatched, so nothing is reserved
	assert.Len(t, p.all, ringSize, "a lone upload gets a full ring again")
	require.NoError(t, p.stop())
}

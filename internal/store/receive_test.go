package store

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// writeModes are the two ways an upload reaches the disk: O_DIRECT where the file
// system takes it (ext4 on a Pi's SD card does), buffered writes where it does not.
var writeModes = []struct {
	name   string
	direct bool
}{{"direct", true}, {"buffered", false}}

// storeIn opens a store in dir that writes uploads the given way. The buffered mode
// is what Open picks on a file system that refuses O_DIRECT; forcing it here tests
// that path on any file system.
func storeIn(t *testing.T, dir string, direct bool) *Store {
	t.Helper()
	s := newStore(t, dir, Options{})
	if direct && !s.direct {
		t.Skipf("the file system of %s refuses O_DIRECT; only buffered uploads can be tested here", dir)
	}
	s.direct = direct
	return s
}

// pieces returns at most max bytes per Read, as a network does, so chunks are filled
// from many reads.
type pieces struct {
	r   io.Reader
	max int
}

func (p *pieces) Read(b []byte) (int, error) { return p.r.Read(b[:min(len(b), p.max)]) }

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
			rng := rand.NewChaCha8([32]byte{'s', 'i', 'z', 'e'})
			for _, size := range sizes {
				body := make([]byte, size)
				_, _ = rng.Read(body)
				sha := digest(body)
				res, err := s.PutEpisode(context.Background(), "lab-07", sha, &pieces{bytes.NewReader(body), 7000}, 1<<30, EpisodeMeta{Episode: "ep"})
				require.NoError(t, err, "size %d", size)
				assert.Equal(t, int64(size), res.Size)
				got, err := os.ReadFile(filepath.Join(dir, "episodes", "lab-07", sha))
				require.NoError(t, err)
				assert.True(t, bytes.Equal(body, got), "size %d: stored bytes differ from the body", size)
			}
			entries, err := os.ReadDir(filepath.Join(dir, "tmp"))
			require.NoError(t, err)
			assert.Empty(t, entries, "nothing may stay behind in tmp/")
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
		p := startPipeline(f, direct, s.spares)
		ps = append(ps, p)
		assert.GreaterOrEqual(t, p.chunks, 1, "every upload gets a chunk")
		assert.LessOrEqual(t, p.chunks, ringSize)
		total += p.chunks
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
	p := startPipeline(f, direct, s.spares)
	assert.Equal(t, ringSize, p.chunks, "a lone upload gets a full ring again")
	require.NoError(t, p.stop())
}

package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"hash"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// heldReader delivers its first n bytes, says so on reached, then blocks until
// released, and fails then as a dropped connection does (or goes on, with rest).
type heldReader struct {
	r        io.Reader
	n        int
	reached  chan struct{}
	released chan struct{}
	once     sync.Once
	rest     bool // after the release, deliver the rest instead of failing
}

func holdAfter(body []byte, n int) *heldReader {
	return &heldReader{r: bytes.NewReader(body), n: n, reached: make(chan struct{}), released: make(chan struct{})}
}

func (h *heldReader) Read(p []byte) (int, error) {
	if h.n > 0 {
		m, err := h.r.Read(p[:min(len(p), h.n)])
		h.n -= m
		return m, err
	}
	h.once.Do(func() { close(h.reached) })
	<-h.released
	if h.rest {
		return h.r.Read(p)
	}
	return 0, errDisconnect
}

func (h *heldReader) release() {
	select {
	case <-h.released:
	default:
		close(h.released)
	}
}

func partialFiles(host, sha string) []string {
	return []string{"tmp/partial/", "tmp/partial/" + host + "/", "tmp/partial/" + host + "/" + sha, "tmp/partial/" + host + "/" + sha + ".state"}
}

func storedTree(host, sha string) []string {
	return []string{"episodes/", "episodes/" + host + "/", "episodes/" + host + "/" + sha, "episodes/" + host + "/" + sha + ".json", "host-health/", "tmp/"}
}

// cut uploads body to s as host and lets only its first n bytes arrive.
func cut(t *testing.T, s *Store, host string, body []byte, n int) *CutError {
	t.Helper()
	_, err := s.PutResumable(t.Context(), Upload{Host: host, SHA256: digest(body), Body: &brokenReader{bytes.NewReader(body[:n])},
		MaxBytes: 1 << 30, Meta: EpisodeMeta{Episode: "ep.tar", Size: int64(len(body))}})
	var ce *CutError
	require.ErrorAs(t, err, &ce)
	require.ErrorIs(t, err, errDisconnect, "the read's own error")
	return ce
}

func resume(s *Store, host string, body []byte, off int64, r io.Reader) (PutResult, error) {
	if r == nil {
		r = &pieces{bytes.NewReader(body[off:]), 7000}
	}
	return s.PutResumable(context.Background(), Upload{Host: host, SHA256: digest(body), Offset: off, Body: r,
		MaxBytes: 1 << 30, Meta: EpisodeMeta{Episode: "ep.tar", Size: int64(len(body)) - off}})
}

// A cut upload keeps its full chunks as a partial; a PUT at their end continues it,
// hashing only the new bytes, and stores exactly the episode sent. In both write
// modes: under O_DIRECT the partial is cut back to its checkpoint and continued in
// whole blocks.
func TestCutUploadIsKeptAndContinued(t *testing.T) {
	t.Parallel()
	for _, mode := range writeModes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			s := storeIn(t, dir, mode.direct)
			body := randomBody(5*chunkSize + 12345)
			sha := digest(body)

			ce := cut(t, s, "lab-07", body, 3*chunkSize+777)
			assert.Equal(t, int64(3*chunkSize), ce.Kept, "up to the last full chunk")
			assert.Equal(t, append([]string{"episodes/", "host-health/", "tmp/"}, partialFiles("lab-07", sha)...), tree(t, dir),
				"kept in tmp/partial, nothing under episodes/")
			kept, err := os.ReadFile(filepath.Join(dir, "tmp", "partial", "lab-07", sha))
			require.NoError(t, err)
			assert.True(t, bytes.Equal(body[:3*chunkSize], kept), "the partial holds the first bytes, no padding")
			assert.False(t, s.Has(t.Context(), "lab-07", sha), "a partial is not stored")

			info, ok, err := s.Partial(t.Context(), "lab-07", sha)
			require.NoError(t, err)
			require.True(t, ok)
			assert.Equal(t, int64(3*chunkSize), info.Offset)
			assert.Equal(t, int64(len(body)), info.Length, "the declared length")
			assert.WithinDuration(t, time.Now().Add(24*time.Hour), info.Expires, time.Minute)

			res, err := resume(s, "lab-07", body, info.Offset, nil)
			require.NoError(t, err)
			assert.True(t, res.Created)
			assert.Equal(t, int64(len(body)), res.Size)
			assert.Equal(t, int64(3*chunkSize), res.ResumedFrom)
			got, err := os.ReadFile(filepath.Join(dir, "episodes", "lab-07", sha))
			require.NoError(t, err)
			assert.True(t, bytes.Equal(body, got), "the stored episode is byte for byte the one sent")
			assert.Equal(t, storedTree("lab-07", sha), tree(t, dir), "the partial is gone")
			assertNothingInFlight(t, s, dir)

			res, err = resume(s, "lab-07", body, 0, nil)
			require.NoError(t, err)
			assert.False(t, res.Created, "exactly once")
		})
	}
}

// The bad inputs of issue 16, each changing nothing it should not.
func TestResumeRefusals(t *testing.T) {
	t.Parallel()
	body := randomBody(4*chunkSize + 99)
	sha := digest(body)
	for _, tc := range []struct {
		name     string
		host     string
		offset   int64
		want     error // nil: an *OffsetError with wantAt
		wantAt   int64
		keptLeft bool // the partial is still there, unchanged
	}{
		{"beyond the partial", "lab-07", 3 * chunkSize, nil, 2 * chunkSize, true},
		{"short of the partial", "lab-07", chunkSize, nil, 2 * chunkSize, true},
		{"unaligned", "lab-07", 2*chunkSize + 1, nil, 2 * chunkSize, true},
		{"another host's partial", "lab-08", 2 * chunkSize, nil, 0, true},
		{"negative", "lab-07", -1, ErrBadName, 0, true},
		{"beyond max_episode_bytes", "lab-07", 1<<30 + 1, ErrTooLarge, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			s := newStore(t, dir, Options{})
			cut(t, s, "lab-07", body, 2*chunkSize+5)
			before := tree(t, dir)
			rest := body[min(max(tc.offset, 0), int64(len(body))):]
			_, err := s.PutResumable(t.Context(), Upload{Host: tc.host, SHA256: sha, Offset: tc.offset,
				Body: bytes.NewReader(rest), MaxBytes: 1 << 30, Meta: EpisodeMeta{Episode: "ep.tar"}})
			if tc.want != nil {
				require.ErrorIs(t, err, tc.want)
			} else {
				var oe *OffsetError
				require.ErrorAs(t, err, &oe)
				assert.Equal(t, OffsetError{Asked: tc.offset, Offset: tc.wantAt}, *oe)
			}
			assert.Equal(t, before, tree(t, dir))
			info, ok, err := s.Partial(t.Context(), "lab-07", sha)
			require.NoError(t, err)
			require.True(t, ok)
			assert.Equal(t, int64(2*chunkSize), info.Offset, "the partial is as it was")
			_, ok, err = s.Partial(t.Context(), "lab-08", sha)
			require.NoError(t, err)
			assert.False(t, ok, "a partial is its host's")
		})
	}
}

// Two requests continuing the same partial at once: the first holds it for as long as
// its body arrives, the second is refused 409 with where the partial stands; once the
// first is done, the stored episode is whole. A new upload (offset 0) meanwhile is
// received on its own and ends as a duplicate or the one copy, never disturbing it.
func TestConcurrentResumesOneWins(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := newStore(t, dir, Options{})
	body := randomBody(6*chunkSize + 4321)
	sha := digest(body)
	cut(t, s, "lab-07", body, 2*chunkSize+10)

	first := holdAfter(body[2*chunkSize:], 2*chunkSize) // two more full chunks, then waits
	first.rest = true
	type result struct {
		res PutResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := resume(s, "lab-07", body, 2*chunkSize, first)
		done <- result{res, err}
	}()
	<-first.reached
	_, err := resume(s, "lab-07", body, 2*chunkSize, nil)
	var oe *OffsetError
	require.ErrorAs(t, err, &oe)
	assert.True(t, oe.Busy)
	assert.GreaterOrEqual(t, oe.Offset, int64(2*chunkSize), "the partial's offset as far as it is recorded")

	res, err := resume(s, "lab-07", body, 0, nil)
	require.NoError(t, err, "a new upload of the same episode is received on its own")
	assert.True(t, res.Created)

	first.release()
	r := <-done
	require.NoError(t, r.err)
	assert.False(t, r.res.Created, "a resume finding its episode stored ends as a duplicate")
	got, err := os.ReadFile(filepath.Join(dir, "episodes", "lab-07", sha))
	require.NoError(t, err)
	assert.True(t, bytes.Equal(body, got))
	assert.Equal(t, storedTree("lab-07", sha), tree(t, dir))
	assertNothingInFlight(t, s, dir)
}

// A HEAD (Partial) while the upload is still arriving, as after a link that dropped
// without the receiver noticing: the upload is interrupted, records where it
// stopped, and the offset Partial answers is the one the next PUT is accepted at.
func TestPartialTakesOverAnUploadInFlight(t *testing.T) {
	t.Parallel()
	for _, mode := range writeModes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			s := storeIn(t, dir, mode.direct)
			body := randomBody(5*chunkSize + 1)
			sha := digest(body)
			r := holdAfter(body, 3*chunkSize+100)
			var interrupted atomic.Int32
			done := make(chan error, 1)
			go func() {
				_, err := s.PutResumable(context.Background(), Upload{Host: "lab-07", SHA256: sha, Body: r, MaxBytes: 1 << 30,
					Meta: EpisodeMeta{Episode: "ep.tar", Size: int64(len(body))}, Interrupt: func() { interrupted.Add(1); r.release() }})
				done <- err
			}()
			<-r.reached
			info, ok, err := s.Partial(t.Context(), "lab-07", sha)
			require.NoError(t, err)
			require.True(t, ok)
			assert.Equal(t, int64(3*chunkSize), info.Offset)
			assert.Equal(t, int32(1), interrupted.Load())
			var ce *CutError
			require.ErrorAs(t, <-done, &ce)
			assert.Equal(t, info.Offset, ce.Kept)

			res, err := resume(s, "lab-07", body, info.Offset, nil)
			require.NoError(t, err)
			assert.True(t, res.Created)
			got, err := os.ReadFile(filepath.Join(dir, "episodes", "lab-07", sha))
			require.NoError(t, err)
			assert.True(t, bytes.Equal(body, got))
		})
	}
}

// A state file that cannot be trusted makes the partial go: the client starts over,
// and no episode is ever stored from a hash state that does not match its bytes.
func TestUntrustedPartialIsDiscarded(t *testing.T) {
	t.Parallel()
	body := randomBody(4*chunkSize + 3)
	sha := digest(body)
	state := func(dir string) string { return filepath.Join(dir, "tmp", "partial", "lab-07", sha+".state") }
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, s *Store, dir string)
	}{
		{"torn state", func(t *testing.T, _ *Store, dir string) {
			b, err := os.ReadFile(state(dir))
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(state(dir), b[:len(b)/2], 0o640))
		}},
		{"one byte of the state flipped", func(t *testing.T, _ *Store, dir string) {
			b, err := os.ReadFile(state(dir))
			require.NoError(t, err)
			b[len(b)/3] ^= 1
			require.NoError(t, os.WriteFile(state(dir), b, 0o640))
		}},
		{"state missing", func(t *testing.T, _ *Store, dir string) { require.NoError(t, os.Remove(state(dir))) }},
		{"data shorter than the state says", func(t *testing.T, _ *Store, dir string) {
			require.NoError(t, os.Truncate(filepath.Join(dir, "tmp", "partial", "lab-07", sha), chunkSize))
		}},
		{"unflushed state from another boot", func(t *testing.T, s *Store, dir string) {
			rec, err := decodeRecord(must(os.ReadFile(state(dir))))
			require.NoError(t, err)
			rec.Synced = false
			require.NoError(t, os.WriteFile(state(dir), rec.encode(), 0o640))
			s.bootID = "another-boot"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			s := newStore(t, dir, Options{})
			cut(t, s, "lab-07", body, 2*chunkSize+1)
			tc.damage(t, s, dir)

			_, err := resume(s, "lab-07", body, 2*chunkSize, nil)
			var oe *OffsetError
			require.ErrorAs(t, err, &oe)
			assert.Equal(t, int64(0), oe.Offset, "start over")
			assert.Equal(t, emptyStore, tree(t, dir), "the partial is gone")
			_, ok, err := s.Partial(t.Context(), "lab-07", sha)
			require.NoError(t, err)
			assert.False(t, ok)
		})
	}
}

// A flushed state from an earlier boot is trusted; so is an unflushed one of this
// boot (a receiver killed with SIGKILL loses no page cache).
func TestPartialSurvivesARestart(t *testing.T) {
	t.Parallel()
	for _, mode := range writeModes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			s := storeIn(t, dir, mode.direct)
			body := randomBody(7*chunkSize + 5)
			sha := digest(body)
			r := holdAfter(body, 4*chunkSize+123)
			ended := make(chan struct{})
			go func() {
				defer close(ended)
				_, _ = s.PutResumable(context.Background(), Upload{Host: "lab-07", SHA256: sha, Body: r, MaxBytes: 1 << 30,
					Meta: EpisodeMeta{Episode: "ep.tar", Size: int64(len(body))}})
			}()
			t.Cleanup(func() { r.release(); <-ended })
			<-r.reached
			// The upload is still running: what a SIGKILL now would leave is what the
			// periodic checkpoints wrote. Copy it as it is into a new data folder.
			src := filepath.Join(dir, "tmp", "partial", "lab-07", sha)
			var rec partialRecord
			require.Eventually(t, func() bool {
				b, err := os.ReadFile(src + ".state")
				if err != nil {
					return false
				}
				rec, err = decodeRecord(b)
				return err == nil && rec.Offset == 4*chunkSize
			}, 10*time.Second, time.Millisecond, "the checkpoint of the last full chunk is written while the upload runs")
			assert.False(t, rec.Synced)
			restarted := t.TempDir()
			dst := filepath.Join(restarted, "tmp", "partial", "lab-07", sha)
			require.NoError(t, os.MkdirAll(filepath.Dir(dst), 0o750))
			require.NoError(t, os.WriteFile(dst, must(os.ReadFile(src)), 0o640))
			require.NoError(t, os.WriteFile(dst+".state", must(os.ReadFile(src+".state")), 0o640))
			require.NoError(t, os.WriteFile(filepath.Join(restarted, "tmp", "ep-123"), []byte("an upload that was not resumable"), 0o640))

			s2 := storeIn(t, restarted, mode.direct)
			assert.Equal(t, append([]string{"episodes/", "host-health/", "tmp/"}, partialFiles("lab-07", sha)...), tree(t, restarted),
				"the start's sweep of tmp/ leaves tmp/partial/ alone")
			info, ok, err := s2.Partial(t.Context(), "lab-07", sha)
			require.NoError(t, err)
			require.True(t, ok)
			assert.Equal(t, int64(4*chunkSize), info.Offset)
			res, err := resume(s2, "lab-07", body, info.Offset, nil)
			require.NoError(t, err)
			assert.True(t, res.Created)
			got, err := os.ReadFile(filepath.Join(restarted, "episodes", "lab-07", sha))
			require.NoError(t, err)
			assert.True(t, bytes.Equal(body, got))
		})
	}
}

// The whole episode's digest is checked after a resume too: a rest that does not
// match (or a partial that did not) is refused 422, and the partial goes with it.
func TestResumeWithWrongRestIsRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := newStore(t, dir, Options{})
	body := randomBody(3*chunkSize + 8)
	cut(t, s, "lab-07", body, 2*chunkSize+8)
	wrong := bytes.Clone(body)
	wrong[len(wrong)-1] ^= 0xff
	_, err := resume(s, "lab-07", body, 2*chunkSize, bytes.NewReader(wrong[2*chunkSize:]))
	require.ErrorIs(t, err, ErrDigestMismatch)
	assert.Equal(t, emptyStore, tree(t, dir), "nothing kept: the client starts over")
}

// Less than one full chunk is not worth a partial; other failures keep nothing.
func TestFailedResumableUploadsKeepNothing(t *testing.T) {
	t.Parallel()
	body := randomBody(3*chunkSize + 5)
	sha := digest(body)
	for _, tc := range []struct {
		name string
		u    Upload
		want error
	}{
		{"cut before a full chunk", Upload{Body: &brokenReader{bytes.NewReader(body[:chunkSize-1])}, MaxBytes: 1 << 30}, errDisconnect},
		{"digest mismatch", Upload{Body: bytes.NewReader(body[1:]), MaxBytes: 1 << 30}, ErrDigestMismatch},
		{"too large", Upload{Body: bytes.NewReader(body), MaxBytes: 2 * chunkSize}, ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			s := newStore(t, dir, Options{})
			tc.u.Host, tc.u.SHA256, tc.u.Meta.Episode = "lab-07", sha, "ep.tar"
			_, err := s.PutResumable(t.Context(), tc.u)
			require.ErrorIs(t, err, tc.want)
			assert.Equal(t, emptyStore, tree(t, dir))
			assertNothingInFlight(t, s, dir)
		})
	}
}

// A new upload (offset 0) replaces a partial of the same episode.
func TestNewUploadReplacesPartial(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := newStore(t, dir, Options{})
	body := randomBody(4*chunkSize + 1)
	cut(t, s, "lab-07", body, 3*chunkSize)
	ce := cut(t, s, "lab-07", body, chunkSize+1)
	assert.Equal(t, int64(chunkSize), ce.Kept)
	info, ok, err := s.Partial(t.Context(), "lab-07", digest(body))
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, int64(chunkSize), info.Offset, "the newer upload's partial")
}

// Partials expire serve.partial_ttl after their last checkpoint: refused from then on,
// and removed by the sweep (at start, and hourly by the receiver). A partial whose
// episode got stored meanwhile goes too; one in use stays.
func TestPartialsExpire(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	s := newStore(t, dir, Options{PartialTTL: time.Hour, Now: clock})
	old, fresh := randomBody(2*chunkSize+1), randomBody(2*chunkSize+2)
	cut(t, s, "lab-07", old, 2*chunkSize)
	cut(t, s, "lab-08", fresh, 2*chunkSize)
	future := time.Now().Add(30 * time.Minute)
	require.NoError(t, os.Chtimes(filepath.Join(dir, "tmp", "partial", "lab-08", digest(fresh)+".state"), future, future))

	now.Add(int64(59 * time.Minute))
	n, err := s.SweepPartials()
	require.NoError(t, err)
	assert.Zero(t, n, "neither is an hour old")

	now.Add(int64(2 * time.Minute))
	_, ok, err := s.Partial(t.Context(), "lab-07", digest(old))
	require.NoError(t, err)
	assert.False(t, ok, "expired: start over")
	n, err = s.SweepPartials()
	require.NoError(t, err)
	assert.Zero(t, n, "already removed")
	assert.Equal(t, append([]string{"episodes/", "host-health/", "tmp/"}, partialFiles("lab-08", digest(fresh))...), tree(t, dir))

	// In use: left alone.
	r := holdAfter(fresh[2*chunkSize:], 1)
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		_, _ = resume(s, "lab-08", fresh, 2*chunkSize, r)
	}()
	<-r.reached
	now.Add(int64(2 * time.Hour))
	n, err = s.SweepPartials()
	require.NoError(t, err)
	assert.Zero(t, n)
	r.release()
	<-ended

	// At start, with junk beside it.
	s2 := newStore(t, dir, Options{PartialTTL: time.Hour, Now: clock})
	assert.Equal(t, emptyStore, tree(t, dir))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "tmp", "partial", "Not_A_Host"), 0o750))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "tmp", "partial", "lab-09"), 0o750))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tmp", "partial", "lab-09", "stray"), nil, 0o640))
	n, err = s2.SweepPartials()
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	assert.Equal(t, emptyStore, tree(t, dir))

	// Stored by an upload killed before it removed its partial.
	dir3 := t.TempDir()
	s3 := newStore(t, dir3, Options{})
	cut(t, s3, "lab-07", old, 2*chunkSize)
	_, err = s3.PutEpisode(t.Context(), "lab-07", digest(old), bytes.NewReader(old), 1<<30, EpisodeMeta{Episode: "ep.tar"})
	require.NoError(t, err)
	n, err = s3.SweepPartials()
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	assert.Equal(t, storedTree("lab-07", digest(old)), tree(t, dir3))
}

// A resume is held to min_free_bytes like a new upload (its remaining bytes are
// reserved) and refused before anything changes; the partial's own bytes are on the
// disk, so statfs already counts them.
func TestResumeBelowMinFreeIsRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := newStore(t, dir, Options{MinFreeBytes: 100 * mib})
	body := randomBody(6*chunkSize + 1)
	cut(t, s, "lab-07", body, 2*chunkSize+1)
	before := tree(t, dir)
	useFakeDisk(s, 100*mib+3*chunkSize) // room for 3 of the 4 MiB still to come
	_, err := resume(s, "lab-07", body, 2*chunkSize, nil)
	require.ErrorIs(t, err, ErrNoSpace)
	assert.Equal(t, before, tree(t, dir), "the partial stays as it was")
	useFakeDisk(s, 100*mib+5*chunkSize)
	res, err := resume(s, "lab-07", body, 2*chunkSize, nil)
	require.NoError(t, err)
	assert.True(t, res.Created)
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// A checkpoint names only bytes already written: the writers finish out of order,
// and the hasher may be ahead of them or behind.
func TestCheckpointsClaimOnlyWrittenBytes(t *testing.T) {
	t.Parallel()
	f, err := os.Create(filepath.Join(t.TempDir(), "x.state"))
	require.NoError(t, err)
	defer f.Close()
	c := &checkpoints{f: f, holder: &partialHolder{}}
	saved := func() int64 {
		rec, err := decodeRecord(must(os.ReadFile(f.Name())))
		if err != nil {
			return -1
		}
		return rec.Offset
	}
	h := func() hash.Hash { return sha256.New() }
	for i := int64(1); i <= 3; i++ {
		c.dispatched(i * chunkSize)
	}
	c.hashed(chunkSize, h())
	c.hashed(2*chunkSize, h())
	c.written(2 * chunkSize)
	assert.Equal(t, int64(-1), saved(), "the first chunk is not written yet: nothing to claim")
	c.written(chunkSize)
	assert.Equal(t, int64(2*chunkSize), saved(), "both written and hashed")
	c.written(3 * chunkSize)
	assert.Equal(t, int64(2*chunkSize), saved(), "the third is written, not yet hashed")
	c.hashed(3*chunkSize, h())
	assert.Equal(t, int64(3*chunkSize), saved())
	assert.Equal(t, int64(3*chunkSize), c.holder.offset.Load())
}

// A HEAD or the sweep holds a partial for a moment: an upload arriving then waits for
// it instead of being refused as busy (a 409 would send its client back to offset 0).
func TestUploadWaitsOutAReader(t *testing.T) {
	t.Parallel()
	var l partialLocks
	k := partialKey{"lab-07", digest(nil)}
	reader, ok := l.acquire(k, nil)
	require.True(t, ok)
	got := make(chan bool, 1)
	go func() {
		_, ok := l.acquireUpload(context.Background(), k, &Upload{})
		got <- ok
	}()
	assert.Never(t, func() bool { return len(got) > 0 }, 100*time.Millisecond, 5*time.Millisecond, "it waits")
	l.release(k, reader)
	assert.True(t, <-got, "then it holds the partial")

	_, ok = l.acquireUpload(context.Background(), k, &Upload{})
	assert.False(t, ok, "an upload holding it makes it busy")
}

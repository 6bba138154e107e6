package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cis490/cis490/internal/fsutil"
	"github.com/cis490/cis490/internal/protocol"
)

// Resumable uploads (SPEC §3.3, §3.4). Every upload PutResumable takes is written
// straight into tmp/partial/<host>/<sha256>, and its progress into <sha256>.state
// beside it: the offset of the last full chunk that is both written and hashed, with
// the SHA-256 state after it. A body cut before its end leaves both behind; a PUT
// that continues at that offset restores the hash state and hashes only the new
// bytes, and the whole episode's digest is still checked before it is stored.
//
// Checkpoints are not fsynced as they are written: a receiver killed with SIGKILL
// loses no page cache, and each state names only bytes already written. A crash of
// the machine can lose both, so a state records the boot it was written in, and
// one that was not flushed is trusted only within that boot (an unflushed state
// could otherwise claim bytes the disk never got, and a wrong episode would pass the
// digest check that the state itself feeds). A cleanly cut upload flushes both.

// Resumable is an episode store that keeps what arrived of a cut upload for its host
// to continue: the data folder. A bucket (objstore) keeps nothing partial: an upload
// cut there starts over.
type Resumable interface {
	// Partial reports host's partial upload of sha; ok is false when there is none.
	// An upload of it still in flight is interrupted and waited for first, so the
	// offset is the one a PUT continuing it must give.
	Partial(ctx context.Context, host, sha string) (info PartialInfo, ok bool, err error)
	// PutResumable stores u like PutEpisode, continuing the partial at u.Offset, and
	// keeps a cut body as a partial (*CutError).
	PutResumable(ctx context.Context, u Upload) (PutResult, error)
}

var _ Resumable = (*Store)(nil)

// Upload is one PUT of an episode, or of its rest.
type Upload struct {
	Host, SHA256 string
	// Offset is where Body starts in the episode: 0 for all of it, else the offset
	// of host's partial upload of SHA256.
	Offset   int64
	Body     io.Reader
	MaxBytes int64 // of the whole episode
	// Meta.Size is Body's declared length (not the episode's), 0 or less when unknown.
	Meta EpisodeMeta
	// Interrupt makes Body's reads fail soon; it is called from another goroutine
	// when a HEAD of the same partial takes it over. It may be nil.
	Interrupt func()
}

// PartialInfo is what is kept of a cut upload.
type PartialInfo struct {
	Offset  int64     // bytes kept: where the upload continues
	Length  int64     // the whole episode's size as declared, 0 when unknown
	Expires time.Time // when it is removed unless continued before
}

// OffsetError refuses a PUT whose Upload-Offset is not where the partial stands, or
// that another request is continuing (Busy): SPEC §3.3's 409, with Offset as the
// answer's Upload-Offset.
type OffsetError struct {
	Asked, Offset int64
	Busy          bool
}

func (e *OffsetError) Error() string {
	if e.Busy {
		return fmt.Sprintf("another request is continuing this partial upload, now at %d bytes", e.Offset)
	}
	if e.Offset == 0 {
		return fmt.Sprintf("no partial upload to continue at %d bytes: it was never kept, expired or was stored", e.Asked)
	}
	return fmt.Sprintf("the partial upload holds %d bytes, not %d", e.Offset, e.Asked)
}

// CutError is a body that stopped arriving before its end: its first Kept bytes are
// kept as a partial (none when no full chunk arrived). It wraps the read's error.
type CutError struct {
	Kept int64
	Err  error
}

func (e *CutError) Error() string {
	return fmt.Sprintf("%v (%d bytes kept as a partial upload)", e.Err, e.Kept)
}
func (e *CutError) Unwrap() error { return e.Err }

// ErrPartialBusy: the upload writing a partial did not let go of it in time.
var ErrPartialBusy = errors.New("another request is still writing this partial upload")

const (
	partialDirName = "partial"
	stateSuffix    = ".state"
	// checkpointEvery is how many bytes a receiver killed mid-upload may lose at
	// most, beyond the chunks in flight. A checkpoint is one small pwrite: measured
	// in BenchmarkPutResumable against BenchmarkPutEpisode.
	checkpointEvery = chunkSize
	// takeoverWait bounds how long a HEAD waits for the upload it interrupted to
	// record where it stopped (an fsync of the file and its state).
	takeoverWait      = 10 * time.Second
	defaultPartialTTL = 24 * time.Hour
	recordVersion     = 1
)

type partialKey struct{ host, sha string }

// partialLocks lets one request at a time write or read each partial.
type partialLocks struct {
	mu   sync.Mutex
	held map[partialKey]*partialHolder
}

type partialHolder struct {
	reader    bool // a HEAD or the sweep: holds it a moment, writes nothing
	interrupt func()
	once      sync.Once
	done      chan struct{}
	offset    atomic.Int64 // the last checkpoint saved: a busy 409's Upload-Offset
}

// acquire takes k's lock for an upload, or for a reader when upload is nil, or
// returns who holds it.
func (l *partialLocks) acquire(k partialKey, upload *Upload) (*partialHolder, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if h := l.held[k]; h != nil {
		return h, false
	}
	if l.held == nil {
		l.held = map[partialKey]*partialHolder{}
	}
	h := &partialHolder{reader: upload == nil, done: make(chan struct{})}
	if upload != nil {
		h.interrupt = upload.Interrupt
	}
	l.held[k] = h
	return h, true
}

// acquireUpload takes k's lock for an upload, waiting out a reader that holds it (for
// a moment): only another upload makes it busy.
func (l *partialLocks) acquireUpload(ctx context.Context, k partialKey, u *Upload) (*partialHolder, bool) {
	for {
		h, ok := l.acquire(k, u)
		if ok || !h.reader {
			return h, ok
		}
		select {
		case <-h.done:
		case <-ctx.Done():
			return h, false
		}
	}
}

func (l *partialLocks) release(k partialKey, h *partialHolder) {
	l.mu.Lock()
	delete(l.held, k)
	l.mu.Unlock()
	close(h.done)
}

func (h *partialHolder) stop() {
	if h.interrupt != nil {
		h.once.Do(h.interrupt)
	}
}

// takeOver holds k's lock, interrupting whoever holds it first and waiting for them
// to let go (the draft's recommended way: a client asking for the offset has given
// up on its earlier request, which the receiver may not have noticed yet).
func (s *Store) takeOver(ctx context.Context, k partialKey) (*partialHolder, error) {
	wait := time.NewTimer(takeoverWait)
	defer wait.Stop()
	for {
		h, ok := s.partials.acquire(k, nil)
		if ok {
			return h, nil
		}
		h.stop()
		select {
		case <-h.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-wait.C:
			return nil, ErrPartialBusy
		}
	}
}

type partialPaths struct{ dir, data, state string }

func (s *Store) partialPaths(host, sha string) partialPaths {
	dir := filepath.Join(s.partial, host)
	return partialPaths{dir: dir, data: filepath.Join(dir, sha), state: filepath.Join(dir, sha+stateSuffix)}
}

// partialRecord is a state file: one JSON line, then the hex SHA-256 of that line,
// so that a torn or damaged state is told from a good one.
type partialRecord struct {
	Version int    `json:"v"`
	Host    string `json:"host"`
	SHA256  string `json:"sha256"`
	Offset  int64  `json:"offset"`
	Length  int64  `json:"length,omitempty"`
	Hash    []byte `json:"hash"` // crypto/sha256's MarshalBinary after Offset bytes
	BootID  string `json:"boot_id,omitempty"`
	Synced  bool   `json:"synced,omitempty"` // flushed to disk with the bytes it names
}

func (r *partialRecord) encode() []byte { return r.appendEncoded(nil) }

// appendEncoded appends the state file's bytes to dst: the JSON line json.Marshal
// would write (TestRecordEncodingIsJSONMarshal holds them equal), then its checksum.
// Written by hand so that a checkpoint, once a chunk, allocates nothing: host and
// sha256 are checked names, and boot_id a UUID, none of which JSON escapes.
func (r *partialRecord) appendEncoded(dst []byte) []byte {
	start := len(dst)
	dst = append(dst, `{"v":`...)
	dst = strconv.AppendInt(dst, int64(r.Version), 10)
	dst = append(dst, `,"host":"`...)
	dst = append(dst, r.Host...)
	dst = append(dst, `","sha256":"`...)
	dst = append(dst, r.SHA256...)
	dst = append(dst, `","offset":`...)
	dst = strconv.AppendInt(dst, r.Offset, 10)
	if r.Length != 0 {
		dst = append(dst, `,"length":`...)
		dst = strconv.AppendInt(dst, r.Length, 10)
	}
	dst = append(dst, `,"hash":`...)
	if r.Hash == nil {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, '"')
		dst = base64.StdEncoding.AppendEncode(dst, r.Hash)
		dst = append(dst, '"')
	}
	if r.BootID != "" {
		dst = append(dst, `,"boot_id":"`...)
		dst = append(dst, r.BootID...)
		dst = append(dst, '"')
	}
	if r.Synced {
		dst = append(dst, `,"synced":true`...)
	}
	dst = append(dst, '}')
	sum := sha256.Sum256(dst[start:])
	dst = append(dst, '\n')
	dst = hex.AppendEncode(dst, sum[:])
	return append(dst, '\n')
}

// decodeRecord reads the first two lines of b; what follows them is left over from
// a longer record written before (states are rewritten in place).
func decodeRecord(b []byte) (partialRecord, error) {
	var r partialRecord
	line, rest, ok := bytes.Cut(b, []byte{'\n'})
	sumHex, _, ok2 := bytes.Cut(rest, []byte{'\n'})
	if !ok || !ok2 {
		return r, errors.New("incomplete")
	}
	sum := sha256.Sum256(line)
	if hex.EncodeToString(sum[:]) != string(sumHex) {
		return r, errors.New("checksum mismatch")
	}
	if err := json.Unmarshal(line, &r); err != nil {
		return r, err
	}
	return r, nil
}

// restoreHash is a SHA-256 that has hashed what state says.
func restoreHash(state []byte) (hash.Hash, error) {
	h := sha256.New()
	if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(state); err != nil {
		return nil, err
	}
	return h, nil
}

// loadPartial reads the partial at pt. One that cannot be trusted, or has expired,
// is removed and reported as none: its client starts over, and no wrong digest is
// ever accepted. The caller holds its lock.
func (s *Store) loadPartial(host, sha string, pt partialPaths) (*partialRecord, time.Time, error) {
	raw, err := os.ReadFile(pt.state)
	if errors.Is(err, fs.ErrNotExist) {
		if _, err := os.Lstat(pt.data); err == nil {
			s.discardPartial(pt, "it has no state file: the receiver stopped before its first checkpoint")
		}
		return nil, time.Time{}, nil
	}
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("read partial upload state %s: %w", pt.state, err)
	}
	st, err := os.Stat(pt.state)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("partial upload state %s: %w", pt.state, err)
	}
	rec, err := decodeRecord(raw)
	reason := ""
	switch {
	case err != nil:
		reason = "its state file is torn or damaged (" + err.Error() + ")"
	case rec.Version != recordVersion || rec.Host != host || rec.SHA256 != sha || rec.Offset <= 0:
		reason = "its state file describes another upload"
	case !rec.Synced && (s.bootID == "" || rec.BootID != s.bootID):
		reason = "the machine restarted after its last checkpoint, which was not yet flushed to disk"
	case !s.now().Before(st.ModTime().Add(s.partialTTL())):
		reason = fmt.Sprintf("it expired (serve.partial_ttl %v)", s.partialTTL())
	default:
		if data, err := os.Stat(pt.data); err != nil || data.Size() < rec.Offset {
			reason = "its data file is missing or shorter than its state says"
		} else if _, err := restoreHash(rec.Hash); err != nil {
			reason = "its hash state does not load (" + err.Error() + ")"
		}
	}
	if reason != "" {
		s.discardPartial(pt, reason)
		return nil, time.Time{}, nil
	}
	return &rec, st.ModTime(), nil
}

func (s *Store) discardPartial(pt partialPaths, reason string) {
	s.opts.Logger.Info().Str("path", pt.data).Str("reason", reason).Msg("discarded a partial upload: its host sends the episode from its first byte")
	s.removePartial(pt)
}

// removePartial removes a partial and, when they are left empty, its host's folder
// and tmp/partial/ itself.
func (s *Store) removePartial(pt partialPaths) {
	s.partialDirs.Lock()
	defer s.partialDirs.Unlock()
	os.Remove(pt.data)
	os.Remove(pt.state)
	s.removeEmptyLocked(pt.dir)
}

// removeEmptyLocked removes a host's folder of partials and tmp/partial/ when they
// are empty (rmdir(2) refuses otherwise); the caller holds partialDirs, so no new
// partial is being created in them meanwhile.
func (s *Store) removeEmptyLocked(hostDir string) {
	os.Remove(hostDir)
	os.Remove(s.partial)
}

// Partial is Resumable's: see there.
func (s *Store) Partial(ctx context.Context, host, sha string) (PartialInfo, bool, error) {
	if !validHost(host) || !protocol.ValidSHA256(sha) {
		return PartialInfo{}, false, fmt.Errorf("%w: host %q, sha256 %q", ErrBadName, host, sha)
	}
	k := partialKey{host, sha}
	h, err := s.takeOver(ctx, k)
	if err != nil {
		return PartialInfo{}, false, err
	}
	defer s.partials.release(k, h)
	rec, at, err := s.loadPartial(host, sha, s.partialPaths(host, sha))
	if err != nil || rec == nil {
		return PartialInfo{}, false, err
	}
	return PartialInfo{Offset: rec.Offset, Length: rec.Length, Expires: at.Add(s.partialTTL())}, true, nil
}

// PutResumable is Resumable's: see there. A new upload (u.Offset 0) replaces the
// partial of the same episode, unless another request holds it: it is then received
// as PutEpisode would, and not kept if cut, so it never disturbs that request.
func (s *Store) PutResumable(ctx context.Context, u Upload) (res PutResult, err error) {
	if !validHost(u.Host) || !protocol.ValidSHA256(u.SHA256) || !protocol.ValidEpisode(u.Meta.Episode) {
		return PutResult{}, fmt.Errorf("%w: host %q, episode %q, sha256 %q", ErrBadName, u.Host, u.Meta.Episode, u.SHA256)
	}
	if u.Offset < 0 {
		return PutResult{}, fmt.Errorf("%w: negative upload offset %d", ErrBadName, u.Offset)
	}
	if u.Offset > u.MaxBytes {
		return PutResult{}, fmt.Errorf("%w: continues at %d bytes, more than %d", ErrTooLarge, u.Offset, u.MaxBytes)
	}
	k := partialKey{u.Host, u.SHA256}
	h, ok := s.partials.acquireUpload(ctx, k, &u)
	if !ok {
		if u.Offset == 0 {
			return s.PutEpisode(ctx, u.Host, u.SHA256, u.Body, u.MaxBytes, u.Meta)
		}
		return PutResult{}, &OffsetError{Asked: u.Offset, Offset: h.offset.Load(), Busy: true}
	}
	defer s.partials.release(k, h)
	pt := s.partialPaths(u.Host, u.SHA256)
	var rec *partialRecord
	if u.Offset > 0 {
		if rec, _, err = s.loadPartial(u.Host, u.SHA256, pt); err != nil {
			return PutResult{}, err
		}
		if rec == nil || rec.Offset != u.Offset {
			have := int64(0)
			if rec != nil {
				have = rec.Offset
			}
			return PutResult{}, &OffsetError{Asked: u.Offset, Offset: have}
		}
		h.offset.Store(rec.Offset)
	}
	// Refused for want of space before anything is touched: a partial stays as it was.
	space, err := s.reserve(min(u.Meta.Size, u.MaxBytes-u.Offset))
	if err != nil {
		return PutResult{}, err
	}
	defer space.release()
	up, err := s.openPartial(pt, u, rec, h)
	if err != nil {
		if rec == nil { // what a new upload created, or truncated, is of no use
			s.removePartial(pt)
		}
		return PutResult{}, fmt.Errorf("open partial upload %s: %w", pt.data, noSpace(err))
	}
	ended := false
	defer func() {
		if !ended { // a panic in u.Body.Read: nothing is kept
			up.f.Close()
			up.ckpt.close()
			s.removePartial(pt)
		}
	}()

	size, err := s.receive(ctx, u.SHA256, u.Body, u.MaxBytes, space, up)
	ended = true
	var cut *cutError
	switch {
	case err == nil:
		up.ckpt.close()
		res, err = s.install(u.Host, u.SHA256, pt.data, size, u.Meta)
		s.removePartial(pt)
		res.ResumedFrom = u.Offset
		return res, err
	case errors.As(err, &cut):
		kept, kerr := s.keepPartial(up, pt)
		if kerr != nil {
			s.opts.Logger.Error().Err(kerr).Str("path", pt.data).Msg("could not keep what arrived of a cut upload: its host sends it again from its first byte")
		}
		return PutResult{}, &CutError{Kept: kept, Err: err}
	default:
		up.f.Close()
		up.ckpt.close()
		s.removePartial(pt)
		return PutResult{}, err
	}
}

// openPartial opens pt for u: anew when rec is nil (replacing any partial there),
// else to continue after rec.Offset.
func (s *Store) openPartial(pt partialPaths, u Upload, rec *partialRecord, holder *partialHolder) (*upload, error) {
	s.partialDirs.Lock()
	defer s.partialDirs.Unlock()
	flags := os.O_RDWR
	if rec == nil {
		flags |= os.O_CREATE | os.O_TRUNC
		if err := os.MkdirAll(pt.dir, dirPerm); err != nil {
			return nil, err
		}
		rec = &partialRecord{Version: recordVersion, Host: u.Host, SHA256: u.SHA256}
	}
	f, err := os.OpenFile(pt.data, flags, filePerm)
	if err != nil {
		return nil, err
	}
	var state *os.File
	if rec.Offset > 0 {
		state, err = os.OpenFile(pt.state, os.O_RDWR, filePerm)
	} else if err = os.Remove(pt.state); errors.Is(err, fs.ErrNotExist) {
		err = nil // the first checkpoint creates it
	}
	if err == nil {
		err = f.Chmod(filePerm) // whatever the umask: it becomes the stored episode
	}
	if err == nil && rec.Offset > 0 {
		// Bytes past the checkpoint (a chunk in flight, padding) were never claimed.
		err = f.Truncate(rec.Offset)
	}
	var h hash.Hash = sha256.New()
	if err == nil && rec.Offset > 0 {
		h, err = restoreHash(rec.Hash)
	}
	if err != nil {
		f.Close()
		if state != nil {
			state.Close()
		}
		return nil, err
	}
	if u.Meta.Size > 0 {
		rec.Length = rec.Offset + u.Meta.Size
	}
	rec.BootID = s.bootID
	// O_DIRECT only at an aligned start; checkpoints fall at the end of full chunks,
	// so a partial of this pipeline always continues at one.
	direct := s.direct.Load() && rec.Offset%dioAlign == 0
	if direct {
		if err := setDirectIO(f.Fd(), true); err != nil {
			s.noDirectIO(err)
			direct = false
		}
	}
	ck := &checkpoints{path: pt.state, f: state, rec: *rec, holder: holder, frontier: rec.Offset, saved: rec.Offset,
		last: hashedAt{end: rec.Offset, state: rec.Hash}}
	return &upload{f: f, direct: direct, base: rec.Offset, h: h, ckpt: ck}, nil
}

// keepPartial makes what a cut upload wrote, up to its last checkpoint, durable as
// its partial, and closes its files. It removes it instead when not one full chunk
// arrived.
func (s *Store) keepPartial(up *upload, pt partialPaths) (int64, error) {
	last := up.ckpt.final()
	if last.end == 0 {
		up.f.Close()
		up.ckpt.close()
		s.removePartial(pt)
		return 0, nil
	}
	err := up.f.Truncate(last.end)
	if err == nil {
		err = up.f.Sync()
	}
	if cerr := up.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = up.ckpt.saveFinal()
	}
	if cerr := up.ckpt.close(); err == nil {
		err = cerr
	}
	for _, dir := range []string{pt.dir, s.partial, s.tmp} {
		if err == nil {
			err = fsutil.SyncDir(dir)
		}
	}
	if err != nil {
		s.removePartial(pt)
		return 0, err
	}
	return last.end, nil
}

// checkpoints records a resumable upload's progress in its state file: the end of the
// last full chunk that is both hashed and written, with the hash state there. The
// hasher and the writers (filewriter.go) report to it as they go.
type checkpoints struct {
	path   string
	f      *os.File      // nil until the first save
	rec    partialRecord // what each save writes: Offset and Hash change
	holder *partialHolder

	mu       sync.Mutex
	free     [][]byte       // hash-state buffers no checkpoint holds any more, for reuse
	buf      []byte         // the state file's bytes, rebuilt at each save
	writes   []pendingWrite // chunks dispatched and not yet all written before, in file order
	frontier int64          // every byte before it is written
	hashes   []hashedAt     // hash states at chunk ends beyond frontier
	last     hashedAt       // the newest checkpoint: hashed, and all its bytes written
	saved    int64          // last.end when it was last saved
}

type pendingWrite struct {
	end  int64
	done bool
}

type hashedAt struct {
	end   int64
	state []byte
}

func (c *checkpoints) dispatched(end int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes = append(c.writes, pendingWrite{end: end})
}

func (c *checkpoints) written(end int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i := slices.IndexFunc(c.writes, func(w pendingWrite) bool { return w.end == end }); i >= 0 {
		c.writes[i].done = true
	}
	n := 0
	for n < len(c.writes) && c.writes[n].done {
		c.frontier = c.writes[n].end
		n++
	}
	c.writes = slices.Delete(c.writes, 0, n)
	c.advance()
}

// hashed takes h's state after the chunk ending at end.
// A chunk's state is appended into a buffer an earlier checkpoint gave back: with
// a checkpoint every chunk, fresh ones were a kilobyte of garbage a MiB, which grew
// the heap (and the receiver's RSS) with every upload.
func (c *checkpoints) hashed(end int64, h hash.Hash) {
	c.mu.Lock()
	var buf []byte
	if n := len(c.free); n > 0 {
		buf, c.free = c.free[n-1][:0], c.free[:n-1]
	}
	c.mu.Unlock()
	state, err := h.(encoding.BinaryAppender).AppendBinary(buf)
	if err != nil {
		return // not with crypto/sha256; it would only cost this checkpoint
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.hashes = append(c.hashes, hashedAt{end: end, state: state})
	c.advance()
}

func (c *checkpoints) advance() {
	n := 0
	for n < len(c.hashes) && c.hashes[n].end <= c.frontier {
		if c.last.state != nil {
			c.free = append(c.free, c.last.state) // only c.last is ever saved
		}
		c.last = c.hashes[n]
		n++
	}
	c.hashes = slices.Delete(c.hashes, 0, n)
	if c.last.end-c.saved >= checkpointEvery {
		// Not fsynced (see the top of this file); an error only costs this
		// checkpoint, and keepPartial's final save reports its own.
		_ = c.save(false)
	}
}

func (c *checkpoints) save(synced bool) error {
	if c.f == nil {
		f, err := os.OpenFile(c.path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, filePerm)
		if err != nil {
			return noSpace(err)
		}
		c.f = f
	}
	c.rec.Offset, c.rec.Hash, c.rec.Synced = c.last.end, c.last.state, synced
	c.buf = c.rec.appendEncoded(c.buf[:0])
	if _, err := c.f.WriteAt(c.buf, 0); err != nil {
		return noSpace(err)
	}
	c.saved = c.last.end
	c.holder.offset.Store(c.last.end)
	return nil
}

// close closes the state file, once every write has ended.
func (c *checkpoints) close() error {
	if c.f == nil {
		return nil
	}
	return c.f.Close()
}

// final is the last checkpoint, once every write has ended.
func (c *checkpoints) final() hashedAt {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.advance()
	return c.last
}

// saveFinal writes the last checkpoint as flushed (the data file was just fsynced)
// and fsyncs it.
func (c *checkpoints) saveFinal() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.save(true); err != nil {
		return err
	}
	return c.f.Sync()
}

// SweepPartials removes the partials that expired (serve.partial_ttl), whose episode
// is stored meanwhile, or that cannot be trusted, and anything else in tmp/partial/;
// partials in use are left alone. Open runs it, and the receiver every hour.
func (s *Store) SweepPartials() (removed int, err error) {
	hosts, err := os.ReadDir(s.partial)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	for _, hd := range hosts {
		dir := filepath.Join(s.partial, hd.Name())
		if !hd.IsDir() || !validHost(hd.Name()) {
			if err := os.RemoveAll(dir); err != nil {
				return removed, err
			}
			removed++
			continue
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			return removed, err
		}
		var shas []string
		for _, e := range entries {
			sha := strings.TrimSuffix(e.Name(), stateSuffix)
			if !e.Type().IsRegular() || !protocol.ValidSHA256(sha) {
				if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
					return removed, err
				}
				removed++
			} else if !slices.Contains(shas, sha) {
				shas = append(shas, sha)
			}
		}
		for _, sha := range shas {
			if s.sweepPartial(hd.Name(), sha) {
				removed++
			}
		}
		s.partialDirs.Lock()
		s.removeEmptyLocked(dir)
		s.partialDirs.Unlock()
	}
	return removed, nil
}

func (s *Store) sweepPartial(host, sha string) bool {
	k := partialKey{host, sha}
	h, ok := s.partials.acquire(k, nil)
	if !ok {
		return false // in use
	}
	defer s.partials.release(k, h)
	pt := s.partialPaths(host, sha)
	if s.Has(context.Background(), host, sha) {
		s.removePartial(pt) // stored by an upload killed before it removed its partial
		return true
	}
	rec, _, err := s.loadPartial(host, sha, pt)
	return err == nil && rec == nil
}

func (s *Store) partialTTL() time.Duration {
	if s.opts.PartialTTL > 0 {
		return s.opts.PartialTTL
	}
	return defaultPartialTTL
}

func (s *Store) now() time.Time {
	if s.opts.Now != nil {
		return s.opts.Now()
	}
	return time.Now()
}

// readBootID names this boot of the machine: a state not flushed in an earlier boot
// is not trusted. "" when the kernel does not say; unflushed states are then never
// trusted after a restart of the receiver.
func readBootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

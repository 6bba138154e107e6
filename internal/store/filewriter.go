package store

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// An upload moves through a small ring of chunks: the request goroutine fills one
// from the socket while one goroutine hashes the chunks in order and others write
// them to the file at their offsets. Hashing, the socket copy and the disk write
// each run on whichever core is free instead of one after another.
const (
	chunkSize = 1 << 20
	// ringSize chunks per upload at most: one filling while two are hashed and written.
	ringSize = 3
	// spareChunks is how many chunks beyond the first all uploads together may hold,
	// so memory grows by one chunk per upload in flight and no more: the first ones
	// to arrive have up to ringSize. Measured (bench/upload, 4 at once): peak RSS
	// 25–27 MB; 30 MB with 8 spares, 34 MB with 4 chunks for every upload.
	spareChunks = 4
	// writers is how many writes of one upload may be in flight, so the disk is not
	// left idle between one O_DIRECT write and the next.
	writers = 2
	// dioAlign is the buffer address, offset and length alignment of O_DIRECT
	// writes: a multiple of the logical block size of 512 and 4096 byte devices
	// (SD cards, SSDs). probeDirectIO checks it on the data folder's device.
	dioAlign = 4096
	// syncWindow is how much a buffered (non-O_DIRECT) upload writes before the
	// kernel is asked to start writing it back.
	syncWindow = 8 << 20
)

var chunkPool = sync.Pool{New: func() any { return newChunk() }}

type chunk struct {
	buf  []byte // chunkSize bytes at a dioAlign-aligned address
	n    int    // bytes of the body in buf
	off  int64  // where buf[0] goes in the file
	refs atomic.Int32
}

func newChunk() *chunk { return &chunk{buf: alignedBuf(chunkSize)} }

// alignedBuf returns n bytes starting at a dioAlign-aligned address.
func alignedBuf(n int) []byte {
	b := make([]byte, n+dioAlign)
	skip := (dioAlign - int(uintptr(unsafe.Pointer(&b[0]))%dioAlign)) % dioAlign
	return b[skip : skip+n : skip+n]
}

// setDirectIO turns O_DIRECT on or off for the open file fd.
func setDirectIO(fd uintptr, on bool) error {
	flags, err := unix.FcntlInt(fd, unix.F_GETFL, 0)
	if err != nil {
		return err
	}
	if on {
		flags |= unix.O_DIRECT
	} else {
		flags &^= unix.O_DIRECT
	}
	_, err = unix.FcntlInt(fd, unix.F_SETFL, flags)
	return err
}

// probeDirectIO writes one aligned block with O_DIRECT to a new file in dir. Uploads
// written that way skip the page cache: no copy into it, no write-back of it later,
// and no memory taken from the rest of the machine. EINVAL or EOPNOTSUPP means the
// file system refuses (some FUSE and network file systems, devices with blocks over
// dioAlign); uploads then use ordinary buffered writes.
func probeDirectIO(dir string) error {
	f, err := os.CreateTemp(dir, "direct-io-probe-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if err := setDirectIO(f.Fd(), true); err != nil {
		return err
	}
	_, err = unix.Pwrite(int(f.Fd()), alignedBuf(dioAlign), 0)
	return err
}

func refusesDirectIO(err error) bool {
	return errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP)
}

// noDirectIO turns direct I/O off for the uploads to come.
func (s *Store) noDirectIO(err error) {
	if s.direct.CompareAndSwap(true, false) {
		s.opts.Logger.Warn().Err(err).Str("dir", s.tmp).Msg("the file system refused a direct I/O write; uploads go through the page cache from now on")
	}
}

// pipeline hashes and writes the chunks that receive fills.
type pipeline struct {
	s      *Store
	f      *os.File
	fd     int
	padded bool        // opened for O_DIRECT: the last chunk is written in whole blocks
	direct atomic.Bool // still O_DIRECT; a refused write turns it off
	h      hash.Hash
	space  *reservation
	ckpt   *checkpoints // nil unless the upload is resumable (partial.go)

	all                 []*chunk // 1 + the spares taken
	free, hashQ, writeQ chan *chunk
	wg                  sync.WaitGroup
	stopped             bool

	errMu sync.Mutex
	err   error // the first write error

	wb writeBehind // while buffered
}

// startPipeline takes one chunk, and up to ringSize-1 more while the store's spares
// have room.
func (s *Store) startPipeline(up *upload, space *reservation) *pipeline {
	f := up.f
	p := &pipeline{
		s: s, f: f, fd: int(f.Fd()), padded: up.direct, h: up.h, space: space, ckpt: up.ckpt,
		free:   make(chan *chunk, ringSize),
		hashQ:  make(chan *chunk, ringSize),
		writeQ: make(chan *chunk, ringSize),
		wb:     writeBehind{fd: int(f.Fd()), started: up.base},
	}
	if p.h == nil {
		p.h = sha256.New()
	}
	p.direct.Store(up.direct)
	p.all = append(p.all, chunkPool.Get().(*chunk))
spare:
	for len(p.all) < ringSize {
		select {
		case s.spares <- struct{}{}:
			p.all = append(p.all, chunkPool.Get().(*chunk))
		default:
			break spare
		}
	}
	for _, c := range p.all {
		p.free <- c
	}
	p.wg.Add(1 + writers)
	go p.hashLoop()
	for range writers {
		go p.writeLoop()
	}
	return p
}

// The window writeBehind waits on must already be written: fewer bytes may be in
// flight than two windows.
const _ = uint(2*syncWindow - ringSize*chunkSize - 1)

// dispatch hands a filled chunk to the hasher and a writer; it comes back to free
// when both are done with it.
func (p *pipeline) dispatch(c *chunk) {
	c.refs.Store(2)
	if p.ckpt != nil {
		p.ckpt.dispatched(c.off + int64(c.n))
	}
	p.hashQ <- c
	p.writeQ <- c
	if !p.direct.Load() {
		p.wb.advance(c.off + int64(c.n))
	}
}

func (p *pipeline) release(c *chunk) {
	if c.refs.Add(-1) == 0 {
		p.free <- c
	}
}

func (p *pipeline) hashLoop() {
	defer p.wg.Done()
	for c := range p.hashQ { // in order: one sender, one receiver
		p.h.Write(c.buf[:c.n])
		if p.ckpt != nil && c.n == len(c.buf) {
			// Only at the end of a full chunk: a partial continued from there is
			// written in whole blocks again.
			p.ckpt.hashed(c.off+int64(c.n), p.h)
		}
		p.release(c)
	}
}

func (p *pipeline) writeLoop() {
	defer p.wg.Done()
	for c := range p.writeQ {
		if p.failed() == nil {
			if err := p.write(c); err != nil {
				p.fail(err)
			} else {
				p.space.wrote(int64(c.n))
				if p.ckpt != nil {
					p.ckpt.written(c.off + int64(c.n))
				}
			}
		}
		p.release(c)
	}
}

// write puts c in the file at its offset with pwrite(2) itself: os.File.WriteAt would
// retry a short write at an unaligned offset, and report EINVAL instead of the reason.
func (p *pipeline) write(c *chunk) error {
	b := c.buf[:c.n]
	if p.padded && c.n%dioAlign != 0 {
		// Only the last chunk is short. Whole blocks, zero-padded so no stale bytes
		// reach the disk; receive truncates the padding.
		end := (c.n + dioAlign - 1) / dioAlign * dioAlign
		clear(c.buf[c.n:end])
		b = c.buf[:end]
	}
	for done := 0; done < len(b); {
		// Read before the write: when both writers are refused, the second may find
		// direct already off, yet its write was refused as direct all the same.
		direct := p.direct.Load()
		n, err := p.s.pwrite(p.fd, b[done:], c.off+int64(done))
		switch {
		case err == unix.EINTR:
			continue
		case err != nil && done == 0 && direct && refusesDirectIO(err):
			// The file system refused O_DIRECT after all (remounted, or something
			// else mounted over tmp/): go on without it.
			p.buffered(err)
			continue
		case err != nil && done > 0:
			return fmt.Errorf("short write at %d (%d of %d bytes), then: %w", c.off, done, len(b), err)
		case err != nil:
			return err
		case n == 0:
			return io.ErrShortWrite
		}
		done += n
	}
	return nil
}

// buffered clears O_DIRECT on the file, for this upload and the store's next ones.
func (p *pipeline) buffered(cause error) {
	p.s.noDirectIO(cause)
	p.errMu.Lock()
	defer p.errMu.Unlock()
	if !p.direct.Load() {
		return
	}
	_ = setDirectIO(uintptr(p.fd), false)
	// Even when fcntl failed: a second refusal is then reported, not retried.
	p.direct.Store(false)
}

func (p *pipeline) fail(err error) {
	p.errMu.Lock()
	defer p.errMu.Unlock()
	if p.err == nil {
		p.err = err
	}
}

func (p *pipeline) failed() error {
	p.errMu.Lock()
	defer p.errMu.Unlock()
	return p.err
}

// stop waits until every dispatched chunk is hashed and written, gives the chunks and
// spares back, and reports the first write error. It may be called more than once,
// and after a panic in fill with a chunk out of the ring.
func (p *pipeline) stop() error {
	if !p.stopped {
		p.stopped = true
		close(p.hashQ)
		close(p.writeQ)
		p.wg.Wait()
		for _, c := range p.all {
			chunkPool.Put(c)
		}
		for range len(p.all) - 1 {
			<-p.s.spares
		}
	}
	return p.failed()
}

// writeBehind starts the kernel's write-back while a buffered upload is still
// arriving; restic's rest-server starts it only at the final fsync, after the whole
// body.
type writeBehind struct {
	fd      int
	started int64
}

func (w *writeBehind) advance(written int64) {
	for written-w.started >= syncWindow {
		// Errors are ignored: this only schedules work that the final fsync does
		// (and reports on) anyway.
		_ = unix.SyncFileRange(w.fd, w.started, syncWindow, unix.SYNC_FILE_RANGE_WRITE)
		// Two windows back the write-back has long started: wait for it and drop those
		// pages, so each upload cycles through ~24 MiB of page cache instead of growing
		// it by its whole size. Measured (bench/upload): 4 concurrent 512 MiB uploads
		// went from 0.60x to 1.35x of one upload; one upload unchanged.
		if back := w.started - 2*syncWindow; back >= 0 {
			_ = unix.SyncFileRange(w.fd, back, syncWindow,
				unix.SYNC_FILE_RANGE_WAIT_BEFORE|unix.SYNC_FILE_RANGE_WRITE|unix.SYNC_FILE_RANGE_WAIT_AFTER)
			_ = unix.Fadvise(w.fd, back, syncWindow, unix.FADV_DONTNEED)
		}
		w.started += syncWindow
	}
}

func (p *pipeline) next() *chunk    { return <-p.free }
func (p *pipeline) unused(c *chunk) { p.free <- c }
func (p *pipeline) sum() []byte     { return p.h.Sum(nil) }

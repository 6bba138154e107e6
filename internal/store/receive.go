package store

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"math"
	"os"
)

// chunkWriter is what receive needs of the file writer (filewriter.go): a chunk to
// fill, a filled one to hash and write at its offset, and, once stopped, the body's
// SHA-256 and the first write error.
type chunkWriter interface {
	next() *chunk      // a chunk to fill; waits while all are hashed or written
	unused(c *chunk)   // gives back a chunk next returned, unfilled
	dispatch(c *chunk) // hashes c in order and writes it at c.off
	failed() error     // the first write error so far
	stop() error       // waits for every dispatched chunk; the first write error
	sum() []byte       // the SHA-256 of every chunk dispatched, after stop
}

// upload is the file an episode's body goes to: a new one in tmp/, or a partial
// continued after its first base bytes (partial.go).
type upload struct {
	f      *os.File
	direct bool // opened for O_DIRECT: written in whole blocks, padded at the end
	base   int64
	h      hash.Hash    // the SHA-256 of f's first base bytes, continued over the body
	ckpt   *checkpoints // a resumable upload's progress; nil for others
}

// cutError is a body that stopped arriving before its end (the client went away, the
// network failed, a deadline passed, the request was cancelled): what arrived may be
// kept as a partial (partial.go). Every other error of receive is final.
type cutError struct{ err error }

func (e *cutError) Error() string { return e.err.Error() }
func (e *cutError) Unwrap() error { return e.err }

// receive writes body to up.f after its first up.base bytes and returns the episode's
// size once the body is complete, the whole episode matches sha, and f is on disk and
// closed. Each chunk is covered by space before it is written. On an error, or a panic
// in body.Read, every write has ended and f is left open for the caller to remove or
// keep.
func (s *Store) receive(ctx context.Context, sha string, body io.Reader, maxBytes int64, space *reservation, up *upload) (size int64, err error) {
	if maxBytes < 0 {
		return 0, fmt.Errorf("receive body: negative size limit %d", maxBytes)
	}
	var p chunkWriter = s.startPipeline(up, space)
	defer func() {
		if perr := p.stop(); perr != nil && err != nil && !errors.Is(err, perr) {
			// A write that failed makes a cut final too: nothing is kept.
			if cut, ok := err.(*cutError); ok {
				err = cut.err
			}
			err = errors.Join(err, fmt.Errorf("write upload file: %w", noSpace(perr)))
		}
	}()

	limit := maxBytes
	if limit < math.MaxInt64 {
		limit++ // one byte past the limit tells "too large" from "exactly at it"
	}
	size = up.base
	for {
		if err := ctx.Err(); err != nil {
			return 0, &cutError{fmt.Errorf("receive body: %w", err)}
		}
		if err := p.failed(); err != nil {
			return 0, fmt.Errorf("write upload file: %w", noSpace(err))
		}
		c := p.next()
		n, rerr := fill(body, c.buf[:min(int64(chunkSize), limit-size)])
		if size+int64(n) > maxBytes {
			p.unused(c)
			return 0, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, maxBytes)
		}
		if err := space.cover(size - up.base + int64(n)); err != nil {
			p.unused(c)
			return 0, err
		}
		c.n, c.off = n, size
		p.dispatch(c)
		size += int64(n)
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return 0, &cutError{fmt.Errorf("receive body: %w", rerr)}
		}
	}
	if err := p.stop(); err != nil {
		return 0, fmt.Errorf("write upload file: %w", noSpace(err))
	}
	if got := hex.EncodeToString(p.sum()); got != sha {
		return 0, &DigestMismatchError{Declared: sha, Got: got}
	}
	if up.direct {
		// Opened for O_DIRECT, it was written in whole blocks: cut the last one's
		// padding off.
		if err := up.f.Truncate(size); err != nil {
			return 0, fmt.Errorf("truncate upload file: %w", noSpace(err))
		}
	}
	if err := up.f.Sync(); err != nil {
		return 0, fmt.Errorf("fsync upload file: %w", noSpace(err))
	}
	if err := up.f.Close(); err != nil {
		return 0, fmt.Errorf("close upload file: %w", noSpace(err))
	}
	return size, nil
}

// createUpload makes a new file in tmp/, opened for direct I/O unless the data
// folder's file system has refused it.
func (s *Store) createUpload() (*os.File, bool, error) {
	f, err := os.CreateTemp(s.tmp, "ep-*")
	if err != nil {
		return nil, false, err
	}
	if err := f.Chmod(filePerm); err != nil { // whatever the umask
		f.Close()
		os.Remove(f.Name())
		return nil, false, err
	}
	direct := s.direct.Load()
	if direct {
		if err := setDirectIO(f.Fd(), true); err != nil {
			// Refused since Open's probe: this upload and the next go buffered.
			s.noDirectIO(err)
			direct = false
		}
	}
	return f, direct, nil
}

// fill reads until b is full or r fails, so each chunk but the last is whole: writes
// stay aligned, and each hash call gets a full buffer however small the pieces the
// network delivers.
func fill(r io.Reader, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := r.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

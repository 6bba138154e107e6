package store

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
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

// receive writes body to a new file in tmp/ and returns its name once the body is
// complete, matches sha, and is on disk. Each chunk is covered by space before it is
// written. On any error, or a panic in body.Read, the file is already gone.
func (s *Store) receive(ctx context.Context, sha string, body io.Reader, maxBytes int64, space *reservation) (name string, size int64, err error) {
	if maxBytes < 0 {
		return "", 0, fmt.Errorf("receive body: negative size limit %d", maxBytes)
	}
	f, direct, err := s.createUpload()
	if err != nil {
		return "", 0, fmt.Errorf("create upload file: %w", noSpace(err))
	}
	var p chunkWriter = s.startPipeline(f, direct, space)
	kept := false
	defer func() {
		if perr := p.stop(); perr != nil && err != nil && !errors.Is(err, perr) {
			err = errors.Join(err, fmt.Errorf("write upload file: %w", noSpace(perr)))
		}
		if !kept {
			f.Close()
			os.Remove(f.Name())
		}
	}()

	limit := maxBytes
	if limit < math.MaxInt64 {
		limit++ // one byte past the limit tells "too large" from "exactly at it"
	}
	for {
		if err := ctx.Err(); err != nil {
			return "", 0, fmt.Errorf("receive body: %w", err)
		}
		if err := p.failed(); err != nil {
			return "", 0, fmt.Errorf("write upload file: %w", noSpace(err))
		}
		c := p.next()
		n, rerr := fill(body, c.buf[:min(int64(chunkSize), limit-size)])
		if size+int64(n) > maxBytes {
			p.unused(c)
			return "", 0, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, maxBytes)
		}
		if err := space.cover(size + int64(n)); err != nil {
			p.unused(c)
			return "", 0, err
		}
		c.n, c.off = n, size
		p.dispatch(c)
		size += int64(n)
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return "", 0, fmt.Errorf("receive body: %w", rerr)
		}
	}
	if err := p.stop(); err != nil {
		return "", 0, fmt.Errorf("write upload file: %w", noSpace(err))
	}
	if got := hex.EncodeToString(p.sum()); got != sha {
		return "", 0, &DigestMismatchError{Declared: sha, Got: got}
	}
	if direct {
		// Opened for O_DIRECT, it was written in whole blocks: cut the last one's
		// padding off.
		if err := f.Truncate(size); err != nil {
			return "", 0, fmt.Errorf("truncate upload file: %w", noSpace(err))
		}
	}
	if err := f.Sync(); err != nil {
		return "", 0, fmt.Errorf("fsync upload file: %w", noSpace(err))
	}
	if err := f.Close(); err != nil {
		return "", 0, fmt.Errorf("close upload file: %w", noSpace(err))
	}
	kept = true
	return f.Name(), size, nil
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

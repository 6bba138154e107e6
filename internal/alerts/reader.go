package alerts

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"
)

// MaxLineBytes bounds one line; a longer one is skipped as it streams past, so a
// corrupt file cannot make a reader hold it all in memory.
const MaxLineBytes = 1 << 20

// keepTail is how much of the last line read is remembered to notice a truncation
// that the file has since outgrown: its size alone cannot tell then.
const keepTail = 256

// RotationGrace is how long a file renamed away is still read after the path names a
// new one: a writer that opened it just before the rename may still append a line.
const RotationGrace = 5 * time.Second

// Reader hands out the complete lines of the file at one path, each once, from where
// it left off. It survives the path being renamed away and a new file created
// (logrotate's default; lines appended to the old file during RotationGrace still
// come, before the new file's) and the file being truncated (copytruncate; reading
// starts again at its top). It is not safe for concurrent use.
type Reader struct {
	path     string
	cur      *source
	old      *source // renamed away, read until oldUntil
	oldUntil time.Time
	buf      []byte
	now      func() time.Time

	// Truncations and Rotations count what the reader went through.
	Truncations, Rotations int
}

// source is one open file and how far it has been read.
type source struct {
	f        *os.File
	id       os.FileInfo // tells when path names another file
	off      int64       // bytes consumed, partial line included
	partial  []byte
	skipping bool   // inside a line over MaxLineBytes
	tail     []byte // the end of the last complete line, newline included …
	tailEnd  int64  // … and the offset right after it
}

// NewReader returns a reader of path; the file need not exist yet.
func NewReader(path string) *Reader {
	return &Reader{path: path, buf: make([]byte, 64<<10), now: time.Now}
}

// Path is the file the reader follows.
func (r *Reader) Path() string { return r.path }

// Lines calls fn with each complete line (without its newline) available now, then
// returns. A missing file has no lines yet. fn must not keep the slice. An error from
// fn stops the read and is returned.
func (r *Reader) Lines(fn func(line []byte) error) error {
	if r.old != nil {
		if err := r.drain(r.old, fn); err != nil {
			return err
		}
		if r.now().After(r.oldUntil) {
			if err := r.finish(r.old, fn); err != nil {
				return err
			}
			r.old = nil
		}
	}
	for {
		if r.cur == nil {
			s, err := r.open()
			if err != nil || s == nil {
				return err
			}
			r.cur = s
		}
		if err := r.checkTruncated(r.cur); err != nil {
			return err
		}
		if err := r.drain(r.cur, fn); err != nil {
			return err
		}
		moved, err := r.moved()
		if err != nil || !moved {
			return err
		}
		// path names another file, or none: read the old one to its end now (a writer
		// may have appended between the drain and the rename), keep an eye on it for
		// RotationGrace, and go on with the new one.
		if err := r.drain(r.cur, fn); err != nil {
			return err
		}
		if r.old != nil {
			if err := r.finish(r.old, fn); err != nil {
				return err
			}
		}
		r.old, r.oldUntil, r.cur = r.cur, r.now().Add(RotationGrace), nil
		r.Rotations++
	}
}

// finish hands on the last line of a file that ends without a newline (a torn one is
// garbage that parsers skip) and closes it.
func (r *Reader) finish(s *source, fn func([]byte) error) error {
	defer s.f.Close()
	if len(s.partial) > 0 && !s.skipping {
		return fn(s.partial)
	}
	return nil
}

// Close releases the open files; a later Lines starts over at the top of whatever
// file the path names then.
func (r *Reader) Close() {
	for _, s := range []*source{r.cur, r.old} {
		if s != nil {
			s.f.Close()
		}
	}
	r.cur, r.old = nil, nil
}

func (r *Reader) open() (*source, error) {
	f, err := os.Open(r.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("alerts file: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("alerts file: %w", err)
	}
	return &source{f: f, id: fi}, nil
}

func (r *Reader) moved() (bool, error) {
	fi, err := os.Stat(r.path)
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("alerts file: %w", err)
	}
	return !os.SameFile(fi, r.cur.id), nil
}

// checkTruncated starts over at the top when the file got shorter than what was read,
// or when the last line read is no longer where it was (truncated, then written past
// the old size before this look).
func (r *Reader) checkTruncated(s *source) error {
	fi, err := s.f.Stat()
	if err != nil {
		return fmt.Errorf("alerts file: %w", err)
	}
	truncated := fi.Size() < s.off
	if !truncated && len(s.tail) > 0 {
		got := make([]byte, len(s.tail))
		_, err := s.f.ReadAt(got, s.tailEnd-int64(len(s.tail)))
		truncated = err != nil || !bytes.Equal(got, s.tail)
	}
	if truncated {
		r.Truncations++
		s.off, s.partial, s.skipping, s.tail, s.tailEnd = 0, s.partial[:0], false, s.tail[:0], 0
	}
	return nil
}

// drain reads s from where it was to its current end.
func (r *Reader) drain(s *source, fn func([]byte) error) error {
	for {
		n, err := s.f.ReadAt(r.buf, s.off)
		if n > 0 {
			if ferr := s.split(r.buf[:n], fn); ferr != nil {
				return ferr
			}
		}
		if errors.Is(err, io.EOF) || (err == nil && n == 0) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read alerts file %s: %w", r.path, err)
		}
	}
}

func (s *source) split(chunk []byte, fn func([]byte) error) error {
	for len(chunk) > 0 {
		i := bytes.IndexByte(chunk, '\n')
		if i < 0 {
			s.off += int64(len(chunk))
			if !s.skipping {
				s.partial = append(s.partial, chunk...)
				if len(s.partial) > MaxLineBytes {
					s.partial, s.skipping = s.partial[:0], true
				}
			}
			return nil
		}
		s.off += int64(i + 1)
		line := chunk[:i]
		if len(s.partial) > 0 {
			line = append(s.partial, line...)
			s.partial = line[:0]
		}
		skipped := s.skipping || len(line) > MaxLineBytes
		s.skipping = false
		s.remember(line)
		if !skipped {
			if err := fn(line); err != nil {
				return err
			}
		}
		chunk = chunk[i+1:]
	}
	return nil
}

func (s *source) remember(line []byte) {
	if len(line) >= keepTail {
		line = line[len(line)-keepTail+1:]
	}
	s.tail = append(append(s.tail[:0], line...), '\n')
	s.tailEnd = s.off
}

package alerts

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"time"
)

// backChunk is how much Backward reads at a time.
const backChunk = 64 << 10

// Backward hands fn the lines of the file at path from the last to the first, until fn
// returns false or the top is reached: a look at the recent lines that does not read
// the file's whole history. A last line without its newline (torn) is handed on too,
// for Parse to skip; blank lines and lines over MaxLineBytes are skipped. A missing
// file has no lines. fn must not keep the slice.
func Backward(path string, fn func(line []byte) bool) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("alerts file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("alerts file: %w", err)
	}
	if fi.IsDir() {
		return fmt.Errorf("alerts file %s is a directory", path)
	}
	if err := backward(f, fi.Size(), backChunk, fn); err != nil {
		return fmt.Errorf("read alerts file %s: %w", path, err)
	}
	return nil
}

func backward(r io.ReaderAt, size int64, chunk int, fn func([]byte) bool) error {
	buf := make([]byte, chunk)
	var carry, spare, joined []byte // carry: the end of a line that starts further up
	skipping := false               // the line being read back is over MaxLineBytes
	emit := func(line []byte) bool {
		more := true
		if !skipping && len(line) > 0 && len(line) <= MaxLineBytes {
			more = fn(line)
		}
		skipping = false
		return more
	}
	for end := size; end > 0; {
		start := max(end-int64(chunk), 0)
		data := buf[:end-start]
		if n, err := r.ReadAt(data, start); n < len(data) {
			if err == nil {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		end = start
		for {
			i := bytes.LastIndexByte(data, '\n')
			if i < 0 {
				break
			}
			line := data[i+1:]
			if len(carry) > 0 {
				joined = append(append(joined[:0], line...), carry...)
				line, carry = joined, carry[:0]
			}
			if !emit(line) {
				return nil
			}
			data = data[:i]
		}
		if skipping {
			continue
		}
		spare = append(append(spare[:0], data...), carry...)
		carry, spare = spare, carry
		if len(carry) > MaxLineBytes {
			carry, skipping = carry[:0], true
		}
	}
	emit(carry) // the file's first line
	return nil
}

// Recent returns the lines of the file at path with a ts at or after since, oldest
// first, reading back from the end to the first line with a ts before since: its cost
// follows the recent lines, not the file's age. Checks append in the order they ran,
// one at a time, each with its own evaluation time as ts, so the lines above that one
// are older still; a check run with --now in the past, or a clock stepped back, breaks
// that order for the lines it wrote.
func Recent(path string, since time.Time) ([]Alert, error) {
	var back []Alert
	if err := Backward(path, recentSince(&back, since)); err != nil {
		return nil, err
	}
	slices.Reverse(back)
	return back, nil
}

func recentSince(back *[]Alert, since time.Time) func([]byte) bool {
	return func(line []byte) bool {
		a, ok := Parse(line)
		if !ok {
			return true
		}
		if a.TS.Before(since) {
			return false
		}
		*back = append(*back, a)
		return true
	}
}

package update

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"strconv"

	"github.com/cis490/cis490/internal/client"
	"github.com/cis490/cis490/internal/release"
)

// maxResumes bounds how often one download continues after its body was cut.
const maxResumes = 5

// ErrDownload is a download that did not yield the manifest's bytes.
var ErrDownload = errors.New("download failed")

// download streams commit's target file into f (empty, at offset 0), hashing as it
// arrives: a body cut before its end is continued with a Range request from where it
// stopped, so the bytes are read once. It checks size and SHA-256 against t, then
// fsyncs. progress, when set, sees every byte written.
func download(ctx context.Context, c *client.Client, commit string, t release.Target, f *os.File, progress io.Writer) error {
	h := sha256.New()
	var have int64
	var lastErr error
	for attempt := 0; have < t.Size && attempt <= maxResumes; attempt++ {
		n, err := fetchFrom(ctx, c, release.FileURLPath(commit, t.File), have, t.Size, f, h, progress)
		have += n
		if err == nil {
			continue
		}
		lastErr = err
		var restart *restartError
		switch {
		case errors.As(err, &restart):
			// The receiver ignored the Range and sent the whole file: start over.
			if err := f.Truncate(0); err != nil {
				return err
			}
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				return err
			}
			h.Reset()
			have = 0
		case !resumable(err) || ctx.Err() != nil:
			return err
		}
	}
	if have < t.Size {
		return fmt.Errorf("%w: %s: %d of %d bytes after %d attempts: %v", ErrDownload, t.File, have, t.Size, maxResumes+1, lastErr)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != t.SHA256 {
		return fmt.Errorf("%w: %s has SHA-256 %s, the signed manifest says %s: the receiver's copy is corrupt or was tampered with", ErrDownload, t.File, got, t.SHA256)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", f.Name(), err)
	}
	return nil
}

// readError is a body that broke off while it was read: worth resuming.
type readError struct{ err error }

func (e *readError) Error() string { return "the download broke off: " + e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

func resumable(err error) bool {
	var re *readError
	return errors.As(err, &re)
}

type restartError struct{}

func (restartError) Error() string { return "the receiver sent the whole file again" }

// fetchFrom GETs path from offset and appends what arrives to f, at most size bytes
// in all. It returns how many bytes it wrote.
func fetchFrom(ctx context.Context, c *client.Client, path string, offset, size int64, f *os.File, h hash.Hash, progress io.Writer) (int64, error) {
	req := client.Request{Method: http.MethodGet, Path: path, Header: http.Header{}}
	if offset > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(offset, 10)+"-")
	}
	res, err := c.Do(ctx, req)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrDownload, err)
	}
	switch {
	case offset > 0 && res.StatusCode == http.StatusOK:
		res.Body.Close()
		return 0, &restartError{}
	case res.StatusCode != http.StatusOK && res.StatusCode != http.StatusPartialContent:
		return 0, fmt.Errorf("%w: %w", ErrDownload, c.StatusError(res))
	}
	defer res.Body.Close()
	w := io.MultiWriter(f, h)
	if progress != nil {
		w = io.MultiWriter(f, h, progress)
	}
	// One byte more than the manifest allows tells a body that is too long.
	n, err := io.Copy(w, io.LimitReader(res.Body, size-offset+1))
	switch {
	case err != nil && isWriteError(err):
		return n, err
	case err != nil:
		return n, &readError{err}
	case offset+n > size:
		return n, fmt.Errorf("%w: the receiver sent more than the manifest's %d bytes", ErrDownload, size)
	case offset+n < size:
		return n, &readError{io.ErrUnexpectedEOF}
	}
	return n, nil
}

// isWriteError tells a failure to write the file (a full disk) from the body
// breaking off: io.Copy returns either.
func isWriteError(err error) bool {
	var pe *os.PathError
	return errors.As(err, &pe) && pe.Op == "write"
}

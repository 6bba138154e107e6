// Package ship sends the spool's finished episodes to the receiver, oldest first,
// each exactly once (SPEC §4.2).
package ship

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/gofrs/flock"
	"github.com/rs/zerolog"

	"github.com/cis490/cis490/internal/client"
	"github.com/cis490/cis490/internal/fsutil"
	"github.com/cis490/cis490/internal/protocol"
	"github.com/cis490/cis490/internal/spool"
)

// ErrLocked means another ship run holds the spool's lock.
var ErrLocked = errors.New("another cis490 ship run holds the spool lock")

// Options configure a run.
type Options struct {
	SpoolDir string
	MaxAge   time.Duration
	KeepSent time.Duration
	Client   *client.Client
	Logger   zerolog.Logger
	// Progress, when set, receives progress events (a terminal progress bar).
	Progress Progress
	Now      func() time.Time
}

// Progress follows the bytes of a run.
type Progress interface {
	Start(files int, bytes int64)
	Reader(r io.Reader) io.Reader
	Finish()
}

// Summary is what a run did; it is also the one-line report.
type Summary struct {
	Shipped    int           `json:"shipped"`
	Duplicates int           `json:"duplicates"`
	Kept       int           `json:"kept"`
	Rejected   int           `json:"rejected"`
	Bytes      int64         `json:"bytes"`
	Elapsed    time.Duration `json:"elapsed"`
	Swept      Swept         `json:"swept"`
	// Remaining counts finished files still in outbox/ after the run.
	Remaining int `json:"remaining"`
}

// MarshalJSON writes Elapsed as a Go duration ("2.5s"): a bare number in a JSON log
// says nothing of its unit.
func (s Summary) MarshalJSON() ([]byte, error) {
	type plain Summary
	return json.Marshal(struct {
		plain
		Elapsed string `json:"elapsed"`
	}{plain(s), s.Elapsed.Round(time.Millisecond).String()})
}

func (s Summary) String() string {
	return fmt.Sprintf("shipped %d, duplicates %d, kept %d, rejected %d, %s in %s (%d left in outbox)",
		s.Shipped, s.Duplicates, s.Kept, s.Rejected, fsutil.HumanBytes(uint64(s.Bytes)), s.Elapsed.Round(time.Millisecond), s.Remaining)
}

// StopError ends a run early: the receiver refused this host in a way every later
// request would repeat (426, 428, 401, 403).
type StopError struct{ *client.APIError }

func (e *StopError) Unwrap() error { return e.APIError }

type run struct {
	opts  Options
	spool spool.Spool
	log   zerolog.Logger
}

// Lock takes the spool's lock, or returns ErrLocked. The caller releases it.
func Lock(spoolDir string) (unlock func(), err error) {
	if err := os.MkdirAll(spoolDir, 0o750); err != nil {
		return nil, fmt.Errorf("ship.spool_dir %s: %w", spoolDir, err)
	}
	l := flock.New(filepath.Join(spoolDir, ".ship.lock"))
	ok, err := l.TryLock()
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", l.Path(), err)
	}
	if !ok {
		return nil, ErrLocked
	}
	return func() { _ = l.Unlock() }, nil
}

// Run does one pass: lock, sweep, heartbeat, ship the outbox.
func Run(ctx context.Context, opts Options) (Summary, error) {
	unlock, err := Lock(opts.SpoolDir)
	if err != nil {
		return Summary{}, err
	}
	defer unlock()
	return Pass(ctx, opts)
}

// Pass is one run under a lock the caller already holds (Watch holds it throughout).
func Pass(ctx context.Context, opts Options) (Summary, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	r := &run{opts: opts, spool: spool.New(opts.SpoolDir), log: opts.Logger}
	start := time.Now()
	sum, err := r.pass(ctx)
	sum.Elapsed = time.Since(start)
	if queue, qerr := r.spool.Queue(); qerr == nil {
		sum.Remaining = len(queue)
	}
	return sum, err
}

func (r *run) pass(ctx context.Context) (Summary, error) {
	var sum Summary
	if err := r.spool.Prepare(); err != nil {
		return sum, err
	}
	var err error
	if sum.Swept, err = r.sweep(); err != nil {
		return sum, fmt.Errorf("sweep spool: %w", err)
	}
	if err := Heartbeat(ctx, r.opts.Client); err != nil {
		return sum, err
	}
	queue, err := r.spool.Queue()
	if err != nil {
		return sum, err
	}
	if len(queue) == 0 {
		return sum, nil
	}
	if p := r.opts.Progress; p != nil {
		var total int64
		for _, f := range queue {
			total += f.Size
		}
		p.Start(len(queue), total)
		defer p.Finish()
	}
	// The next file is hashed while this one uploads, so hashing (one core) and
	// sending (the other) overlap instead of adding up.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for h := range hashAhead(ctx, queue) {
		if err := r.ship(ctx, h, &sum); err != nil {
			return sum, err
		}
	}
	return sum, ctx.Err()
}

// Heartbeat tells the receiver this host is alive.
func Heartbeat(ctx context.Context, c *client.Client) error {
	res, err := c.Do(ctx, client.Request{Method: http.MethodPost, Path: "/v1/heartbeat"})
	if err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	if res.StatusCode == http.StatusNoContent || res.StatusCode == http.StatusOK {
		res.Body.Close()
		return nil
	}
	apiErr := c.StatusError(res)
	if stops(apiErr.Status) {
		return &StopError{apiErr}
	}
	return fmt.Errorf("heartbeat: %w", apiErr)
}

func stops(status int) bool {
	switch status {
	case http.StatusUpgradeRequired, http.StatusPreconditionRequired, http.StatusUnauthorized, http.StatusForbidden:
		return true
	}
	return false
}

func (r *run) ship(ctx context.Context, h hashed, sum *Summary) error {
	f := h.file
	log := r.log.With().Str("file", f.Name).Int64("size", f.Size).Logger()
	if h.err != nil {
		if errors.Is(h.err, os.ErrNotExist) {
			return nil // taken away by someone else meanwhile
		}
		sum.Kept++
		log.Error().Err(h.err).Msg("could not read the file; it stays for the next run")
		return nil
	}
	if !protocol.ValidEpisode(f.Name) {
		sum.Rejected++
		return r.spool.Reject(f, spool.Reason{RejectedAt: r.opts.Now().UTC(), Reason: "the file name is not a valid episode name: " +
			"1 to 200 letters, digits, '.', '_' or '-', starting with a letter or digit; rename it and move it back to outbox/"})
	}
	res, err := r.opts.Client.Do(ctx, client.Request{
		Method: http.MethodPut,
		Path:   "/v1/episodes",
		Header: http.Header{protocol.HeaderEpisode: {f.Name}, protocol.HeaderSHA256: {h.sha}},
		Body:   r.opener(f),
	})
	if err != nil {
		sum.Kept++
		return fmt.Errorf("upload %s: %w", f.Name, err)
	}
	switch {
	case res.StatusCode == http.StatusCreated || res.StatusCode == http.StatusOK:
		res.Body.Close()
		if res.StatusCode == http.StatusCreated {
			sum.Shipped++
			sum.Bytes += f.Size
		} else {
			sum.Duplicates++
		}
		log.Info().Int("status", res.StatusCode).Str("sha256", h.sha).Msg("shipped")
		return r.spool.MarkSent(f, r.opts.Now())
	}
	apiErr := r.opts.Client.StatusError(res)
	switch {
	case res.StatusCode == http.StatusRequestEntityTooLarge || res.StatusCode == http.StatusUnprocessableEntity:
		sum.Rejected++
		log.Error().Int("status", apiErr.Status).Str("reason", apiErr.Message).Msg("receiver rejected the file; moved to rejected/")
		return r.spool.Reject(f, spool.Reason{RejectedAt: r.opts.Now().UTC(), Status: apiErr.Status, Reason: apiErr.Message})
	case stops(res.StatusCode):
		sum.Kept++
		return &StopError{apiErr}
	case res.StatusCode >= 500:
		sum.Kept++
		return fmt.Errorf("upload %s: %w", f.Name, apiErr)
	default:
		sum.Kept++
		log.Error().Err(apiErr).Msg("upload refused; the file stays for the next run")
		return nil
	}
}

// opener reopens the file for each attempt, so a retry resends it from the start.
func (r *run) opener(f spool.File) func() (io.ReadCloser, int64, error) {
	return func() (io.ReadCloser, int64, error) {
		file, err := os.Open(f.Path)
		if err != nil {
			return nil, 0, err
		}
		info, err := file.Stat()
		if err != nil {
			file.Close()
			return nil, 0, err
		}
		var rd io.Reader = file
		if r.opts.Progress != nil {
			rd = r.opts.Progress.Reader(file)
		}
		return readCloser{rd, file}, info.Size(), nil
	}
}

type readCloser struct {
	io.Reader
	io.Closer
}

type hashed struct {
	file spool.File
	sha  string
	err  error
}

// hashAhead hashes the queue in order, at most one file ahead of the uploader.
func hashAhead(ctx context.Context, queue []spool.File) <-chan hashed {
	out := make(chan hashed, 1)
	go func() {
		defer close(out)
		for _, f := range queue {
			sha, err := hashFile(f.Path)
			select {
			case out <- hashed{file: f, sha: sha, err: err}:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

func hashFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	buf := bufPool.Get().(*[]byte)
	defer bufPool.Put(buf)
	if _, err := io.CopyBuffer(h, f, *buf); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

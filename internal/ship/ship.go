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
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gofrs/flock"
	"github.com/rs/zerolog"

	"github.com/cis490/cis490/internal/client"
	"github.com/cis490/cis490/internal/humanize"
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
	// NoResume sends a cut upload whole again instead of resuming it where the
	// receiver's partial ends (ship --no-resume).
	NoResume bool
}

// Progress follows the bytes of a run.
type Progress interface {
	Start(files int, bytes int64)
	// Set says done bytes of the run's total are sent: a resumed upload starts past
	// what the receiver kept, one sent whole again starts back at its file's start.
	Set(done int64)
	Finish()
}

// Summary is what a run did; it is also the one-line report.
type Summary struct {
	Shipped    int `json:"shipped"`
	Duplicates int `json:"duplicates"`
	Kept       int `json:"kept"`
	Rejected   int `json:"rejected"`
	// Replaced counts files a producer replaced while they were being sent: what was
	// sent is on the receiver, the new file stays in outbox/ for the next run.
	Replaced int `json:"replaced"`
	// Resumed counts the times an upload continued where the receiver's partial
	// ended, rather than starting again from the first byte.
	Resumed int           `json:"resumed"`
	Bytes   int64         `json:"bytes"`
	Elapsed time.Duration `json:"elapsed"`
	Swept   Swept         `json:"swept"`
	// Remaining counts what is still in outbox/ after the run: finished files, and
	// the Unshippable entries among them.
	Remaining int `json:"remaining"`
	// Unshippable counts what ship never sends (symlinks, folders, other non-regular
	// files): each is reported, and the run fails while any is there.
	Unshippable int `json:"unshippable"`
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
	out := fmt.Sprintf("shipped %d, duplicates %d, kept %d, rejected %d", s.Shipped, s.Duplicates, s.Kept, s.Rejected)
	if s.Replaced > 0 {
		out += fmt.Sprintf(", %d replaced while being sent", s.Replaced)
	}
	if s.Resumed > 0 {
		out += fmt.Sprintf(", resumed %d time(s) after a cut", s.Resumed)
	}
	out += fmt.Sprintf(", %s in %s (%d left in outbox", humanize.Bytes(uint64(s.Bytes)), s.Elapsed.Round(time.Millisecond), s.Remaining)
	if s.Unshippable > 0 {
		out += fmt.Sprintf(", %d of them will never ship: not regular files", s.Unshippable)
	}
	return out + ")"
}

// StopError ends a run early: the receiver refused this host in a way every later
// request would repeat (426, 428, 401, 403).
type StopError struct{ *client.APIError }

func (e *StopError) Unwrap() error { return e.APIError }

// UnshippableError names what in outbox/ ship will never send. It fails the run:
// left alone, these would sit there unseen forever.
type UnshippableError struct {
	Outbox string
	Strays []spool.Stray
}

func (e *UnshippableError) Error() string {
	names := make([]string, len(e.Strays))
	for i, s := range e.Strays {
		names[i] = fmt.Sprintf("%s (%s)", s.Name, s.Kind)
	}
	return fmt.Sprintf("%s holds what ship never sends: %s; only regular files are shipped and links are not followed: "+
		"move the file itself there (mv, not ln -s), or remove these", e.Outbox, strings.Join(names, ", "))
}

// shipper is one pass's state: the options, the spool and the logger it ships with.
type shipper struct {
	opts  Options
	spool spool.Spool
	log   zerolog.Logger
	// resume: cut uploads continue where the receiver's partial ends; off with
	// --no-resume, or once the receiver shows it cannot (no HEAD).
	resume bool
	// done is how many bytes of the queue the files before this one account for.
	done int64
}

// Lock takes the spool's lock, or returns ErrLocked. The caller releases it. The
// spool's folder must exist (`cis490 install lab-host` makes it) and be writable: a
// missing or read-only spool is a *spool.Problem that says what to do.
func Lock(spoolDir string) (unlock func(), err error) {
	sp := spool.New(spoolDir)
	if p := sp.Problem(); p != nil {
		return nil, p
	}
	l := flock.New(filepath.Join(spoolDir, ".ship.lock"))
	ok, err := l.TryLock()
	if p := sp.Diagnose(err); p != nil {
		return nil, p
	}
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", l.Path(), err)
	}
	if !ok {
		return nil, ErrLocked
	}
	return func() { _ = l.Unlock() }, nil
}

// Once does one pass under the spool's lock: lock, sweep, heartbeat, ship the outbox.
func Once(ctx context.Context, opts Options) (Summary, error) {
	unlock, err := Lock(opts.SpoolDir)
	if err != nil {
		return Summary{}, err
	}
	defer unlock()
	return passLocked(ctx, opts)
}

// passLocked is one pass under a lock the caller already holds (Watch holds it
// throughout), with the summary's totals of what is left.
func passLocked(ctx context.Context, opts Options) (Summary, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	r := &shipper{opts: opts, spool: spool.New(opts.SpoolDir), log: opts.Logger, resume: !opts.NoResume}
	start := time.Now()
	sum, err := r.sweepAndShip(ctx)
	sum.Elapsed = time.Since(start)
	if queue, qerr := r.spool.Queue(); qerr == nil {
		sum.Remaining = len(queue)
	}
	if strays, serr := r.spool.Strays(); serr == nil && len(strays) > 0 {
		sum.Unshippable = len(strays)
		sum.Remaining += len(strays)
		err = errors.Join(err, &UnshippableError{Outbox: r.spool.Path(spool.Outbox), Strays: strays})
	}
	return sum, err
}

func (r *shipper) sweepAndShip(ctx context.Context) (Summary, error) {
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
	ahead := hashAhead(ctx, queue)
	defer func() {
		cancel()
		// Closed in the background: on an early stop the hasher may be halfway
		// through a large file, and the run need not wait for it.
		go func() {
			for h := range ahead {
				h.close()
			}
		}()
	}()
	for h := range ahead {
		err := r.ship(ctx, h, &sum)
		r.done += h.file.Size
		h.close()
		if err != nil {
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

func (r *shipper) ship(ctx context.Context, h hashed, sum *Summary) error {
	f := h.file
	log := r.log.With().Str("file", f.Name).Int64("size", f.Size).Logger()
	if h.err != nil {
		if errors.Is(h.err, os.ErrNotExist) {
			return nil // taken away by someone else meanwhile
		}
		if errors.Is(h.err, errNotRegular) {
			return nil // replaced by a link or the like meanwhile: reported with the strays
		}
		sum.Kept++
		log.Error().Err(h.err).Msg("could not read the file; it stays for the next run")
		return nil
	}
	if !protocol.ValidEpisode(f.Name) {
		return r.reject(f, spool.Reason{RejectedAt: r.opts.Now().UTC(), Reason: "the file name is not a valid episode name: " +
			"1 to 200 letters, digits, '.', '_' or '-', starting with a letter or digit; rename it and move it back to outbox/"}, sum, log)
	}
	u := &upload{r: r, h: h, log: log, base: r.done}
	res, err := u.send(ctx)
	sum.Resumed += u.resumed
	if errors.Is(err, errChanged) {
		sum.Kept++
		log.Warn().Msg("the file changed while it was being sent (written to in place): nothing of it is stored; it stays in outbox/ and is hashed again next run")
		return nil
	}
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
		return r.markSent(f, sum, log)
	}
	apiErr := r.opts.Client.StatusError(res)
	switch {
	case res.StatusCode == http.StatusUnprocessableEntity && u.unchanged() != nil:
		// The digest differs because a producer wrote into the file while it was sent:
		// the file is not bad, it is being replaced.
		sum.Kept++
		log.Warn().Msg("the file changed while it was being sent (written to in place); the receiver refused the mix (422): it stays in outbox/ and is hashed again next run")
		return nil
	case res.StatusCode == http.StatusRequestEntityTooLarge || res.StatusCode == http.StatusUnprocessableEntity:
		return r.reject(f, spool.Reason{RejectedAt: r.opts.Now().UTC(), Status: apiErr.Status, Reason: apiErr.Message}, sum, log)
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

func (r *shipper) markSent(f spool.File, sum *Summary, log zerolog.Logger) error {
	err := r.spool.MarkSent(f, r.opts.Now())
	switch {
	case errors.Is(err, spool.ErrReplaced):
		sum.Replaced++
		log.Warn().Msg("the file was replaced while being sent: what was sent is on the receiver; the new file stays in outbox/ for the next run")
		return nil
	case errors.Is(err, spool.ErrNotStamped):
		log.Warn().Err(err).Msg("moved to sent/ without the shipping time: it may be pruned before ship.keep_sent")
		return nil
	}
	return err
}

func (r *shipper) reject(f spool.File, why spool.Reason, sum *Summary, log zerolog.Logger) error {
	err := r.spool.Reject(f, why)
	if errors.Is(err, spool.ErrReplaced) {
		sum.Replaced++
		log.Warn().Str("reason", why.Reason).Msg("rejected, but a producer replaced the file since it was opened: " +
			"the new file stays in outbox/ for the next run (the rejected content is not kept)")
		return nil
	}
	if err == nil {
		sum.Rejected++
		ev := log.Error()
		if why.Status != 0 {
			ev = ev.Int("status", why.Status)
		}
		ev.Str("reason", why.Reason).Msg("rejected; moved to rejected/ with a " + spool.ReasonSuffix + " file")
	}
	return err
}

// hashed is a queued file opened once: it is hashed and sent from fd, and file
// describes fd (so MarkSent moves this file, not whatever has its name by then).
type hashed struct {
	file spool.File
	fd   *os.File
	sha  string
	err  error
}

func (h hashed) close() {
	if h.fd != nil {
		h.fd.Close()
	}
}

// hashAhead opens and hashes the queue in order, at most one file ahead of the
// uploader.
func hashAhead(ctx context.Context, queue []spool.File) <-chan hashed {
	out := make(chan hashed, 1)
	go func() {
		defer close(out)
		for _, f := range queue {
			h := openAndHash(f)
			select {
			case out <- h:
			case <-ctx.Done():
				h.close()
				return
			}
		}
	}()
	return out
}

// errNotRegular: the name no longer refers to a regular file.
var errNotRegular = errors.New("not a regular file any more")

var bufPool = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

func openAndHash(f spool.File) hashed {
	// O_NOFOLLOW: a name that became a symlink since it was listed is not followed.
	fd, err := os.OpenFile(f.Path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if errors.Is(err, syscall.ELOOP) {
		err = errNotRegular
	}
	if err != nil {
		return hashed{file: f, err: err}
	}
	h := hashed{file: f, fd: fd}
	info, err := fd.Stat()
	if err == nil && !info.Mode().IsRegular() {
		err = errNotRegular
	}
	if err != nil {
		h.err = err
		return h
	}
	h.file.Size, h.file.ModTime, h.file.Info = info.Size(), info.ModTime(), info
	sha := sha256.New()
	buf := bufPool.Get().(*[]byte)
	defer bufPool.Put(buf)
	if _, err := io.CopyBuffer(sha, io.NewSectionReader(fd, 0, info.Size()), *buf); err != nil {
		h.err = err
		return h
	}
	h.sha = hex.EncodeToString(sha.Sum(nil))
	return h
}

// Package migrate copies the episodes of a data folder (serve.data_dir/episodes) into
// the episode bucket (serve.storage, backend s3): `cis490 storage migrate --to s3`.
//
// Every episode goes through the bucket's own verified upload (its SHA-256 is computed
// while it streams, and only a matching body becomes an object), and is then read
// back whole and hashed once more. A local copy is deleted only with DeleteLocal and
// only once the bucket's copy has been read back and matched; nothing is deleted on a
// mismatch, and a local file whose bytes do not match its name is never uploaded.
//
// A run is resumable: an episode already in the bucket with the same size is skipped,
// so a run stopped by Ctrl-C or kill -9 continues where it was. It reads the data
// folder only (except for DeleteLocal) and takes no lock, so it runs beside a receiver
// that is serving: store.Open is not used, since its start-up sweep of tmp/ would
// delete that receiver's uploads in flight.
package migrate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/rs/zerolog"

	"github.com/cis490/cis490/internal/fsutil"
	"github.com/cis490/cis490/internal/humanize"
	"github.com/cis490/cis490/internal/protocol"
	"github.com/cis490/cis490/internal/store"
)

// Bucket is what a migration needs of the episode bucket (*objstore.Store).
type Bucket interface {
	Stat(ctx context.Context, host, sha string) (store.EpisodeMeta, bool, error)
	Stored(ctx context.Context, host, sha string, retry store.EpisodeMeta) (store.PutResult, bool, error)
	PutEpisode(ctx context.Context, host, sha string, body io.Reader, maxBytes int64, meta store.EpisodeMeta) (store.PutResult, error)
	Open(ctx context.Context, host, sha string) (io.ReadCloser, error)
	Key(host, sha string) string
}

// Progress follows the bytes of a run (a terminal progress bar): every local
// episode's size counts, copied (through Reader) or found in the bucket (Skip).
type Progress interface {
	Start(episodes int, bytes int64)
	Reader(r io.Reader) io.Reader
	Skip(bytes int64)
	Finish()
}

// Options are one run's inputs.
type Options struct {
	DataDir     string // serve.data_dir: its episodes/ are copied
	Bucket      Bucket
	DryRun      bool // say what would be copied (asking the bucket what it has), copy nothing
	DeleteLocal bool // delete each local copy once the bucket's has been read back and matched
	Logger      zerolog.Logger
	Progress    Progress // nil: none
}

// Episode is one local episode: episodes/<Host>/<SHA256>.
type Episode struct {
	Host, SHA256 string
	Size         int64
	path         string
}

// Failure is an episode that was not migrated, and why.
type Failure struct {
	Host   string `json:"host"`
	SHA256 string `json:"sha256"`
	Reason string `json:"reason"`
}

// Summary is what a run did.
type Summary struct {
	DryRun       bool      `json:"dry_run"`
	Episodes     int       `json:"episodes"` // found in the data folder
	Copied       int       `json:"copied"`   // uploaded and verified (dry run: would be)
	CopiedBytes  int64     `json:"copied_bytes"`
	Present      int       `json:"present"` // already in the bucket with the same size
	PresentBytes int64     `json:"present_bytes"`
	Failed       int       `json:"failed"`
	FailedBytes  int64     `json:"failed_bytes"`
	NotTried     int       `json:"not_tried"` // left when the run stopped (store down, interrupted)
	Deleted      int       `json:"deleted"`   // local copies deleted (dry run: would be)
	DeletedBytes int64     `json:"deleted_bytes"`
	DeleteFailed int       `json:"delete_failed"` // in the bucket, verified, the local copy not deleted
	Failures     []Failure `json:"failures"`
}

// OK is whether every episode is in the bucket now (and, with DeleteLocal, gone from
// the data folder).
func (s Summary) OK() bool { return s.Failed == 0 && s.NotTried == 0 && s.DeleteFailed == 0 }

// ErrVerify is a bucket object that, read back, is not the episode its key names.
var ErrVerify = errors.New("the bucket's copy does not match")

// Run migrates every episode of opts.DataDir. Its error is what stopped the run
// early (the data folder unreadable, the store unavailable, ctx ended); the episodes
// that failed one by one are in the summary.
func Run(ctx context.Context, opts Options) (Summary, error) {
	sum := Summary{DryRun: opts.DryRun, Failures: []Failure{}}
	eps, err := List(opts.DataDir)
	if err != nil {
		return sum, err
	}
	sum.Episodes = len(eps)
	var total int64
	for _, e := range eps {
		total += e.Size
	}
	if opts.Progress != nil {
		opts.Progress.Start(len(eps), total)
		defer opts.Progress.Finish()
	}
	r := &run{opts: opts, sum: &sum}
	for i, e := range eps {
		if err := ctx.Err(); err != nil {
			sum.NotTried = len(eps) - i
			return sum, fmt.Errorf("interrupted: %w; run it again to continue", err)
		}
		if err := r.one(ctx, e); err != nil {
			// The store is down or ctx ended: every later episode would fail the same way.
			sum.NotTried = len(eps) - i
			return sum, err
		}
	}
	return sum, nil
}

type run struct {
	opts Options
	sum  *Summary
}

// one migrates e. Its error stops the run; a failure of e alone is recorded in the
// summary and returns nil.
func (r *run) one(ctx context.Context, e Episode) error {
	b, log := r.opts.Bucket, r.opts.Logger.With().Str("host", e.Host).Str("sha256", e.SHA256).Int64("bytes", e.Size).Logger()
	key := b.Key(e.Host, e.SHA256)
	log = log.With().Str("key", key).Logger()
	stopping := func(err error) bool { return errors.Is(err, store.ErrUnavailable) || ctx.Err() != nil }

	stat, present, err := b.Stat(ctx, e.Host, e.SHA256)
	if err != nil {
		if stopping(err) {
			return fmt.Errorf("the bucket did not answer for %s: %w; nothing more was tried: check the store (`cis490 doctor`) and run it again", key, err)
		}
		r.fail(log, e, err.Error())
		return nil
	}
	if present && stat.Size != e.Size {
		r.fail(log, e, fmt.Sprintf("the bucket's %s has %d bytes, the local file %d: both are kept; compare them by hand", key, stat.Size, e.Size))
		return nil
	}
	meta, metaErr := readSidecar(e)
	if present {
		r.skip(e.Size)
		if metaErr == nil && protocol.ValidEpisode(meta.Episode) {
			// A run killed between an episode's object and its metadata object left the
			// latter missing: Stored writes it from the object's metadata.
			if _, _, err := b.Stored(ctx, e.Host, e.SHA256, meta); err != nil {
				if stopping(err) {
					return fmt.Errorf("write %s.json: %w; run it again", key, err)
				}
				r.fail(log, e, err.Error())
				return nil
			}
		}
		return r.done(ctx, log, e, false)
	}
	if r.opts.DryRun {
		r.skip(e.Size)
		return r.done(ctx, log, e, true)
	}
	switch {
	case metaErr != nil:
		r.fail(log, e, metaErr.Error())
		return nil
	case !protocol.ValidEpisode(meta.Episode):
		r.fail(log, e, "its metadata has no episode name (a placeholder written after a crash, or the receiver is writing it now): "+
			"the host's next upload of it names it; run migrate again after that")
		return nil
	}
	if err := r.upload(ctx, e, meta); err != nil {
		if stopping(err) {
			return fmt.Errorf("upload %s: %w; run it again to continue", key, err)
		}
		r.fail(log, e, err.Error())
		return nil
	}
	return r.done(ctx, log, e, true)
}

// done counts e as copied or present, after reading the bucket's copy back when it was
// uploaded now or is about to be the only one, and deletes the local copy then.
func (r *run) done(ctx context.Context, log zerolog.Logger, e Episode, copied bool) error {
	verified := false
	if !r.opts.DryRun && (copied || r.opts.DeleteLocal) {
		if err := verify(ctx, r.opts.Bucket, e); err != nil {
			if !errors.Is(err, ErrVerify) && (errors.Is(err, store.ErrUnavailable) || ctx.Err() != nil) {
				return fmt.Errorf("read back %s: %w; run it again to continue", r.opts.Bucket.Key(e.Host, e.SHA256), err)
			}
			r.fail(log, e, err.Error()+"; the local copy is kept")
			return nil
		}
		verified = true
	}
	ev := r.info(log)
	if copied {
		r.sum.Copied++
		r.sum.CopiedBytes += e.Size
		ev = ev.Str("outcome", "copied")
	} else {
		r.sum.Present++
		r.sum.PresentBytes += e.Size
		ev = ev.Str("outcome", "present")
	}
	if r.opts.DeleteLocal && (verified || r.opts.DryRun) {
		if !r.opts.DryRun {
			if err := deleteLocal(e); err != nil {
				// The bucket has it: only the space is not freed yet.
				log.Error().Err(err).Msg("the episode is in the bucket, verified, but its local copy could not be deleted: run migrate --delete-local again")
				r.sum.DeleteFailed++
				r.sum.Failures = append(r.sum.Failures, Failure{Host: e.Host, SHA256: e.SHA256, Reason: "in the bucket, but the local copy could not be deleted: " + err.Error()})
			} else {
				r.sum.Deleted++
				r.sum.DeletedBytes += e.Size
				ev = ev.Bool("deleted_local", true)
			}
		} else {
			r.sum.Deleted++
			r.sum.DeletedBytes += e.Size
		}
	}
	switch {
	case r.opts.DryRun && copied:
		ev.Msg("would copy the episode to the bucket")
	case r.opts.DryRun:
		ev.Msg("the episode is in the bucket already")
	case copied:
		ev.Msg("copied the episode to the bucket and read it back: its SHA-256 matches")
	default:
		ev.Msg("the episode is in the bucket already, with the same size")
	}
	return nil
}

// upload streams e's file through the bucket's verified upload.
func (r *run) upload(ctx context.Context, e Episode, meta store.EpisodeMeta) error {
	f, err := os.Open(e.path)
	if err != nil {
		return err
	}
	defer f.Close()
	var body io.Reader = f
	if r.opts.Progress != nil {
		body = r.opts.Progress.Reader(body)
	}
	meta.Size = e.Size
	_, err = r.opts.Bucket.PutEpisode(ctx, e.Host, e.SHA256, body, e.Size, meta)
	var mismatch *store.DigestMismatchError
	if errors.As(err, &mismatch) {
		return fmt.Errorf("the local file %s is damaged: its bytes hash to %s, not to its name; it was not uploaded and is kept: "+
			"ask the host to upload it again (its sent/ folder may still have it)", e.path, mismatch.Got)
	}
	return err
}

// verify reads the bucket's copy of e back whole and checks its size and SHA-256.
func verify(ctx context.Context, b Bucket, e Episode) error {
	rc, err := b.Open(ctx, e.Host, e.SHA256)
	if err != nil {
		return err
	}
	defer rc.Close()
	h := sha256.New()
	n, err := io.Copy(h, rc)
	if err != nil {
		return fmt.Errorf("%w: read %s back: %w", store.ErrUnavailable, b.Key(e.Host, e.SHA256), err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); n != e.Size || got != e.SHA256 {
		return fmt.Errorf("%w: read back, %s has %d bytes hashing to %s (want %d bytes, %s)", ErrVerify, b.Key(e.Host, e.SHA256), n, got, e.Size, e.SHA256)
	}
	return nil
}

func (r *run) fail(log zerolog.Logger, e Episode, reason string) {
	log.Error().Str("outcome", "failed").Msg(reason)
	r.sum.Failed++
	r.sum.FailedBytes += e.Size
	r.sum.Failures = append(r.sum.Failures, Failure{Host: e.Host, SHA256: e.SHA256, Reason: reason})
}

func (r *run) skip(n int64) {
	if r.opts.Progress != nil {
		r.opts.Progress.Skip(n)
	}
}

// info is a line per episode: below a progress bar it would only push the bar around.
func (r *run) info(log zerolog.Logger) *zerolog.Event {
	if r.opts.Progress != nil {
		return log.Debug()
	}
	return log.Info()
}

// List finds the episodes of dataDir: episodes/<host>/<sha256>, by host and sha256.
// A missing episodes/ is an empty list (a receiver that never stored one).
func List(dataDir string) ([]Episode, error) {
	if dataDir == "" {
		return nil, errors.New("no data folder given: set serve.data_dir or pass --data-dir")
	}
	root := filepath.Join(dataDir, "episodes")
	hosts, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		if _, serr := os.Stat(dataDir); serr != nil {
			return nil, fmt.Errorf("the data folder: %w (serve.data_dir, or --data-dir)", serr)
		}
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list episodes: %w", err)
	}
	var eps []Episode
	for _, h := range hosts {
		if !h.IsDir() {
			continue
		}
		if n, ok := protocol.NormalizeHost(h.Name()); !ok || n != h.Name() {
			continue
		}
		dir := filepath.Join(root, h.Name())
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("list episodes: %w", err)
		}
		for _, en := range entries {
			if !en.Type().IsRegular() || !protocol.ValidSHA256(en.Name()) {
				continue
			}
			info, err := en.Info()
			if errors.Is(err, fs.ErrNotExist) {
				continue // deleted since the listing (another migrate --delete-local)
			}
			if err != nil {
				return nil, fmt.Errorf("list episodes: %w", err)
			}
			eps = append(eps, Episode{Host: h.Name(), SHA256: en.Name(), Size: info.Size(), path: filepath.Join(dir, en.Name())})
		}
	}
	return eps, nil
}

// readSidecar reads e's <sha256>.json, as the receiver wrote it.
func readSidecar(e Episode) (store.EpisodeMeta, error) {
	var meta store.EpisodeMeta
	data, err := os.ReadFile(e.path + ".json")
	if errors.Is(err, fs.ErrNotExist) {
		return meta, errors.New("it has no metadata file (" + filepath.Base(e.path) + ".json) yet: the receiver writes it right after the episode; run migrate again")
	}
	if err != nil {
		return meta, fmt.Errorf("read its metadata: %w", err)
	}
	if err := json.Unmarshal(data, &meta); err != nil {
		return meta, fmt.Errorf("its metadata file %s.json is not JSON (%v): fix or remove it; `cis490 serve` writes a placeholder for an episode without one at its next start", e.path, err)
	}
	return meta, nil
}

// deleteLocal removes e's metadata file, then the episode. A crash in between leaves
// the episode without metadata, which the next run finds in the bucket and deletes
// (the other order would leave a metadata file that nothing lists). The host folder
// stays: a receiver serving from it keeps using it.
func deleteLocal(e Episode) error {
	if err := os.Remove(e.path + ".json"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.Remove(e.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return fsutil.SyncDir(filepath.Dir(e.path))
}

// String is the summary as one line, for the terminal.
func (s Summary) String() string {
	b := func(n int64) string { return humanize.Bytes(uint64(max(n, 0))) }
	if s.DryRun {
		line := fmt.Sprintf("dry run: %d episode(s) in the data folder: %d would be copied (%s), %d already in the bucket (%s)",
			s.Episodes, s.Copied, b(s.CopiedBytes), s.Present, b(s.PresentBytes))
		if s.Deleted > 0 {
			line += fmt.Sprintf(", %d local copies (%s) would be deleted once verified", s.Deleted, b(s.DeletedBytes))
		}
		return line + fmt.Sprintf(", %d failed%s; nothing was changed", s.Failed, notTried(s.NotTried))
	}
	line := fmt.Sprintf("%d episode(s) in the data folder: %d copied (%s), %d already in the bucket (%s), %d failed (%s)%s",
		s.Episodes, s.Copied, b(s.CopiedBytes), s.Present, b(s.PresentBytes), s.Failed, b(s.FailedBytes), notTried(s.NotTried))
	if s.Deleted > 0 || s.DeleteFailed > 0 {
		line += fmt.Sprintf("; %d local copies deleted (%s freed)", s.Deleted, b(s.DeletedBytes))
	}
	if s.DeleteFailed > 0 {
		line += fmt.Sprintf(", %d could not be", s.DeleteFailed)
	}
	return line
}

func notTried(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(", %d not tried", n)
}

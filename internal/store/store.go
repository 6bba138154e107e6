// Package store keeps what the receiver accepts on disk (SPEC §3.4): episode tarballs
// with their metadata, and each host's latest health report. Every file a reader may
// see appears whole or not at all: it is written in tmp/, fsynced, moved into place,
// and its directory fsynced.
package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/cis490/cis490/internal/fsutil"
	"github.com/cis490/cis490/internal/protocol"
)

// The errors a caller turns into HTTP statuses (SPEC §3.3): 422, 413, 507, 400, 400.
var (
	ErrDigestMismatch = errors.New("body does not match the declared SHA-256")
	ErrTooLarge       = errors.New("body is larger than allowed")
	ErrNoSpace        = errors.New("not enough free disk space")
	ErrNotObject      = errors.New("report is not a JSON object")
	ErrBadName        = errors.New("invalid host, episode or SHA-256 name")
)

// DigestMismatchError names both digests so the client can tell corruption from a
// wrong header.
type DigestMismatchError struct{ Declared, Got string }

func (e *DigestMismatchError) Error() string {
	return fmt.Sprintf("%v: declared %s, got %s", ErrDigestMismatch, e.Declared, e.Got)
}

func (e *DigestMismatchError) Is(target error) bool { return target == ErrDigestMismatch }

type Options struct {
	// MinFreeBytes is the free space an upload must leave behind.
	MinFreeBytes int64
	Logger       zerolog.Logger
	// PartialTTL is how long a cut upload's partial is kept after its last byte
	// arrived (serve.partial_ttl); 0 means 24 h.
	PartialTTL time.Duration
	// Now is the clock partials expire by; nil means time.Now.
	Now func() time.Time
}

// Store is safe for concurrent use; uploads never wait on one another.
type Store struct {
	dir, episodes, health, tmp string
	partial                    string // tmp/partial: resumable uploads (partial.go)
	opts                       Options

	// reserved is the free space that uploads in flight hold and have not yet
	// written; grantMu makes each grant of it one check (space.go).
	reserved atomic.Int64
	grantMu  sync.Mutex

	// direct is whether new uploads are written with O_DIRECT (see probeDirectIO).
	direct atomic.Bool
	// pwrite is unix.Pwrite; tests make it fail.
	pwrite func(fd int, p []byte, offset int64) (int, error)
	// statfs is unix.Statfs; tests make the disk as full as they need.
	statfs func(path string, st *unix.Statfs_t) error
	// spares bounds the chunks uploads hold beyond one each (see spareChunks).
	spares chan struct{}

	// hostDirs remembers the host directories whose entry in episodes/ is known to be
	// durable, so each costs one extra fsync per process rather than one per upload.
	hostDirs sync.Map

	locks episodeLocks

	partials    partialLocks
	partialDirs sync.Mutex // around creating a partial's folders and removing them empty
	bootID      string     // this boot of the machine (readBootID)
}

const dirPerm = 0o750

// maxLoggedPaths bounds a log line that lists files.
const maxLoggedPaths = 20

// Open prepares dataDir and sweeps tmp/: anything there is an upload or a report
// that a crash interrupted, and nothing refers to it. It gives each episode that a
// crash left without a sidecar a placeholder one (sidecar.go). Only one Store may use
// a data dir at a time, or the sweep would delete the other's uploads in flight.
func Open(dataDir string, opts Options) (*Store, error) {
	if dataDir == "" {
		return nil, errors.New("open store: no data directory given; set serve.data_dir")
	}
	s := &Store{
		dir:      dataDir,
		episodes: filepath.Join(dataDir, "episodes"),
		health:   filepath.Join(dataDir, "host-health"),
		tmp:      filepath.Join(dataDir, "tmp"),
		partial:  filepath.Join(dataDir, "tmp", partialDirName),
		opts:     opts,
		bootID:   readBootID(),
		spares:   make(chan struct{}, spareChunks),
		pwrite:   unix.Pwrite,
		statfs:   unix.Statfs,
	}
	for _, d := range []string{dataDir, s.episodes, s.health, s.tmp} {
		if err := os.MkdirAll(d, dirPerm); err != nil {
			return nil, fmt.Errorf("open store: %w; check serve.data_dir and that the service user may write there", err)
		}
	}
	if err := fsutil.SyncDir(dataDir); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	n, err := s.sweepTmp()
	if err != nil {
		return nil, fmt.Errorf("open store: sweep %s: %w; remove its contents by hand", s.tmp, err)
	}
	if n > 0 {
		opts.Logger.Info().Int("removed", n).Str("dir", s.tmp).Msg("swept leftovers of interrupted uploads")
	}
	if n, err := s.SweepPartials(); err != nil {
		return nil, fmt.Errorf("open store: sweep %s: %w; remove its contents by hand", s.partial, err)
	} else if n > 0 {
		opts.Logger.Info().Int("removed", n).Str("dir", s.partial).Msg("swept partial uploads that expired or cannot be continued")
	}
	repaired, err := s.placeholderSidecars()
	if len(repaired) > 0 {
		opts.Logger.Warn().Int("count", len(repaired)).Strs("paths", repaired[:min(len(repaired), maxLoggedPaths)]).
			Msg("episodes without metadata, left by a crash between storing and describing them: wrote placeholders without their names; the next upload of each from its host fills them in")
	}
	if err != nil {
		// Not worth refusing to start for: the retry of each such upload writes its
		// sidecar all the same.
		opts.Logger.Error().Err(err).Str("dir", s.episodes).Msg("could not write placeholders for every episode without metadata")
	}
	switch err := probeDirectIO(s.tmp); {
	case err == nil:
		s.direct.Store(true)
	case refusesDirectIO(err):
		opts.Logger.Info().Err(err).Str("dir", s.tmp).Msg("the file system refuses direct I/O; uploads go through the page cache")
	default:
		// Not a refusal (a full disk, say): try it, and fall back at the first refusal.
		opts.Logger.Warn().Err(err).Str("dir", s.tmp).Msg("could not check direct I/O; uploads use it until the file system refuses")
		s.direct.Store(true)
	}
	return s, nil
}

func (s *Store) sweepTmp() (int, error) {
	entries, err := os.ReadDir(s.tmp)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range entries {
		if e.Name() == partialDirName && e.IsDir() {
			continue // resumable partials survive a restart (SweepPartials)
		}
		if err := os.RemoveAll(filepath.Join(s.tmp, e.Name())); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// noSpace lets callers map a full disk or quota to 507 with errors.Is.
func noSpace(err error) error {
	if errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EDQUOT) {
		return fmt.Errorf("%w: %w", ErrNoSpace, err)
	}
	return err
}
func validHost(host string) bool {
	h, ok := protocol.NormalizeHost(host)
	return ok && h == host
}

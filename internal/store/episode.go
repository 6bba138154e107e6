package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/cis490/cis490/internal/fsutil"
	"github.com/cis490/cis490/internal/protocol"
)

type EpisodeMeta struct {
	Episode    string    `json:"episode"`
	Size       int64     `json:"size"`
	ReceivedAt time.Time `json:"received_at"`
	Commit     string    `json:"commit"`
	Remote     string    `json:"remote"`
	// Repaired marks a sidecar not written by the upload that stored the tarball (see
	// sidecar.go): commit and remote are then a retry's, and episode is "" until one.
	Repaired bool `json:"repaired,omitempty"`
}

// PutResult describes the stored episode. For a duplicate (Created false) it carries
// the values recorded by the upload that stored it first.
type PutResult struct {
	SHA256     string
	Size       int64
	Created    bool
	ReceivedAt time.Time
	Episode    string
	// ResumedFrom is the offset of the partial this upload continued (PutResumable).
	ResumedFrom int64
}

const filePerm = 0o640

// hostDir creates episodes/<host> and makes its entry durable the first time this
// process uses it, even when another upload created it a moment ago: that upload
// may still be fsyncing episodes/ when this one is ready to answer.
func (s *Store) hostDir(host string) (string, error) {
	dir := filepath.Join(s.episodes, host)
	if _, ok := s.hostDirs.Load(host); ok {
		return dir, nil
	}
	if err := os.Mkdir(dir, dirPerm); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", noSpace(err)
	}
	if err := fsutil.SyncDir(s.episodes); err != nil {
		return "", err
	}
	s.hostDirs.Store(host, struct{}{})
	return dir, nil
}

// PutEpisode streams body into the store under episodes/<host>/<sha>, verifying its
// SHA-256 on the way. However many identical uploads race, exactly one is stored and
// exactly one gets Created; the others are duplicates. Nothing partial is ever kept
// (PutResumable keeps a cut body). meta.Size is the length the client declared, 0 or
// less when it did not: that much free space is held before the body is read, the
// rest as it arrives (space.go). The stored size is the body's. meta.ReceivedAt
// defaults to now.
func (s *Store) PutEpisode(ctx context.Context, host, sha string, body io.Reader, maxBytes int64, meta EpisodeMeta) (PutResult, error) {
	if !validHost(host) || !protocol.ValidSHA256(sha) || !protocol.ValidEpisode(meta.Episode) {
		return PutResult{}, fmt.Errorf("%w: host %q, episode %q, sha256 %q", ErrBadName, host, meta.Episode, sha)
	}
	space, err := s.reserve(min(meta.Size, maxBytes))
	if err != nil {
		return PutResult{}, err
	}
	defer space.release()
	f, direct, err := s.createUpload()
	if err != nil {
		return PutResult{}, fmt.Errorf("create upload file: %w", noSpace(err))
	}
	// Removed however this ends, a panic in body.Read included: once stored, the
	// episode has its own name.
	defer os.Remove(f.Name())
	size, err := s.receive(ctx, sha, body, maxBytes, space, &upload{f: f, direct: direct})
	if err != nil {
		f.Close()
		return PutResult{}, err
	}
	return s.install(host, sha, f.Name(), size, meta)
}

// install links the verified, fsynced file tmpName into place as host's episode sha,
// with its sidecar, and makes both durable; when sha is already stored it answers as
// a duplicate.
func (s *Store) install(host, sha, tmpName string, size int64, meta EpisodeMeta) (PutResult, error) {
	dir, err := s.hostDir(host)
	if err != nil {
		return PutResult{}, fmt.Errorf("store episode %s: %w", meta.Episode, err)
	}
	final := filepath.Join(dir, sha)
	// link(2), unlike rename(2), fails when the name exists: the file system picks the
	// one winner among racing identical uploads. The lock is held only from here to
	// the sidecar, so that a duplicate never sees the winner in between (sidecar.go).
	mu := s.episodeLock(sha)
	mu.Lock()
	defer mu.Unlock()
	err = os.Link(tmpName, final)
	if errors.Is(err, fs.ErrExist) {
		res, ok, err := s.storedLocked(host, sha, meta)
		if err == nil && !ok {
			err = fmt.Errorf("store episode %s: %s vanished after link reported it exists", meta.Episode, sha)
		}
		return res, err
	}
	if err != nil {
		return PutResult{}, fmt.Errorf("store episode %s: %w", meta.Episode, noSpace(err))
	}

	meta.Size = size
	if meta.ReceivedAt.IsZero() {
		meta.ReceivedAt = time.Now()
	}
	meta.ReceivedAt = meta.ReceivedAt.UTC()
	if err := s.writeMeta(final+".json", meta); err != nil {
		// The tarball is stored: the client's retry is a duplicate, and writes the
		// sidecar then.
		return PutResult{}, fmt.Errorf("store episode %s metadata: %w", meta.Episode, err)
	}
	if err := fsutil.SyncDir(dir); err != nil {
		return PutResult{}, err
	}
	return PutResult{SHA256: sha, Size: size, Created: true, ReceivedAt: meta.ReceivedAt, Episode: meta.Episode}, nil
}

package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/google/renameio/v2"

	"github.com/cis490/cis490/internal/fsutil"
	"github.com/cis490/cis490/internal/protocol"
)

// An episode's sidecar (episodes/<host>/<sha>.json) is written after its tarball is
// linked into place, so a crash in between leaves a tarball without one. Two things
// write it then. The client was never answered, so it retries: that upload knows the
// episode's name, which only the client does, and Stored writes the sidecar from it.
// And Open, because a retry may never come (the host retired, its outbox lost): it
// writes a placeholder with what the file itself tells, which a retry completes.

// episodeLocks holds one lock per episode (striped by SHA-256) from the winner's link
// to its sidecar, and around a duplicate's reading (and repairing) of it: a duplicate
// that finds no sidecar is then looking at a crash's leftover, not at an upload about
// to write one, and every answer names the episode its sidecar names.
type episodeLocks [256]sync.Mutex

func (s *Store) episodeLock(sha string) *sync.Mutex {
	i, _ := strconv.ParseUint(sha[:2], 16, 8) // sha is validated hex
	return &s.locks[i]
}

// Stored answers an upload by host of what may already be stored as sha, without its
// body (the stored copy's SHA-256 was verified when it arrived): ok is false when it
// is not stored. When it is but its sidecar is missing, unreadable, or Open's
// placeholder, retry's episode name, commit and remote are written as the sidecar,
// with the tarball's own size and time, before answering.
func (s *Store) Stored(_ context.Context, host, sha string, retry EpisodeMeta) (PutResult, bool, error) {
	if !validHost(host) || !protocol.ValidSHA256(sha) || !protocol.ValidEpisode(retry.Episode) {
		return PutResult{}, false, fmt.Errorf("%w: host %q, episode %q, sha256 %q", ErrBadName, host, retry.Episode, sha)
	}
	mu := s.episodeLock(sha)
	mu.Lock()
	defer mu.Unlock()
	return s.storedLocked(host, sha, retry)
}

// Has reports whether host's episode sha is stored, without reading or repairing its
// sidecar: the upload limits let a retry of a stored episode through, since its
// answer (Stored) reads no body.
func (s *Store) Has(_ context.Context, host, sha string) bool {
	if !validHost(host) || !protocol.ValidSHA256(sha) {
		return false
	}
	_, err := os.Stat(filepath.Join(s.episodes, host, sha))
	return err == nil
}

func (s *Store) storedLocked(host, sha string, retry EpisodeMeta) (PutResult, bool, error) {
	path := filepath.Join(s.episodes, host, sha)
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return PutResult{}, false, nil
	}
	if err != nil {
		return PutResult{}, false, err
	}
	meta, err := readMeta(path + ".json")
	if err != nil || meta.Episode == "" {
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.opts.Logger.Warn().Err(err).Str("path", path+".json").Msg("episode metadata unreadable; writing it anew from this upload")
		}
		meta = EpisodeMeta{
			Episode: retry.Episode, Size: st.Size(), ReceivedAt: st.ModTime().UTC(),
			Commit: retry.Commit, Remote: retry.Remote, Repaired: true,
		}
		if err := s.writeMeta(path+".json", meta); err != nil {
			return PutResult{}, false, fmt.Errorf("write the missing metadata of %s: %w", path, err)
		}
		s.opts.Logger.Info().Str("path", path+".json").Str("episode", meta.Episode).Msg("wrote an episode's missing metadata from a retry of its upload")
	}
	// For the sidecar just written, and for a winner that failed before its own
	// directory fsync: whoever is told "already stored" must be able to rely on it.
	if err := fsutil.SyncDir(filepath.Dir(path)); err != nil {
		return PutResult{}, false, err
	}
	return PutResult{SHA256: sha, Size: meta.Size, ReceivedAt: meta.ReceivedAt, Episode: meta.Episode}, true, nil
}

func readMeta(path string) (EpisodeMeta, error) {
	var meta EpisodeMeta
	data, err := os.ReadFile(path)
	if err == nil {
		err = json.Unmarshal(data, &meta)
	}
	return meta, err
}

// writeMeta is atomic on its own; the caller's fsync of the host directory makes the
// rename durable.
func (s *Store) writeMeta(path string, meta EpisodeMeta) error {
	data, err := json.Marshal(meta)
	if err != nil {
		return err
	}
	return noSpace(renameio.WriteFile(path, data, filePerm, renameio.WithTempDir(s.tmp)))
}

// placeholderSidecars gives each episode without a sidecar one with its size and
// time from the file, no name, and "repaired": true, and returns their paths. Only
// logging them would leave tarballs that nothing describes for as long as their host
// does not retry; a placeholder says what is known and, by its empty name, what is
// not. Open runs it before any upload, so no winner is between link and sidecar.
func (s *Store) placeholderSidecars() ([]string, error) {
	hosts, err := os.ReadDir(s.episodes)
	if err != nil {
		return nil, err
	}
	var written []string
	for _, h := range hosts {
		if !h.IsDir() || !validHost(h.Name()) {
			continue
		}
		dir := filepath.Join(s.episodes, h.Name())
		entries, err := os.ReadDir(dir)
		if err != nil {
			return written, err
		}
		names := make(map[string]bool, len(entries))
		for _, e := range entries {
			names[e.Name()] = true
		}
		before := len(written)
		for _, e := range entries {
			if !e.Type().IsRegular() || !protocol.ValidSHA256(e.Name()) || names[e.Name()+".json"] {
				continue
			}
			info, err := e.Info()
			if err != nil {
				return written, err
			}
			path := filepath.Join(dir, e.Name())
			meta := EpisodeMeta{Size: info.Size(), ReceivedAt: info.ModTime().UTC(), Repaired: true}
			if err := s.writeMeta(path+".json", meta); err != nil {
				return written, err
			}
			written = append(written, path)
		}
		if len(written) > before {
			if err := fsutil.SyncDir(dir); err != nil {
				return written, err
			}
		}
	}
	return written, nil
}

package receiver

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"

	"github.com/rs/zerolog"
	"github.com/rs/zerolog/hlog"

	"github.com/cis490/cis490/internal/config"
	"github.com/cis490/cis490/internal/gate"
	"github.com/cis490/cis490/internal/protocol"
	"github.com/cis490/cis490/internal/release"
	"github.com/cis490/cis490/internal/store"
)

// Releases (SPEC §3.3, §4.5): the maintainer publishes a signed release with one PUT
// of a tar stream (release.Store.Put says why one); hosts ask which release to run
// and download its binary. None of these routes is gated: a host the gate refuses
// must be able to fetch the release that it allows.
//
// GET /v1/releases/{commit} answers both the target (commit "target", which is not
// hex and so never a commit) and one release by commit: a separate GET
// /v1/releases/target beside PUT /v1/releases/{commit} would give the mux two
// patterns that conflict in their method-not-allowed answers.

// codeReleaseConflict is the 409 of a second, different release of a commit.
const codeReleaseConflict = "release_conflict"

func (s *Server) releases() *release.Store { return release.OpenStore(s.cfg.DataDir) }

func (s *Server) putRelease(w http.ResponseWriter, r *http.Request) {
	if !callerOf(r).isAdmin() {
		fail(w, r, http.StatusForbidden, codeForbidden, "publishing a release is the maintainer's: use an admin token (cis490 release publish --remote)")
		return
	}
	commit, ok := protocol.NormalizeCommit(r.PathValue("commit"))
	if !ok || len(commit) != 40 {
		fail(w, r, http.StatusBadRequest, codeBadRequest, "the path must name the release's full commit (40 hex digits)")
		return
	}
	keys, err := s.cfg.Update.Keys()
	if err != nil || len(keys) == 0 {
		fail(w, r, http.StatusBadRequest, codeBadRequest, "this receiver has no serve.update.public_keys, so it accepts no release:"+
			" set it to the public key the releases are signed with (cis490 release keygen printed it) and restart cis490-receiver")
		return
	}
	limit := int64(s.cfg.MaxEpisodeBytes)
	body := &countingReader{r: http.MaxBytesReader(w, r.Body, limit), rc: http.NewResponseController(w), stall: s.stallTimeout}
	m, created, err := s.releases().Put(r.Context(), commit, body, release.PutOptions{
		Keys:      keys,
		Allowed:   func(c string) bool { return s.gate.Check(c).Allowed },
		CheckFree: s.store.CheckFree,
	})
	recordOf(r).Bytes = body.n
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		fail(w, r, http.StatusRequestEntityTooLarge, codeTooLarge, fmt.Sprintf("the release is over %d bytes (serve.max_episode_bytes)", limit))
	case errors.Is(err, release.ErrBadSignature):
		fail(w, r, http.StatusBadRequest, codeBadRequest, err.Error()+" (serve.update.public_keys): sign the release with `cis490 release sign` and a key listed there")
	case errors.Is(err, release.ErrNotAllowed):
		failWith(w, r, http.StatusConflict, protocol.Error{Code: codeCommitNotAllowed, Commit: commit, Error: err.Error()})
	case errors.Is(err, release.ErrConflict):
		fail(w, r, http.StatusConflict, codeReleaseConflict, err.Error())
	case errors.Is(err, release.ErrDigest):
		fail(w, r, http.StatusUnprocessableEntity, codeDigestMismatch, err.Error()+": nothing was stored")
	case errors.Is(err, release.ErrBadUpload):
		fail(w, r, http.StatusBadRequest, codeBadRequest, err.Error()+": nothing was stored")
	case errors.Is(err, release.ErrNoSpace), errors.Is(err, store.ErrNoSpace):
		fail(w, r, http.StatusInsufficientStorage, codeNoSpace, "the receiver's disk is too full for this release: nothing was stored")
	case err != nil && r.Context().Err() != nil:
		fail(w, r, http.StatusBadRequest, codeBadRequest, "the upload was cut off: nothing was stored")
	case err != nil:
		s.internalError(w, r, fmt.Errorf("publish release %s: %w", commit, err))
	case created:
		hlog.FromRequest(r).Info().Str("commit", m.Commit).Int64("seq", m.Seq).Str("version", m.Version).Msg("release published")
		writeJSON(w, http.StatusCreated, m)
	default:
		writeJSON(w, http.StatusOK, m)
	}
}

// getRelease answers the target (GET /v1/releases/target) or one release.
func (s *Server) getRelease(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("commit")
	if name == "target" {
		s.releaseTarget(w, r)
		return
	}
	p, err := s.releases().Get(name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		fail(w, r, http.StatusNotFound, codeNotFound, "no release of commit "+name+" is published here (cis490 release list --remote lists them)")
	case err != nil:
		s.internalError(w, r, err)
	default:
		writeJSON(w, http.StatusOK, p)
	}
}

func (s *Server) releaseTarget(w http.ResponseWriter, r *http.Request) {
	rels, _, err := s.releases().List()
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	allowed := func(c string) bool { return s.gate.Check(c).Allowed }
	target, ok := release.Newest(rels, allowed, ReleasePositions(r.Context(), s.cfg.Gate, s.log))
	if !ok {
		fail(w, r, http.StatusNotFound, codeNotFound, "no published release has a commit the version gate allows: publish one (cis490 release publish --remote)")
		return
	}
	writeJSON(w, http.StatusOK, target)
}

func (s *Server) listReleases(w http.ResponseWriter, r *http.Request) {
	if !callerOf(r).isAdmin() {
		fail(w, r, http.StatusForbidden, codeForbidden, "the list of releases is the maintainer's: use an admin token (a host asks GET /v1/releases/target)")
		return
	}
	rels, _, err := s.releases().List()
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	allowed := func(c string) bool { return s.gate.Check(c).Allowed }
	writeJSON(w, http.StatusOK, release.Listing(rels, allowed, ReleasePositions(r.Context(), s.cfg.Gate, s.log)))
}

// getReleaseFile serves a release's file, with Range requests, so an interrupted
// download resumes where it stopped.
func (s *Server) getReleaseFile(w http.ResponseWriter, r *http.Request) {
	path, err := s.releases().FilePath(r.PathValue("commit"), r.PathValue("file"))
	var f *os.File
	if err == nil {
		f, err = os.Open(path)
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		fail(w, r, http.StatusNotFound, codeNotFound, "no such release file: "+r.PathValue("commit")+"/"+r.PathValue("file"))
		return
	case err != nil:
		s.internalError(w, r, err)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Cache-Control", "no-cache")
	cw := &countingWriter{ResponseWriter: w}
	http.ServeContent(cw, r, "", st.ModTime(), f)
	// What was sent, not the file's size: a download resumed five times is not six.
	recordOf(r).Bytes = cw.n
}

// countingWriter counts the body bytes written through it.
type countingWriter struct {
	http.ResponseWriter
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.ResponseWriter.Write(p)
	c.n += int64(n)
	return n, err
}

// ReleasePositions maps each of the newest gate.git_depth commits of gate.git_ref to
// its position (0: the ref's tip), the order the target follows; nil without a
// gate.git_dir or when git fails (then the highest seq wins). The list is read at
// each call: hosts ask every few hours, and git answers in milliseconds.
func ReleasePositions(ctx context.Context, gc config.Gate, log zerolog.Logger) map[string]int {
	if gc.GitDir == "" {
		return nil
	}
	list, err := gate.NewGitSource(gc.GitDir, gc.GitRef, gc.GitDepth).Load(ctx)
	if err != nil {
		log.Warn().Err(err).Msg("could not read serve.gate.git_ref's history: the release target is the highest seq the gate allows")
		return nil
	}
	pos := make(map[string]int, len(list))
	for i, c := range list {
		if _, seen := pos[c]; !seen {
			pos[c] = i
		}
	}
	return pos
}

// LocalGate is the version gate of sc loaded once, for commands that read the data
// folder without a running receiver (cis490 release list, publish).
func LocalGate(ctx context.Context, gc config.Gate, log zerolog.Logger) *gate.Gate {
	g := newGate(gc, log)
	if err := g.Refresh(ctx); err != nil {
		log.Warn().Err(err).Msg("a version gate source failed to load")
	}
	return g
}

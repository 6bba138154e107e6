package receiver

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog/hlog"

	"github.com/cis490/cis490/internal/protocol"
	"github.com/cis490/cis490/internal/store"
)

// episodeResponse is the body of a successful PUT /v1/episodes.
type episodeResponse struct {
	Host       string    `json:"host"`
	Episode    string    `json:"episode"`
	SHA256     string    `json:"sha256"`
	Size       int64     `json:"size"`
	Status     string    `json:"status"` // "created" or "duplicate"
	ReceivedAt time.Time `json:"received_at"`
}

func (s *Server) putEpisode(w http.ResponseWriter, r *http.Request) {
	c, rec := callerOf(r), recordOf(r)
	if !uploadingHost(w, r) {
		return
	}
	name := r.Header.Get(protocol.HeaderEpisode)
	if !protocol.ValidEpisode(name) {
		fail(w, r, http.StatusBadRequest, codeBadRequest,
			protocol.HeaderEpisode+" must be 1 to 200 characters of letters, digits, '.', '_' or '-', starting with a letter or digit")
		return
	}
	sha, err := declaredSHA256(r.Header)
	if err != nil {
		fail(w, r, http.StatusBadRequest, codeBadRequest, err.Error())
		return
	}
	rec.SHA256 = sha
	offset, err := uploadOffset(r.Header)
	if err != nil {
		fail(w, r, http.StatusBadRequest, codeBadRequest, err.Error())
		return
	}
	if limit := int64(s.cfg.MaxEpisodeBytes); offset > limit || r.ContentLength > limit-offset {
		fail(w, r, http.StatusRequestEntityTooLarge, codeTooLarge,
			fmt.Sprintf("episode of %d bytes is over this receiver's limit of %d (serve.max_episode_bytes)", offset+max(r.ContentLength, 0), s.cfg.MaxEpisodeBytes))
		return
	}
	// Size is what the client declared (-1 for a chunked body): the store holds that
	// much free space before reading the body, and the rest as it arrives.
	meta := store.EpisodeMeta{Episode: name, Size: r.ContentLength, ReceivedAt: s.now().UTC(), Commit: rec.Commit, Remote: r.RemoteAddr}
	// A retry of something already stored is answered without reading the body; if a
	// crash left it without metadata, this retry's is written.
	res, stored, err := s.episodes.Stored(r.Context(), c.Host, sha, meta)
	switch {
	case errors.Is(err, store.ErrNoSpace):
		hlog.FromRequest(r).Error().Err(err).Msg("an episode's metadata could not be written: the receiver's disk is full")
		fail(w, r, http.StatusInsufficientStorage, codeNoSpace,
			"the episode is stored, but the receiver's disk is too full to write its metadata: retry later")
		return
	case errors.Is(err, store.ErrUnavailable):
		s.storageUnavailable(w, r, err)
		return
	case err != nil:
		s.internalError(w, r, err)
		return
	case stored:
		writeJSON(w, http.StatusOK, episodeResponse{c.Host, res.Episode, sha, res.Size, "duplicate", res.ReceivedAt})
		return
	}
	body := &countingReader{r: r.Body, rc: http.NewResponseController(w), stall: s.stallTimeout}
	res, err = s.receiveEpisode(r.Context(), c.Host, sha, offset, body, meta)
	rec.Bytes = body.n
	if err != nil {
		s.episodeError(w, r, err)
		return
	}
	status, word := http.StatusCreated, "created"
	if !res.Created {
		status, word = http.StatusOK, "duplicate"
	}
	writeJSON(w, status, episodeResponse{c.Host, res.Episode, res.SHA256, res.Size, word, res.ReceivedAt})
}

func (s *Server) episodeError(w http.ResponseWriter, r *http.Request, err error) {
	var mismatch *store.DigestMismatchError
	var offsetErr *store.OffsetError
	kept := "nothing was kept"
	if cut := (*store.CutError)(nil); errors.As(err, &cut) && cut.Kept > 0 {
		kept = fmt.Sprintf("its first %d bytes are kept: continue with HEAD /v1/episodes/%s and a PUT at its Upload-Offset", cut.Kept, recordOf(r).SHA256)
		hlog.FromRequest(r).Info().Int64("kept", cut.Kept).Str("sha256", recordOf(r).SHA256).Msg("upload cut: what arrived of it is kept as a partial for its host to continue")
	}
	switch {
	case errors.As(err, &offsetErr):
		conflict(w, r, offsetErr)
	case errors.As(err, &mismatch):
		fail(w, r, http.StatusUnprocessableEntity, codeDigestMismatch,
			fmt.Sprintf("the body's SHA-256 is %s, not the declared %s: nothing was kept; the file may be corrupt on the host", mismatch.Got, mismatch.Declared))
	case errors.Is(err, store.ErrTooLarge):
		fail(w, r, http.StatusRequestEntityTooLarge, codeTooLarge,
			fmt.Sprintf("episode is over this receiver's limit of %d bytes (serve.max_episode_bytes): nothing was kept", s.cfg.MaxEpisodeBytes))
	case errors.Is(err, store.ErrNoSpace):
		hlog.FromRequest(r).Error().Err(err).Msg("refusing an upload: the receiver's disk is (nearly) full")
		fail(w, r, http.StatusInsufficientStorage, codeNoSpace,
			"the receiver's disk is full or below serve.min_free_bytes: nothing was kept; retry later")
	case errors.Is(err, store.ErrBadName):
		fail(w, r, http.StatusBadRequest, codeBadRequest, err.Error())
	case s.draining.Load() && (r.Context().Err() != nil || isBodyReadError(err)):
		// Cut by the end of serve.drain_timeout: the receiver's doing, not the host's,
		// so the index says 503 (neither a success nor a refusal for fleet health).
		fail(w, r, http.StatusServiceUnavailable, codeShuttingDown, "the receiver shut down before the upload finished: "+kept+"; retry")
	case errors.Is(err, errTakenOver):
		// Its client asked where the partial stands (HEAD) after giving up on it.
		fail(w, r, http.StatusBadRequest, codeBadRequest, "the upload was cut off: "+errTakenOver.Error()+" (HEAD); "+kept)
	case r.Context().Err() != nil || errors.Is(err, io.ErrUnexpectedEOF) || isBodyReadError(err):
		// The client went away or stalled; nobody reads this answer, the index does.
		fail(w, r, http.StatusBadRequest, codeBadRequest, "the upload was cut off before the whole body arrived: "+kept)
	case errors.Is(err, store.ErrUnavailable):
		s.storageUnavailable(w, r, err)
	default:
		s.internalError(w, r, err)
	}
}

// storageRetryAfter is the Retry-After, in seconds, of an upload refused because the
// object store holding episodes failed.
const storageRetryAfter = 30

// storageUnavailable answers an upload the object store could not take: the host
// keeps its file and retries (SPEC §3.4). The store's own error is logged, never sent.
func (s *Server) storageUnavailable(w http.ResponseWriter, r *http.Request, err error) {
	hlog.FromRequest(r).Error().Err(err).Msg("the episode store failed: the upload is answered 503 and the host retries")
	w.Header().Set("Retry-After", strconv.Itoa(storageRetryAfter))
	fail(w, r, http.StatusServiceUnavailable, protocol.CodeStorageUnavailable,
		fmt.Sprintf("the receiver's episode store is unavailable: nothing was kept; retry in %d s", storageRetryAfter))
}

func (s *Server) internalError(w http.ResponseWriter, r *http.Request, err error) {
	hlog.FromRequest(r).Error().Err(err).Str("path", r.URL.Path).Msg("request failed")
	fail(w, r, http.StatusInternalServerError, codeInternal, "internal error on the receiver: see its log")
}

// declaredSHA256 reads X-Cis490-Sha256 or an RFC 9530 Content-Digest sha-256 entry.
func declaredSHA256(h http.Header) (string, error) {
	plain := h.Get(protocol.HeaderSHA256)
	if plain != "" && !protocol.ValidSHA256(plain) {
		return "", fmt.Errorf("%s must be 64 lowercase hex digits", protocol.HeaderSHA256)
	}
	digest, err := contentDigestSHA256(h.Get(protocol.HeaderDigest))
	if err != nil {
		return "", err
	}
	switch {
	case plain != "" && digest != "" && plain != digest:
		return "", fmt.Errorf("%s and %s disagree", protocol.HeaderSHA256, protocol.HeaderDigest)
	case plain != "":
		return plain, nil
	case digest != "":
		return digest, nil
	}
	return "", fmt.Errorf("missing %s (or %s: sha-256=:…:)", protocol.HeaderSHA256, protocol.HeaderDigest)
}

func contentDigestSHA256(v string) (string, error) {
	if v == "" {
		return "", nil
	}
	for _, member := range strings.Split(v, ",") {
		key, val, ok := strings.Cut(strings.TrimSpace(member), "=")
		if !ok || strings.TrimSpace(key) != "sha-256" {
			continue
		}
		val = strings.TrimSpace(val)
		if len(val) < 2 || val[0] != ':' || val[len(val)-1] != ':' {
			break
		}
		raw, err := base64.StdEncoding.DecodeString(val[1 : len(val)-1])
		if err != nil || len(raw) != 32 {
			break
		}
		return hex.EncodeToString(raw), nil
	}
	return "", fmt.Errorf("%s has no valid sha-256=:<base64>: member", protocol.HeaderDigest)
}

// countingReader counts the body's bytes and pushes the connection's read deadline
// forward while data keeps coming: a large upload may take as long as it needs, but a
// client that stops sending cannot pin the connection.
type countingReader struct {
	r     io.Reader
	rc    *http.ResponseController
	stall time.Duration
	n     int64
	last  time.Time
	// interrupted: a newer request for the same partial took it over (interrupt).
	interrupted atomic.Bool
}

func (c *countingReader) Read(p []byte) (int, error) {
	if c.interrupted.Load() {
		return 0, &bodyReadError{errTakenOver}
	}
	if now := time.Now(); now.Sub(c.last) > time.Second {
		c.last = now
		_ = c.rc.SetReadDeadline(now.Add(c.stall))
		if c.interrupted.Load() { // its deadline was just pushed back: fail here
			return 0, &bodyReadError{errTakenOver}
		}
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err != nil && err != io.EOF {
		if c.interrupted.Load() { // the deadline interrupt set: say why
			err = errTakenOver
		}
		err = &bodyReadError{err}
	}
	return n, err
}

type bodyReadError struct{ err error }

func (e *bodyReadError) Error() string { return "read upload body: " + e.err.Error() }
func (e *bodyReadError) Unwrap() error { return e.err }

func isBodyReadError(err error) bool {
	var b *bodyReadError
	return errors.As(err, &b)
}

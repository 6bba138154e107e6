package receiver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/cis490/cis490/internal/protocol"
	"github.com/cis490/cis490/internal/store"
)

// Resumable uploads (SPEC §3.3), after the IETF draft "Resumable Uploads for HTTP"
// where it fits this API: the upload resource is the episode's own URL, offsets are
// asked with HEAD and given back in Upload-Offset, a wrong offset is 409 with the
// right one. The partials themselves are the store's (store.Resumable); a store that
// keeps none (serve.storage.backend s3) answers every resume 409 at offset 0.

// errTakenOver fails the body of an upload whose partial a HEAD took over: the client
// asking for the offset has given up on this request (the draft's concurrency rule).
var errTakenOver = errors.New("a newer request for the same partial upload took it over")

// partialSweepEvery is how often expired partials are removed; Open removes them at start.
const partialSweepEvery = time.Hour

// uploadingHost refuses a request about episodes from anyone but a host.
func uploadingHost(w http.ResponseWriter, r *http.Request) bool {
	c := callerOf(r)
	if c.Role == roleOpen && c.Host == "" {
		fail(w, r, http.StatusBadRequest, codeBadRequest, "missing "+protocol.HeaderHost+": in open mode it names the uploading host")
		return false
	}
	if c.Host == "" || c.Role == roleAdmin {
		fail(w, r, http.StatusForbidden, codeForbidden, "episodes are uploaded by a host: use a host token (or, in open mode, send "+protocol.HeaderHost+")")
		return false
	}
	return true
}

// uploadOffset is a PUT's Upload-Offset: 0 when it has none (all of the episode).
func uploadOffset(h http.Header) (int64, error) {
	v := h.Values(protocol.HeaderUploadOffset)
	switch len(v) {
	case 0:
		return 0, nil
	case 1:
		return protocol.ParseUploadOffset(v[0])
	}
	return 0, fmt.Errorf("%s given %d times", protocol.HeaderUploadOffset, len(v))
}

// receiveEpisode stores the body of a PUT, continuing the partial at offset when it
// is not 0.
func (s *Server) receiveEpisode(ctx context.Context, host, sha string, offset int64, body *countingReader, meta store.EpisodeMeta) (store.PutResult, error) {
	limit := int64(s.cfg.MaxEpisodeBytes)
	rs, ok := s.episodes.(store.Resumable)
	if !ok {
		if offset > 0 {
			return store.PutResult{}, &store.OffsetError{Asked: offset}
		}
		return s.episodes.PutEpisode(ctx, host, sha, body, limit, meta)
	}
	res, err := rs.PutResumable(ctx, store.Upload{Host: host, SHA256: sha, Offset: offset, Body: body, MaxBytes: limit, Meta: meta, Interrupt: body.interrupt})
	if err == nil && res.ResumedFrom > 0 {
		s.metrics.resumed(res.ResumedFrom)
	}
	return res, err
}

// conflict is the 409 of a PUT whose Upload-Offset is not where the partial stands.
func conflict(w http.ResponseWriter, r *http.Request, e *store.OffsetError) {
	w.Header().Set(protocol.HeaderUploadOffset, strconv.FormatInt(e.Offset, 10))
	w.Header().Set(protocol.HeaderUploadComplete, "?0")
	next := fmt.Sprintf("send the episode from its first byte (%s: 0, or none)", protocol.HeaderUploadOffset)
	if e.Offset > 0 {
		next = fmt.Sprintf("continue at %s: %d (ask HEAD /v1/episodes/%s first if another upload of it may still be running)",
			protocol.HeaderUploadOffset, e.Offset, recordOf(r).SHA256)
	}
	fail(w, r, http.StatusConflict, protocol.CodeUploadOffsetMismatch, e.Error()+": "+next)
}

func (c *countingReader) interrupt() {
	c.interrupted.Store(true)
	_ = c.rc.SetReadDeadline(time.Now()) // a read waiting for the network returns now
}

// headEpisode answers HEAD /v1/episodes/{sha256}: how much of the calling host's
// episode the receiver has. 200 stored (its size), 204 a partial (its offset), 404
// neither. A partial's upload still in flight is interrupted first, so that the
// offset answered is the one the next PUT is accepted at.
func (s *Server) headEpisode(w http.ResponseWriter, r *http.Request) {
	if !uploadingHost(w, r) {
		return
	}
	host, sha := callerOf(r).Host, r.PathValue("sha256")
	if !protocol.ValidSHA256(sha) {
		fail(w, r, http.StatusBadRequest, codeBadRequest, "the episode is named by its SHA-256: 64 lowercase hex digits")
		return
	}
	recordOf(r).SHA256 = sha
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	meta, stored, err := s.episodes.Stat(r.Context(), host, sha)
	if err != nil {
		s.headError(w, r, err)
		return
	}
	if stored {
		size := strconv.FormatInt(meta.Size, 10)
		h.Set(protocol.HeaderUploadComplete, "?1")
		h.Set(protocol.HeaderUploadOffset, size)
		h.Set(protocol.HeaderUploadLength, size)
		h.Set("Content-Length", size)
		w.WriteHeader(http.StatusOK)
		return
	}
	if rs, ok := s.episodes.(store.Resumable); ok {
		info, ok, err := rs.Partial(r.Context(), host, sha)
		if err != nil {
			s.headError(w, r, err)
			return
		}
		if ok {
			h.Set(protocol.HeaderUploadComplete, "?0")
			h.Set(protocol.HeaderUploadOffset, strconv.FormatInt(info.Offset, 10))
			if info.Length > 0 {
				h.Set(protocol.HeaderUploadLength, strconv.FormatInt(info.Length, 10))
			}
			h.Set(protocol.HeaderUploadLimit, fmt.Sprintf("max-size=%d, max-age=%d",
				int64(s.cfg.MaxEpisodeBytes), max(int64(info.Expires.Sub(s.now()).Seconds()), 0)))
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
	fail(w, r, http.StatusNotFound, codeNotFound, fmt.Sprintf("host %s has no episode %s here, stored or partly received: upload it from its first byte", host, sha))
}

func (s *Server) headError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, store.ErrUnavailable):
		s.storageUnavailable(w, r, err)
	case errors.Is(err, store.ErrPartialBusy):
		w.Header().Set("Retry-After", "1")
		fail(w, r, http.StatusServiceUnavailable, codeBusy, err.Error()+": retry in a second")
	case r.Context().Err() != nil:
		fail(w, r, http.StatusServiceUnavailable, codeShuttingDown, "the request ended before the receiver could answer: retry")
	default:
		s.internalError(w, r, err)
	}
}

// startPartialSweep removes expired partials every interval until the returned stop
// is called; stop waits for a sweep in progress.
func startPartialSweep(st *store.Store, log zerolog.Logger, interval time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			n, err := st.SweepPartials()
			if err != nil {
				log.Error().Err(err).Msg("could not sweep expired partial uploads; retried in an hour")
			} else if n > 0 {
				log.Info().Int("removed", n).Msg("swept partial uploads that expired (serve.partial_ttl) or cannot be continued")
			}
		}
	})
	return func() { cancel(); wg.Wait() }
}

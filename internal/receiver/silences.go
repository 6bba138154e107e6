package receiver

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/rs/zerolog"
	"github.com/rs/zerolog/hlog"

	"github.com/cis490/cis490/internal/fleethealth"
	"github.com/cis490/cis490/internal/silences"
)

// codeSilenceOver answers DELETE /v1/silences/{id} for a silence already ended or
// expired: nothing changed, and a client retrying its own DELETE can tell it apart
// from a failure.
const codeSilenceOver = "silence_over"

// maxSilenceBody bounds POST /v1/silences: a request is a few hundred bytes.
const maxSilenceBody = 16 << 10

func (s *Server) silencesPath() string { return silences.Path(s.cfg.DataDir) }

// adminOnly answers 403 unless the caller is the admin, and says whether it did not.
func adminOnly(w http.ResponseWriter, r *http.Request) bool {
	if callerOf(r).isAdmin() {
		return true
	}
	fail(w, r, http.StatusForbidden, codeForbidden, "silences are for the admin: use an admin token")
	return false
}

// listSilences answers every silence with its state now, as `alerts silences --all
// --json` prints them.
func (s *Server) listSilences(w http.ResponseWriter, r *http.Request) {
	if !adminOnly(w, r) {
		return
	}
	set, st, err := silences.Load(s.silencesPath())
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	if st.Skipped > 0 {
		hlog.FromRequest(r).Warn().Int("skipped", st.Skipped).Str("file", s.silencesPath()).Msg("silences file has damaged lines; skipped")
	}
	writeJSON(w, http.StatusOK, set.List(s.now()))
}

// postSilence makes a silence from a silences.Request, checked as the local command
// checks it: 400 with the reason, and nothing written, for anything refused.
func (s *Server) postSilence(w http.ResponseWriter, r *http.Request) {
	if !adminOnly(w, r) {
		return
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxSilenceBody))
	// An unknown field is most likely a misspelt one ("until" for "end"): refusing it
	// beats making a silence without what the caller meant.
	dec.DisallowUnknownFields()
	var req silences.Request
	if err := dec.Decode(&req); err != nil {
		fail(w, r, http.StatusBadRequest, codeBadRequest,
			fmt.Sprintf(`the body must be one JSON object {"host", "symptom", "end" or "for", "reason"}: %v`, err))
		return
	}
	c := callerOf(r)
	by := c.Admin
	if by == "" {
		by = c.Role // open mode: nobody in particular
	}
	sl, err := s.makeSilence(hlog.FromRequest(r), req, by)
	if errors.Is(err, silences.ErrInvalid) {
		fail(w, r, http.StatusBadRequest, codeBadRequest, err.Error())
		return
	}
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, sl)
}

// makeSilence makes the silence req asks for, by by: POST /v1/silences and the host
// page's form both come here, so both check the same (a known host, max_silence) and
// both show in the very next GET /v1/fleet. An error matching silences.ErrInvalid
// is the caller's to fix; nothing was written then.
func (s *Server) makeSilence(log *zerolog.Logger, req silences.Request, by string) (silences.Silence, error) {
	now := s.now()
	sl, err := req.Silence(now, by)
	if err == nil {
		err = silences.Known{DataDir: s.cfg.DataDir, TokensFile: s.cfg.TokensFile, Self: s.fleet.Host}.Check(sl.Host, now)
	}
	if err == nil {
		sl, err = silences.Add(s.silencesPath(), sl, now, s.fleetConfig().MaxSilence, fleethealth.Symptoms)
	}
	if err != nil {
		return sl, err
	}
	log.Info().Str("id", sl.ID).Str("host", sl.Host).Str("symptom", sl.Symptom).Time("end", sl.End).
		Str("by", sl.By).Msg("silence made")
	s.fleetView.forget()
	return sl, nil
}

// deleteSilence ends a silence now: 204; 404 for an unknown id; 409 when it was
// already over (nothing written).
func (s *Server) deleteSilence(w http.ResponseWriter, r *http.Request) {
	if !adminOnly(w, r) {
		return
	}
	err := s.endSilence(hlog.FromRequest(r), r.PathValue("id"), callerOf(r).Admin)
	switch {
	case errors.Is(err, silences.ErrNotFound):
		fail(w, r, http.StatusNotFound, codeNotFound, err.Error())
	case errors.Is(err, silences.ErrOver):
		fail(w, r, http.StatusConflict, codeSilenceOver, err.Error())
	case err != nil:
		s.internalError(w, r, err)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

// endSilence ends the silence id now, for DELETE /v1/silences/{id} and the host
// page alike: errors match silences.ErrNotFound and silences.ErrOver (nothing was
// written then).
func (s *Server) endSilence(log *zerolog.Logger, id, by string) error {
	sl, err := silences.End(s.silencesPath(), id, s.now())
	if err != nil {
		return err
	}
	log.Info().Str("id", sl.ID).Str("host", sl.Host).Str("by", by).Msg("silence ended")
	s.fleetView.forget()
	return nil
}

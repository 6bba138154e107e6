package receiver

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"syscall"

	"github.com/rs/zerolog/hlog"

	"github.com/cis490/cis490/internal/buildinfo"
	"github.com/cis490/cis490/internal/config"
	"github.com/cis490/cis490/internal/objstore"
	"github.com/cis490/cis490/internal/protocol"
	"github.com/cis490/cis490/internal/store"
)

func (s *Server) heartbeat(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	if c.Role == roleOpen && c.Host == "" {
		fail(w, r, http.StatusBadRequest, codeBadRequest, "missing "+protocol.HeaderHost+": in open mode it names the host")
		return
	}
	if c.Host == "" || c.Role == roleAdmin {
		fail(w, r, http.StatusForbidden, codeForbidden, "heartbeats come from a host: use a host token (or, in open mode, send "+protocol.HeaderHost+")")
		return
	}
	n, _ := io.Copy(io.Discard, io.LimitReader(r.Body, 64<<10))
	recordOf(r).Bytes = n
	// A heartbeat is only its index line: answer 204 once that is written.
	if err := s.writeIndexLine(r, http.StatusNoContent); err != nil {
		s.indexError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// indexError answers a request whose index line could not be written: 507 when the
// disk is full, so the host retries later, 500 otherwise.
func (s *Server) indexError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		hlog.FromRequest(r).Error().Err(err).Msg("the request index cannot be written: the receiver's disk is full")
		fail(w, r, http.StatusInsufficientStorage, codeNoSpace,
			"the receiver's disk is full: this request was not recorded; retry later")
		return
	}
	s.internalError(w, r, fmt.Errorf("write the request index: %w", err))
}

// pathHost validates the {host} of a host-health path and checks that the caller may
// touch it.
func (s *Server) pathHost(w http.ResponseWriter, r *http.Request) (string, bool) {
	host, ok := protocol.NormalizeHost(r.PathValue("host"))
	if !ok {
		fail(w, r, http.StatusBadRequest, codeBadRequest, "the host in the path is not an RFC 1123 host name")
		return "", false
	}
	recordOf(r).Host = host
	if !callerOf(r).canRead(host) {
		fail(w, r, http.StatusForbidden, codeForbidden, "a host token acts only for its own host, not "+host)
		return "", false
	}
	return host, true
}

// putHostHealth stores a doctor report. Never gated: a host running refused code must
// still be able to say that it is sick.
func (s *Server) putHostHealth(w http.ResponseWriter, r *http.Request) {
	host, ok := s.pathHost(w, r)
	if !ok {
		return
	}
	limit := int64(s.cfg.MaxReportBytes)
	if r.ContentLength > limit {
		fail(w, r, http.StatusRequestEntityTooLarge, codeTooLarge, fmt.Sprintf("report is over %d bytes (serve.max_report_bytes)", limit))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	recordOf(r).Bytes = int64(len(body))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		fail(w, r, http.StatusRequestEntityTooLarge, codeTooLarge, fmt.Sprintf("report is over %d bytes (serve.max_report_bytes)", limit))
		return
	case err != nil:
		fail(w, r, http.StatusBadRequest, codeBadRequest, "the report was cut off before it all arrived")
		return
	}
	var head struct {
		Status any `json:"status"`
	}
	if json.Unmarshal(body, &head) == nil {
		// Not an object at all is the store's to say (ErrNotObject); an object
		// without a doctor status would replace the host's report with nothing.
		if status, _ := head.Status.(string); !protocol.ValidReportStatus(status) {
			fail(w, r, http.StatusBadRequest, codeBadRequest,
				"the report's status must be ok, warn or fail: send the output of `cis490 doctor --json` (`cis490 health ship` does)")
			return
		}
	}
	err = s.store.PutHostHealth(host, body, s.now().UTC())
	switch {
	case errors.Is(err, store.ErrNotObject):
		fail(w, r, http.StatusBadRequest, codeBadRequest, "the report must be a JSON object (the output of `cis490 doctor --json`)")
	case errors.Is(err, store.ErrNoSpace):
		fail(w, r, http.StatusInsufficientStorage, codeNoSpace, "the receiver's disk is full: the report was not stored")
	case err != nil:
		s.internalError(w, r, err)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

func (s *Server) getHostHealth(w http.ResponseWriter, r *http.Request) {
	host, ok := s.pathHost(w, r)
	if !ok {
		return
	}
	report, err := s.store.HostHealth(host)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		fail(w, r, http.StatusNotFound, codeNotFound, "no doctor report from "+host+" yet (hosts send one daily with `cis490 health ship`)")
	case err != nil:
		s.internalError(w, r, err)
	default:
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(report)
	}
}

func (s *Server) listHostHealth(w http.ResponseWriter, r *http.Request) {
	if !callerOf(r).isAdmin() {
		fail(w, r, http.StatusForbidden, codeForbidden, "every host's reports are for the admin: use an admin token")
		return
	}
	reports, err := s.store.AllHostHealth()
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, reports)
}

// whoami tells a client how the receiver sees it (protocol.WhoAmI). Never gated.
func (s *Server) whoami(w http.ResponseWriter, r *http.Request) {
	d, c := recordOf(r).Gate, callerOf(r)
	allowed := d.Allowed
	if !d.Stamped && s.unstamped == config.UnstampedReject {
		allowed = false
	}
	writeJSON(w, http.StatusOK, protocol.WhoAmI{
		Host: c.Host, Role: c.Role, Commit: d.Commit, CommitAllowed: allowed, Gate: d.Reason,
		ServerTime: s.now().UTC(), Version: buildinfo.Get().Version,
	})
}

// healthz answers anyone, without a token or a client certificate: fleet health and
// doctor on the Pi read the gate's sources from it. A source that fails is news, not
// an outage, so the answer stays 200; its path and error stay in the log.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		s.refuseDraining(w, r)
		return
	}
	writeJSON(w, http.StatusOK, s.health())
}

// health is what /healthz answers; GET /v1/fleet reads it in-process for the Pi's row.
func (s *Server) health() protocol.Health {
	b := buildinfo.Get()
	h := protocol.Health{Status: protocol.HealthOK, Version: b.Version, Commit: b.Commit, Gate: []protocol.GateSource{}}
	if s.gate != nil {
		for _, src := range s.gate.Stats().Sources {
			h.Gate = append(h.Gate, protocol.GateSource{
				Name: src.Kind, Loaded: src.Loaded, LastOK: src.LastOK.UTC(), FailingSince: src.FailingSince.UTC(),
			})
		}
	}
	if st, ok := s.episodes.(*objstore.Store); ok {
		h.Storage = st.Health().Wire()
	}
	return h
}

func notFound(w http.ResponseWriter, r *http.Request) {
	fail(w, r, http.StatusNotFound, codeNotFound, "no such endpoint: "+r.URL.Path)
}

func methodNotAllowed(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		fail(w, r, http.StatusMethodNotAllowed, codeMethodNotAllowed, r.Method+" is not allowed here; use "+allow)
	}
}

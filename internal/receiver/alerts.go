package receiver

import (
	"context"
	"net/http"
	"path/filepath"
	"strconv"
	"time"

	"github.com/rs/zerolog/hlog"

	"github.com/cis490/cis490/internal/alerts"
	"github.com/cis490/cis490/internal/config"
	"github.com/cis490/cis490/internal/fleethealth"
)

// FleetOptions tell the receiver where fleet health keeps its output, for
// GET /v1/alerts and GET /v1/fleet. The zero value means the defaults:
// [fleet_health] as shipped and <data_dir>/alerts.jsonl.
type FleetOptions struct {
	// Host is the Pi's own fleet name (the configuration's host): GET /v1/fleet gives
	// the receiver a row of its own under it. Empty: no such row.
	Host       string
	Config     config.FleetHealth
	AlertsPath string
	// CacheFor is how long GET /v1/fleet answers with the same evaluation; 0 means
	// DefaultFleetCache, less than 0 none (every request evaluates).
	CacheFor time.Duration
	// Poll is how often a follow stream looks at alerts.jsonl when inotify says
	// nothing; 0 means alerts.DefaultPoll.
	Poll time.Duration
}

func (s *Server) fleetConfig() config.FleetHealth {
	if s.fleet.Config.ActiveWindow == 0 {
		return config.Default().FleetHealth
	}
	return s.fleet.Config
}

func (s *Server) alertsPath() string {
	if s.fleet.AlertsPath == "" {
		return filepath.Join(s.cfg.DataDir, "alerts.jsonl")
	}
	return s.fleet.AlertsPath
}

// drainCheck is how often a follow stream looks whether the server is draining:
// http.Server.Shutdown waits for handlers and does not cancel them, so a stream
// must end on its own for the receiver to stop.
const drainCheck = 200 * time.Millisecond

// getAlerts answers alerts.jsonl as JSON lines: ?since= (RFC 3339 or a duration
// back from now), ?n= (the last n), ?host=, ?symptom=, ?status=, and ?follow=1 to
// keep streaming lines as fleet health appends them.
func (s *Server) getAlerts(w http.ResponseWriter, r *http.Request) {
	if !callerOf(r).isAdmin() {
		fail(w, r, http.StatusForbidden, codeForbidden, "alerts are for the admin: use an admin token")
		return
	}
	q := r.URL.Query()
	since, err := alerts.ParseSince(q.Get("since"), s.now())
	if err != nil {
		fail(w, r, http.StatusBadRequest, codeBadRequest, "?"+err.Error())
		return
	}
	filter := alerts.Filter{Since: since, Host: q.Get("host"), Symptom: q.Get("symptom"), Status: q.Get("status")}
	follow := q.Get("follow") == "1" || q.Get("follow") == "true"
	n := -1 // every matching line …
	if follow && !q.Has("since") {
		n = 0 // … but a bare follow starts at the end, like tail -f -n 0
	}
	if q.Has("n") {
		if n, err = strconv.Atoi(q.Get("n")); err != nil || n < 0 {
			fail(w, r, http.StatusBadRequest, codeBadRequest, "?n must be a whole number of lines, 0 or more")
			return
		}
	}
	reader := alerts.NewReader(s.alertsPath())
	defer reader.Close()
	lines, err := alerts.Collect(reader, n, filter)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	for _, l := range lines {
		if _, err := w.Write(append(l.Raw, '\n')); err != nil {
			return
		}
	}
	if !follow {
		return
	}
	_ = rc.Flush()
	ctx, stop := context.WithCancel(r.Context())
	defer stop()
	go func() {
		tick := time.NewTicker(drainCheck)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				if s.draining.Load() {
					stop()
					return
				}
			}
		}
	}()
	err = alerts.NewFollower(reader, s.fleet.Poll).Follow(ctx, func(raw []byte) error {
		if a, ok := alerts.Parse(raw); !ok || !filter.Match(a) {
			return nil
		}
		if _, err := w.Write(append(raw, '\n')); err != nil {
			return err
		}
		return rc.Flush()
	})
	if err != nil && ctx.Err() == nil { // not the client leaving, nor the drain
		recordOf(r).Error = err.Error()
		hlog.FromRequest(r).Warn().Err(err).Msg("alerts follow stream ended")
	}
}

// getFleet answers the fleet table (fleethealth.Fleet), as `cis490 fleet --json` on
// the Pi would, with the open alerts of the last check, the live gate's answer for
// each commit, and the receiver's own row from what it knows in-process. The
// evaluation is reused for FleetOptions.CacheFor (fleetcache.go): generated_at says
// when it was made. A damaged alert state is no 500: the rows come from the index,
// and state_error says the open alerts are unknown.
func (s *Server) getFleet(w http.ResponseWriter, r *http.Request) {
	if !callerOf(r).isAdmin() {
		fail(w, r, http.StatusForbidden, codeForbidden, "the fleet view is for the admin: use an admin token")
		return
	}
	v, err := s.fleetView.get()
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	if v.StateError != "" {
		hlog.FromRequest(r).Warn().Str("state_error", v.StateError).Msg("fleet view without open alerts")
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) newFleetCache() *fleetCache {
	ttl := s.fleet.CacheFor
	if ttl == 0 {
		ttl = DefaultFleetCache
	}
	c := &fleetCache{ttl: ttl, now: s.now, compute: s.evaluateFleet}
	if ttl > 0 {
		c.stale = DefaultFleetStale
	}
	return c
}

// evaluateFleet is one fleethealth.Snapshot as of now.
func (s *Server) evaluateFleet(now time.Time) (fleethealth.Fleet, error) {
	var allows func(string) bool
	if s.gate != nil {
		allows = func(commit string) bool { return s.gate.Check(commit).Allowed }
	}
	res, err := fleethealth.Snapshot(fleethealth.Options{
		Config: s.fleetConfig(), DataDir: s.cfg.DataDir, TokensFile: s.cfg.TokensFile,
		Receiver: s.receiverFacts(), AllowsCommit: allows, Now: now, Logger: s.log,
	})
	if err != nil {
		return fleethealth.Fleet{}, err
	}
	return res.Fleet(), nil
}

// receiverFacts is what fleet-health check learns of the receiver through /healthz
// and statfs, known here first-hand: the data folder's free space, the gate's
// sources, and that the receiver is up (it is answering).
func (s *Server) receiverFacts() *fleethealth.ReceiverFacts {
	if s.fleet.Host == "" {
		return nil
	}
	h := s.health()
	rf := &fleethealth.ReceiverFacts{Host: s.fleet.Host, DataDir: s.cfg.DataDir,
		MinFreeBytes: uint64(max(s.cfg.MinFreeBytes, 0)), Health: &h}
	rf.FreeBytes, rf.FreeErr = s.store.FreeBytes()
	return rf
}

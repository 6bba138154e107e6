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
	Config     config.FleetHealth
	AlertsPath string
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

// fleetResponse is the body of GET /v1/fleet.
type fleetResponse struct {
	GeneratedAt time.Time         `json:"generated_at"`
	WindowFrom  time.Time         `json:"window_from"`
	Hosts       []fleethealth.Row `json:"hosts"`
	// StateError says why open_alerts are empty whatever the fleet's: fleet health's
	// alert state could not be read (which file, and what to do).
	StateError string `json:"state_error,omitempty"`
}

// getFleet answers one row per host, as `cis490 fleet-health check --dry-run --json`
// would, with the open alerts of the last check. A damaged alert state is no 500:
// the rows come from the index, and state_error says the open alerts are unknown.
func (s *Server) getFleet(w http.ResponseWriter, r *http.Request) {
	if !callerOf(r).isAdmin() {
		fail(w, r, http.StatusForbidden, codeForbidden, "the fleet view is for the admin: use an admin token")
		return
	}
	res, err := fleethealth.Snapshot(fleethealth.Options{
		Config: s.fleetConfig(), DataDir: s.cfg.DataDir, TokensFile: s.cfg.TokensFile, Now: s.now(), Logger: s.log,
	})
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	if res.StateError != "" {
		hlog.FromRequest(r).Warn().Str("state_error", res.StateError).Msg("fleet view without open alerts")
	}
	writeJSON(w, http.StatusOK, fleetResponse{GeneratedAt: res.Now, WindowFrom: res.WindowFrom, Hosts: res.Hosts, StateError: res.StateError})
}

// Package fleethealth is the Pi's self-monitoring (SPEC §5.1): one pass over the
// request index of the active window, per-host symptoms, alert state per (host,
// symptom) and the notifications that state changes send.
//
// A check reads; decides; notifies (alerts.jsonl, then syslog, Alertmanager, the
// webhook); then saves the new state, once alerts.jsonl took the lines. Detection
// (facts.go, window.go, symptoms.go) knows nothing of alert state (state.go,
// transitions.go), which knows nothing of where notifications go (notify.go).
package fleethealth

import (
	"path/filepath"
	"time"
)

// Symptoms, in the order a host's are listed.
const (
	Silent        = "silent"
	FatalOnly     = "fatal-only"
	Unstamped     = "unstamped"
	ReportFailing = "report-failing"
	ReportStale   = "report-stale"
)

// Symptoms lists every symptom.
var Symptoms = []string{Silent, FatalOnly, Unstamped, ReportFailing, ReportStale}

// RunInterval is the period of cis490-fleet-health.timer. An alert pushed to
// Alertmanager stays active three runs ahead, so one missed run does not resolve it.
const RunInterval = 5 * time.Minute

// Index routes (SPEC §3.4) that fleet health reads.
const (
	routeEpisodes   = "episodes"
	routeHeartbeat  = "heartbeat"
	routeHostHealth = "host-health"
)

// Paths in the receiver's data folder.
func indexDir(dataDir string) string  { return filepath.Join(dataDir, "index") }
func statePath(dataDir string) string { return filepath.Join(dataDir, "fleet-health.json") }
func lockPath(dataDir string) string  { return filepath.Join(dataDir, "fleet-health.lock") }
func reportDir(dataDir string) string { return filepath.Join(dataDir, "host-health") }

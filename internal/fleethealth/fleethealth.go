// Package fleethealth is the Pi's self-monitoring (SPEC §5.1): one pass over the
// request index of the active window, per-host symptoms, alert state per (host,
// symptom) and the notifications that state changes send.
//
// A check reads; decides; notifies (alerts.jsonl, then syslog, Alertmanager, the
// webhook); then saves the new state, once alerts.jsonl took the lines. Detection
// (facts.go, window.go, symptoms.go, pi.go for the receiver's own row; inputs.go for
// the roster and the silences; check.go puts them together) knows nothing of alert
// state (state.go, transitions.go), which knows nothing of where notifications go
// (notify.go).
package fleethealth

import (
	"path/filepath"
	"time"
)

// Symptoms of a lab host, in the order a host's are listed. The receiver's own ones
// (DiskLow, GateStale, ReceiverDown, StorageDown) are in pi.go.
const (
	Silent        = "silent"
	FatalOnly     = "fatal-only"
	TLSRefused    = "tls-refused"
	Unstamped     = "unstamped"
	ReportFailing = "report-failing"
	ReportWarning = "report-warning"
	ReportStale   = "report-stale"
)

// Symptoms lists every symptom: a lab host's, then the receiver's own (pi.go).
var Symptoms = []string{Silent, FatalOnly, TLSRefused, Unstamped, ReportFailing, ReportWarning, ReportStale,
	DiskLow, GateStale, ReceiverDown, StorageDown}

// Severities of an alert.
const (
	Critical = "critical"
	Warning  = "warning"
)

// severities is the one table of who must look, and how soon. Critical: the host's
// data is not reaching the receiver (silent, fatal-only, tls-refused), the host itself
// says it is broken (report-failing), or the receiver cannot take what is sent
// (disk-low, receiver-down, storage-down). Warning: data still flows, but something
// will break if nobody looks (an unstamped build, a late or warning report, a gate list
// that stopped refreshing: the last good one is kept).
var severities = map[string]string{
	Silent: Critical, FatalOnly: Critical, TLSRefused: Critical, ReportFailing: Critical,
	DiskLow: Critical, ReceiverDown: Critical, StorageDown: Critical,
	Unstamped: Warning, ReportStale: Warning, ReportWarning: Warning, GateStale: Warning,
}

// Severity is a symptom's severity; one this table does not know is a warning.
func Severity(symptom string) string {
	if s, ok := severities[symptom]; ok {
		return s
	}
	return Warning
}

// RunInterval is the period of cis490-fleet-health.timer. An alert pushed to
// Alertmanager stays active three runs ahead, so one missed run does not resolve it.
const RunInterval = 5 * time.Minute

// Index routes (SPEC §3.4) that fleet health reads.
const (
	routeEpisodes   = "episodes"
	routeHeartbeat  = "heartbeat"
	routeHostHealth = "host-health"
	// routeTLS lines are refused TLS handshakes: status 0, the name the client
	// certificate carries (or ""), the reason in "error".
	routeTLS = "tls"
)

// Paths in the receiver's data folder.
func indexDir(dataDir string) string  { return filepath.Join(dataDir, "index") }
func statePath(dataDir string) string { return filepath.Join(dataDir, "fleet-health.json") }
func lockPath(dataDir string) string  { return filepath.Join(dataDir, "fleet-health.lock") }
func reportDir(dataDir string) string { return filepath.Join(dataDir, "host-health") }

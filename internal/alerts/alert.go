// Package alerts owns alerts.jsonl, fleet health's output (SPEC §5): the line format,
// appending lines durably, and reading them back — the last N, filtered, or followed
// as they are appended, across rotation and truncation.
package alerts

import (
	"bytes"
	"encoding/json"
	"time"
)

// Statuses of an alert line.
const (
	StatusFiring   = "firing"
	StatusResolved = "resolved"
	// StatusExpired closes the open alerts of a host that has been quiet for longer
	// than fleet_health.active_window: nothing recovered, the host is just no longer
	// tracked.
	StatusExpired = "expired"
	// StatusRetired closes the open alerts of a host whose host token was revoked:
	// it left the roster, and nothing about it is expected any more.
	StatusRetired = "retired"
)

// Statuses lists every status a line may have.
var Statuses = []string{StatusFiring, StatusResolved, StatusExpired, StatusRetired}

// Alert is one line of alerts.jsonl. The JSON field names are the contract.
type Alert struct {
	// TS is when the check that wrote the line evaluated the fleet (its --now).
	TS      time.Time `json:"ts"`
	Host    string    `json:"host"`
	Symptom string    `json:"symptom"`
	// Severity is "critical" or "warning", by symptom: who must look, and how soon.
	Severity string `json:"severity"`
	Status   string `json:"status"`
	DedupKey string `json:"dedup_key"`
	// Since is the symptom's threshold time: when its definition first became true.
	Since    time.Time       `json:"since"`
	Summary  string          `json:"summary"`
	Evidence json.RawMessage `json:"evidence"`
	// Flapping marks the firing lines of a symptom that came back within
	// repeat_interval of its resolution; such a line waited for that interval.
	Flapping bool `json:"flapping,omitempty"`
}

// DedupKey is host/symptom/UTC-hour of at: no two firing lines share one.
func DedupKey(host, symptom string, at time.Time) string {
	return host + "/" + symptom + "/" + at.UTC().Format("2006-01-02T15")
}

// Parse decodes one line; ok is false for anything that is not an alert (a blank
// line, a line torn by a crash, garbage), which readers skip.
func Parse(line []byte) (Alert, bool) {
	var a Alert
	line = bytes.TrimSpace(line)
	if len(line) == 0 || line[0] != '{' {
		return a, false
	}
	if json.Unmarshal(line, &a) != nil || a.TS.IsZero() {
		return a, false
	}
	return a, true
}

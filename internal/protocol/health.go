package protocol

import "time"

// Health is the answer of GET /healthz (SPEC §3.3). Anyone may ask, without a token
// or a client certificate, so it says how the receiver is and never where its files
// are or why a source failed: paths and error texts stay in its log.
type Health struct {
	Status  string       `json:"status"` // HealthOK
	Version string       `json:"version"`
	Commit  string       `json:"commit"`
	Gate    []GateSource `json:"gate"` // one per configured source; empty: the gate is open
}

// Health statuses. A draining receiver answers 503 with the error body (code
// "shutting_down"), as it answers every request then; a probe that sees that
// reports HealthDraining.
const (
	HealthOK       = "ok"
	HealthDraining = "draining"
)

// GateSource is one source of the version gate's allow-list (SPEC §3.2).
type GateSource struct {
	Name   string `json:"name"` // GateSourceAllowlistFile or GateSourceGit
	Loaded bool   `json:"loaded"`
	// LastOK is the last successful refresh; zero when it never loaded.
	LastOK time.Time `json:"last_ok,omitzero"`
	// FailingSince is the first of the refreshes that failed since the last good one;
	// zero while the source is fine (or was never tried).
	FailingSince time.Time `json:"failing_since,omitzero"`
}

// Names of gate sources, after the keys that configure them.
const (
	GateSourceAllowlistFile = "allowlist_file"
	GateSourceGit           = "git"
)

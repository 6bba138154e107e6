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
	// Storage is the object store episodes go to; absent with the data folder (fs).
	Storage *StorageHealth `json:"storage,omitempty"`
}

// StorageHealth is the state of the object store holding episodes (serve.storage,
// backend s3), from the requests the receiver made to it. Like the gate's sources it
// says no error text and no address: those are in the receiver's log.
type StorageHealth struct {
	Backend string `json:"backend"` // "s3"
	// OK is whether the latest request to the store succeeded (true before any).
	OK bool `json:"ok"`
	// LastOK is the latest request that succeeded; zero before one has.
	LastOK time.Time `json:"last_ok,omitzero"`
	// FailingSince is the first of the failures since the last success; zero while OK.
	FailingSince time.Time `json:"failing_since,omitzero"`
	// ConditionalWrites is whether the store refuses a second If-None-Match: * write
	// of one key (checked at start); without, one receiver's own lock picks the winner.
	ConditionalWrites bool `json:"conditional_writes"`
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

// Package web is the receiver's fleet page (SPEC §3.5): GET / (the fleet) and
// GET /hosts/{host} (one host), server-rendered from html/template with CSS embedded
// in the binary, behind an admin session (sessions.go) or, in open mode, a banner.
// Everything a page shows comes through Source, which the receiver implements from
// the data GET /v1/fleet answers from: the page follows the API's rules by
// construction, and never reads anything the API would not.
package web

import (
	"time"

	"github.com/cis490/cis490/internal/alerts"
	"github.com/cis490/cis490/internal/fleethealth"
	"github.com/cis490/cis490/internal/index"
	"github.com/cis490/cis490/internal/protocol"
	"github.com/cis490/cis490/internal/silences"
)

// Source is what the pages read and change. The receiver implements it
// (internal/receiver/page.go); handler tests implement it by hand.
type Source interface {
	// Fleet is GET /v1/fleet's evaluation: the same cached one (5 s), worst first.
	Fleet() (fleethealth.Fleet, error)
	// Receiver is the receiver's own state for the fleet page's header.
	Receiver() Receiver
	// Report is host's latest doctor report as stored (the `cis490 doctor --json`
	// document plus "received_at"); an error matching fs.ErrNotExist when it sent none.
	Report(host string) ([]byte, error)
	// Requests are host's last n request-index lines within the active window, newest
	// first. It reads from the end of the index and stops at n: never the whole history.
	Requests(host string, n int) ([]index.Entry, error)
	// Alerts are host's last n lines of alerts.jsonl, newest first.
	Alerts(host string, n int) ([]alerts.Alert, error)
	// Silences are host's silences that are active or pending now.
	Silences(host string) ([]silences.View, error)
	// Silence makes a silence exactly as POST /v1/silences does (same checks, same
	// limit), made by admin. An error matching silences.ErrInvalid is the caller's to
	// fix: its message says what.
	Silence(req silences.Request, admin string) (silences.Silence, error)
	// EndSilence ends a silence now, as DELETE /v1/silences/{id} does: errors match
	// silences.ErrNotFound and silences.ErrOver.
	EndSilence(id, admin string) error
	// Admin checks an admin token as the API does: the admin's name and true when the
	// token is a live admin token. Never called in open mode.
	Admin(token string) (name string, ok bool)
}

// Receiver is the receiver's own state.
type Receiver struct {
	Host    string // the Pi's fleet name ("" when it has no row of its own)
	Version string
	Commit  string
	Started time.Time
	// FreeBytes of serve.data_dir; FreeErr says why it is unknown.
	FreeBytes    uint64
	FreeErr      error
	MinFreeBytes uint64
	// Gate are the version gate's sources with their last refresh; empty: the gate is open.
	Gate []protocol.GateSource
	// MaxSilence is fleet_health.max_silence: the silence form offers no longer
	// choice. Zero: silences.DefaultMax.
	MaxSilence time.Duration
	// Open: the receiver runs without a tokens file (loopback only): the pages need
	// no sign-in and say so in a banner.
	Open bool
}

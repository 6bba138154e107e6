package fleethealth

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Report is what fleet health reads of a host's latest doctor report
// (host-health/<host>.json: the `doctor --json` document plus "received_at").
type Report struct {
	Status      string    `json:"status"`
	GeneratedAt time.Time `json:"generated_at,omitzero"`
	// ReceivedAt is the receiver's clock: a sick host's own clock is one of the things
	// that break, so staleness is judged by this one.
	ReceivedAt time.Time     `json:"received_at"`
	Failing    []FailedCheck `json:"failing,omitempty"`
	Warnings   []FailedCheck `json:"warnings,omitempty"`
	// CertNotAfter is when the certificate the report looked at expires: a lab host's
	// client certificate (check client-cert), the Pi's server certificate
	// (server-cert). Zero when the report names none.
	CertNotAfter time.Time `json:"cert_not_after,omitzero"`
}

// certChecks are the doctor checks whose details carry the host's own certificate's
// not_after: a lab host's, then the Pi's.
var certChecks = [2]string{"client-cert", "server-cert"}

// FailedCheck is one failing (or warning) doctor check, quoted as evidence.
type FailedCheck struct {
	ID      string `json:"id"`
	Summary string `json:"summary,omitempty"`
	Hint    string `json:"hint,omitempty"`
}

// readReport returns host's latest report, nil when it never sent one. The store
// writes reports atomically, so a report that cannot be read as one was put there by
// hand: it is reported as an error, and the caller goes on without it.
func readReport(dataDir, host string) (*Report, error) {
	data, err := os.ReadFile(filepath.Join(reportDir(dataDir), host+".json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("doctor report of %s: %w", host, err)
	}
	// Strings, not time.Time, so one odd field does not make the whole report unreadable.
	var doc struct {
		Status      string `json:"status"`
		GeneratedAt string `json:"generated_at"`
		ReceivedAt  string `json:"received_at"`
		Checks      []struct {
			ID      string `json:"id"`
			Status  string `json:"status"`
			Summary string `json:"summary"`
			Hint    string `json:"hint"`
			// Raw: only the certificate checks' are read, and an odd one there
			// costs only the certificate's expiry.
			Details json.RawMessage `json:"details"`
		} `json:"checks"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("doctor report of %s is not a doctor --json document: %w", host, err)
	}
	r := &Report{Status: doc.Status}
	r.GeneratedAt, _ = time.Parse(time.RFC3339Nano, doc.GeneratedAt)
	if r.ReceivedAt, err = time.Parse(time.RFC3339Nano, doc.ReceivedAt); err != nil {
		return nil, fmt.Errorf("doctor report of %s has no received_at (the receiver adds it): %q", host, doc.ReceivedAt)
	}
	for _, c := range doc.Checks {
		if c.ID == certChecks[0] || c.ID == certChecks[1] && r.CertNotAfter.IsZero() {
			if at := notAfter(c.Details); !at.IsZero() {
				r.CertNotAfter = at
			}
		}
		switch c.Status {
		case "fail":
			r.Failing = append(r.Failing, FailedCheck{ID: c.ID, Summary: c.Summary, Hint: c.Hint})
		case "warn":
			r.Warnings = append(r.Warnings, FailedCheck{ID: c.ID, Summary: c.Summary, Hint: c.Hint})
		}
	}
	return r, nil
}

// notAfter reads a certificate check's details.not_after; zero when it has none.
func notAfter(details json.RawMessage) time.Time {
	var d struct {
		NotAfter string `json:"not_after"`
	}
	if json.Unmarshal(details, &d) != nil {
		return time.Time{}
	}
	at, _ := time.Parse(time.RFC3339Nano, d.NotAfter)
	return at
}

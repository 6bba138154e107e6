package ca

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/cis490/cis490/internal/fsutil"
)

// How a certificate came to be: the "by" of its issued.jsonl line.
const (
	ByRenewal   = "renewal"   // the host proved itself with a valid certificate and its token
	ByBootstrap = "bootstrap" // the token alone, as serve.ca.bootstrap or cert allow-bootstrap allowed
	ByServer    = "server"    // the Pi's own server certificate
)

// Why a serial is revoked: the "reason" of its revoked.jsonl line.
const (
	ReasonRevoked = "revoked" // cert revoke, by the maintainer
	ReasonRenewed = "renewed" // replaced by a renewal, RenewalOverlap after it
)

// Issued is one line of issued.jsonl: a certificate the CA signed.
type Issued struct {
	TS        time.Time `json:"ts"`
	Serial    string    `json:"serial"`
	Host      string    `json:"host"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	By        string    `json:"by"`
	Remote    string    `json:"remote,omitempty"`
	Replaces  string    `json:"replaces,omitempty"` // the serial a renewal replaced
	Names     []string  `json:"names,omitempty"`    // a server certificate's DNS names and addresses
}

// Revocation is one line of revoked.jsonl. Serial "" revokes nothing but closes the
// host's bootstrap (a `cert revoke --host` of a host with no live certificate).
type Revocation struct {
	TS       time.Time `json:"ts"`
	Serial   string    `json:"serial,omitempty"`
	Host     string    `json:"host"`
	At       time.Time `json:"at"`                 // from when the serial is refused
	NotAfter time.Time `json:"not_after,omitzero"` // the certificate's: past it, the line no longer matters to a handshake
	Reason   string    `json:"reason"`
}

// Allowance is one line of allow-bootstrap.jsonl: the host may bootstrap once after TS.
type Allowance struct {
	TS   time.Time `json:"ts"`
	Host string    `json:"host"`
}

// Ledger is what the CA's files say: every certificate issued, every revocation and
// every bootstrap allowance, in file order.
type Ledger struct {
	Issued  []Issued
	Revoked []Revocation
	Allowed []Allowance
	// Skipped counts lines that did not decode (a torn last line, garbage).
	Skipped int
}

// ReadLedger reads the CA's files in dir. A missing file is an empty one.
func ReadLedger(dir string) (Ledger, error) {
	var l Ledger
	var n [3]int
	var err error
	if l.Issued, n[0], err = readLines[Issued](filepath.Join(dir, IssuedFile)); err != nil {
		return l, err
	}
	if l.Revoked, n[1], err = readLines[Revocation](filepath.Join(dir, RevokedFile)); err != nil {
		return l, err
	}
	if l.Allowed, n[2], err = readLines[Allowance](filepath.Join(dir, AllowFile)); err != nil {
		return l, err
	}
	l.Skipped = n[0] + n[1] + n[2]
	return l, nil
}

// RevokedAt is when serial is (or will be) revoked: the earliest of its lines.
func (l Ledger) RevokedAt(serial string) (time.Time, bool) {
	var at time.Time
	found := false
	for _, r := range l.Revoked {
		if r.Serial == serial && (!found || r.At.Before(at)) {
			at, found = r.At, true
		}
	}
	return at, found
}

// Live lists host's client certificates that are valid at now: not expired, not
// yet revoked.
func (l Ledger) Live(host string, now time.Time) []Issued {
	var out []Issued
	for _, is := range l.Issued {
		if is.Host != host || is.By == ByServer || !now.Before(is.NotAfter) || now.Before(is.NotBefore) {
			continue
		}
		if at, ok := l.RevokedAt(is.Serial); ok && !now.Before(at) {
			continue
		}
		out = append(out, is)
	}
	return out
}

// Find returns the issued line of serial.
func (l Ledger) Find(serial string) (Issued, bool) {
	for _, is := range l.Issued {
		if is.Serial == serial {
			return is, true
		}
	}
	return Issued{}, false
}

// Status says what an issued certificate is at now: "valid", "expired", "revoked",
// or "revoking" (a renewal's replaced certificate in its last hour).
func (l Ledger) Status(is Issued, now time.Time) string {
	if at, ok := l.RevokedAt(is.Serial); ok {
		if now.Before(at) {
			return "revoking"
		}
		return "revoked"
	}
	if !now.Before(is.NotAfter) {
		return "expired"
	}
	return "valid"
}

// appendLine appends v as one JSON line to the CA's file name and fsyncs it; the
// caller holds the CA's lock. A torn last line left by a crash is ended first, so the
// new line stays whole.
func (c *CA) appendLine(name string, v any) error {
	line, err := json.Marshal(v)
	if err != nil {
		return err
	}
	path := filepath.Join(c.dir, name)
	_, statErr := os.Stat(path)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	torn, err := fsutil.EndsTorn(f)
	if err != nil {
		f.Close()
		return err
	}
	if torn {
		line = append([]byte("\n"), line...)
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if name == RevokedFile && c.revoked != nil {
		c.revoked.changed()
	}
	if errors.Is(statErr, fs.ErrNotExist) {
		return fsutil.SyncDir(c.dir)
	}
	return nil
}

// readLines decodes a JSON-lines file, skipping (and counting) the lines that do not
// decode: a torn last line, a blank line, garbage. Unknown fields are ignored.
func readLines[T any](path string) ([]T, int, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	var out []T
	skipped := 0
	for line := range bytes.SplitSeq(raw, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var v T
		if json.Unmarshal(line, &v) != nil {
			skipped++
			continue
		}
		out = append(out, v)
	}
	return out, skipped, nil
}

// Hosts lists every host with a client certificate on record, sorted.
func (l Ledger) Hosts() []string {
	seen := map[string]bool{}
	var out []string
	for _, is := range l.Issued {
		if is.By != ByServer && !seen[is.Host] {
			seen[is.Host] = true
			out = append(out, is.Host)
		}
	}
	sort.Strings(out)
	return out
}

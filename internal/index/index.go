// Package index keeps the receiver's request index (SPEC §3.4): one JSON line per /v1
// request in <dir>/<YYYY-MM-DD>.jsonl, by the UTC day of the request. The receiver
// appends with a Writer; fleet health reads a time window back with ReadWindow, on every
// core; Read and Scan read in file order. All of them decode a line in decode.go.
package index

import (
	"path/filepath"
	"time"
)

// Entry is one index line. The JSON field names are the on-disk contract.
type Entry struct {
	TS      time.Time `json:"ts"`
	ID      string    `json:"id,omitempty"`
	Host    string    `json:"host"`
	Route   string    `json:"route"`
	Method  string    `json:"method"`
	Status  int       `json:"status"`
	Bytes   int64     `json:"bytes"`
	SHA256  string    `json:"sha256"`
	Commit  string    `json:"commit"`
	Stamped bool      `json:"stamped"`
	DurMS   float64   `json:"dur_ms"`
	Remote  string    `json:"remote"`
	Error   string    `json:"error"`
	// Unverified marks a request refused before anyone proved who sent it (401
	// without a client certificate): Host is only what it claimed.
	Unverified bool `json:"unverified,omitempty"`
}

// MaxLineBytes is the longest line a reader accepts (excluding the newline); the writer
// refuses to write a longer one, since no reader would see it.
const MaxLineBytes = 1 << 20

const dayLayout = "2006-01-02"

func dayOf(t time.Time) string { return t.UTC().Format(dayLayout) }

func dayPath(dir, day string) string { return filepath.Join(dir, day+".jsonl") }

package fleethealth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/gofrs/flock"
	"github.com/google/renameio/v2"

	"github.com/cis490/cis490/internal/fsutil"
)

const stateVersion = 1

// firedMemory is how long a firing line's dedup_key is remembered: long enough that a
// clock stepped back (a Pi without a real-time clock, booting) or a --now in the past
// cannot write a second firing line with a key already used.
const firedMemory = 48 * time.Hour

// State is fleet-health.json in the data folder: what was notified, per (host, symptom).
type State struct {
	Version int                   `json:"version"`
	Hosts   map[string]*HostState `json:"hosts"`
	// Fired maps the dedup_key of every firing line of the last firedMemory to its ts.
	Fired map[string]time.Time `json:"fired"`
}

// HostState is one tracked host.
type HostState struct {
	// FirstSeen is when fleet health first saw the host active; it dates report-stale
	// for a host that never sent a report, beyond the window the index is read over.
	FirstSeen time.Time `json:"first_seen"`
	// LastSeen is the host's latest request that got through: a roster host's silent
	// alert counts from it once the request has left the window.
	LastSeen time.Time `json:"last_seen,omitzero"`
	// RosterSince is the first check that found the host in the roster: a host that
	// never sent a request, with a token of unknown creation, is expected from then.
	RosterSince time.Time `json:"roster_since,omitzero"`
	// Receiver marks the Pi's own row: it is kept while a check does not gather the
	// receiver's facts (not on the Pi), rather than closed.
	Receiver bool `json:"receiver,omitempty"`
	// Alerts holds the open alerts by symptom; a closed one is deleted.
	Alerts map[string]*AlertState `json:"alerts,omitempty"`
	// Notified remembers, by symptom, the last firing and resolved lines beyond the
	// alert's life: a symptom that comes back waits for repeat_interval after the last
	// firing one, and is flapping when it comes back soon after a resolved one.
	Notified map[string]*Notified `json:"notified,omitempty"`
}

// Notified is when a (host, symptom) was last announced and last resolved.
type Notified struct {
	Firing   time.Time `json:"firing,omitzero"`
	Resolved time.Time `json:"resolved,omitzero"`
}

// AlertState is one open alert.
type AlertState struct {
	Since time.Time `json:"since"`
	// Announced is false while the firing line is held back because its dedup_key was
	// already used this hour (a symptom that cleared and came back).
	Announced    bool      `json:"announced"`
	LastNotified time.Time `json:"last_notified,omitzero"`
	Summary      string    `json:"summary"`
	// Flapping: it came back within repeat_interval of its last resolution.
	Flapping bool `json:"flapping,omitempty"`
}

func newState() *State {
	return &State{Version: stateVersion, Hosts: map[string]*HostState{}, Fired: map[string]time.Time{}}
}

// loadState reads the state; none yet is an empty state. A state that cannot be read,
// or that is not the document save writes (`{}`, `null`, no version, wrong types), is
// an error rather than a fresh start, which would announce every open alert again.
func loadState(path string) (*State, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return newState(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("fleet-health state %s cannot be read (%w): run fleet-health check as the receiver's user, as its unit does; if something else is at that path, remove it to start over (open alerts are then announced again)",
			path, err)
	}
	damaged := func(why error) error {
		return fmt.Errorf("fleet-health state %s is damaged (%v): fix it, or remove it to start over (open alerts are then announced again, never twice in one hour: alerts.jsonl is checked)",
			path, why)
	}
	// The version first: a newer cis490's document may not decode as this one's.
	var head struct {
		Version int `json:"version"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, damaged(err)
	}
	if head.Version == 0 {
		return nil, damaged(errors.New("no version: not a fleet-health state"))
	}
	if head.Version != stateVersion {
		return nil, fmt.Errorf("fleet-health state %s has version %d, this cis490 knows %d: run the cis490 that wrote it, or remove the file to start over",
			path, head.Version, stateVersion)
	}
	var st State
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, damaged(err)
	}
	if err := st.complete(); err != nil {
		return nil, damaged(err)
	}
	return &st, nil
}

// complete reports what save always writes and a loaded state lacks.
func (st *State) complete() error {
	if st.Hosts == nil {
		return errors.New(`no "hosts" object`)
	}
	if st.Fired == nil {
		return errors.New(`no "fired" object`)
	}
	var empty []string
	for host, hs := range st.Hosts {
		if hs == nil {
			empty = append(empty, host)
			continue
		}
		for sym, a := range hs.Alerts {
			if a == nil {
				empty = append(empty, host+"/"+sym)
			}
		}
		for sym, n := range hs.Notified {
			if n == nil {
				empty = append(empty, host+"/notified/"+sym)
			}
		}
	}
	if len(empty) > 0 {
		slices.Sort(empty)
		return fmt.Errorf("null entries for %s", strings.Join(empty, ", "))
	}
	return nil
}

// save replaces the state file atomically: a crash leaves the old state or the new.
func (st *State) save(path string) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := renameio.WriteFile(path, append(data, '\n'), 0o640); err != nil {
		return fmt.Errorf("save fleet-health state: %w", err)
	}
	// The rename itself must be durable: losing it to a power cut would bring back
	// the old state, and with it a second firing line for a key already used.
	return fsutil.SyncDir(filepath.Dir(path))
}

// lockTimeout bounds the wait for another check: one takes well under a second, so a
// longer wait means a hung run, and the next timer tick tries again.
const lockTimeout = time.Minute

// lock serialises checks on one data folder, so two never decide from the same state.
func lock(ctx context.Context, path string) (func(), error) {
	l := flock.New(path)
	ctx, cancel := context.WithTimeout(ctx, lockTimeout)
	defer cancel()
	ok, err := l.TryLockContext(ctx, 20*time.Millisecond)
	if err != nil || !ok {
		return nil, fmt.Errorf("lock %s: another fleet-health check has held it for over %v (%v): see whether one is hung", path, lockTimeout, err)
	}
	return func() { _ = l.Unlock() }, nil
}

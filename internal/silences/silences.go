// Package silences keeps the maintainer's silences (SPEC §5.1): "lab-07 is in
// maintenance until 18:00". While a silence matches a host's symptom, fleet health
// still evaluates and shows it, but notifies nothing.
//
// The file, data_dir/silences.jsonl, is append-only: one "add" line per silence and
// one "end" line when it is ended early. Nothing is ever removed, so the history of who
// silenced what, and why, stays; a silence past its end is listed as expired.
package silences

import (
	"cmp"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Silence is one silence as it was made.
type Silence struct {
	ID      string    `json:"id"`
	Host    string    `json:"host"`
	Symptom string    `json:"symptom,omitempty"` // "" matches every symptom of the host
	Start   time.Time `json:"start"`
	End     time.Time `json:"end"`
	Reason  string    `json:"reason"`
	By      string    `json:"by,omitempty"` // who made it (admin name, or "local")
	Created time.Time `json:"created"`
}

// States of a silence at a given time.
const (
	StateActive  = "active"  // silencing now
	StatePending = "pending" // starts later
	StateExpired = "expired" // its end has passed
	StateEnded   = "ended"   // ended early (unsilenced)
)

// View is a silence and its state at the time it was listed.
type View struct {
	Silence
	State string `json:"state"`
	// EndedAt is when it was ended early; zero unless it was.
	EndedAt time.Time `json:"ended_at,omitzero"`
}

// DefaultMax is the longest a silence may last when fleet_health.max_silence is not
// set: long enough for a week of maintenance, short enough that a forgotten silence
// does not hide a host for good.
const DefaultMax = 7 * 24 * time.Hour

var (
	// ErrInvalid marks a silence refused for what it says; the message says what to
	// change (a 400, or exit 2).
	ErrInvalid = errors.New("invalid silence")
	// ErrNotFound: no silence has that id.
	ErrNotFound = errors.New("no such silence")
	// ErrOver: the silence to end has already ended or expired; nothing was written.
	ErrOver = errors.New("the silence is already over")
)

// invalidError is a refusal whose message is meant for the person who asked.
type invalidError string

func (e invalidError) Error() string        { return string(e) }
func (e invalidError) Is(target error) bool { return target == ErrInvalid }

// Path is where the silences of the receiver with this data folder are kept.
func Path(dataDir string) string { return filepath.Join(dataDir, "silences.jsonl") }

// entry is a silence as the file says it is now.
type entry struct {
	Silence
	endedAt time.Time
}

// until is when the silence stops silencing: its end, or when it was ended early.
func (e *entry) until() time.Time {
	if !e.endedAt.IsZero() && e.endedAt.Before(e.End) {
		return e.endedAt
	}
	return e.End
}

// state is computed as of now, so that evaluating the fleet at another time (fleet
// health's --now) sees the silences that were on then.
func (e *entry) state(now time.Time) string {
	switch {
	case !e.endedAt.IsZero() && !now.Before(e.endedAt) && e.endedAt.Before(e.End):
		return StateEnded
	case !now.Before(e.End):
		return StateExpired
	case now.Before(e.Start):
		return StatePending
	}
	return StateActive
}

// Set is the silences of a file.
type Set struct {
	entries []*entry // in the file's order
	byID    map[string]*entry
	byHost  map[string][]*entry
}

func newSet() *Set {
	return &Set{byID: map[string]*entry{}, byHost: map[string][]*entry{}}
}

func (s *Set) add(e *entry) {
	s.entries = append(s.entries, e)
	s.byID[e.ID] = e
	s.byHost[e.Host] = append(s.byHost[e.Host], e)
}

// Match returns the silence active at now for host's symptom (a silence without a
// symptom matches every one) that ends last, so that a caller saying "silenced until"
// names the true end. Its End is when it stops silencing, which is earlier than
// the end it was made with when it was ended early.
func (s *Set) Match(host, symptom string, now time.Time) (Silence, bool) {
	var best *entry
	for _, e := range s.byHost[strings.ToLower(host)] {
		if (e.Symptom != "" && e.Symptom != symptom) || e.state(now) != StateActive {
			continue
		}
		if best == nil || e.until().After(best.until()) {
			best = e
		}
	}
	if best == nil {
		return Silence{}, false
	}
	m := best.Silence
	m.End = best.until()
	return m, true
}

// List returns every silence, the ones that matter now first: active ones by end,
// then pending ones by start, then the past ones, latest first.
func (s *Set) List(now time.Time) []View {
	views := make([]View, 0, len(s.entries))
	for _, e := range s.entries {
		v := View{Silence: e.Silence, State: e.state(now)}
		if v.State == StateEnded {
			v.EndedAt = e.endedAt
		}
		views = append(views, v)
	}
	rank := map[string]int{StateActive: 0, StatePending: 1, StateEnded: 2, StateExpired: 2}
	over := func(v View) time.Time {
		if v.State == StateEnded {
			return v.EndedAt
		}
		return v.End
	}
	slices.SortStableFunc(views, func(a, b View) int {
		if c := cmp.Compare(rank[a.State], rank[b.State]); c != 0 {
			return c
		}
		switch a.State {
		case StateActive:
			return a.End.Compare(b.End)
		case StatePending:
			return a.Start.Compare(b.Start)
		}
		return over(b).Compare(over(a))
	})
	return views
}

package alerts

import (
	"fmt"
	"strings"
	"time"

	"github.com/cis490/cis490/internal/config"
)

// Filter selects alert lines; zero fields match everything.
type Filter struct {
	Since   time.Time // lines with ts at or after Since
	Host    string
	Symptom string
	Status  string
}

// Match reports whether a passes every set field. Host, symptom and status compare
// case-insensitively: host names are lowercase on the wire, people type otherwise.
func (f Filter) Match(a Alert) bool {
	return (f.Since.IsZero() || !a.TS.Before(f.Since)) &&
		(f.Host == "" || strings.EqualFold(f.Host, a.Host)) &&
		(f.Symptom == "" || strings.EqualFold(f.Symptom, a.Symptom)) &&
		(f.Status == "" || strings.EqualFold(f.Status, a.Status))
}

// ParseSince reads a --since or ?since= value: an RFC 3339 time, or a duration back
// from now (2h, 90m, 3d).
func ParseSince(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	d, err := config.ParseDuration(s)
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("since %q: want an RFC 3339 time (2026-11-28T18:00:00Z) or a duration back from now (2h, 3d)", s)
	}
	return now.Add(-d), nil
}

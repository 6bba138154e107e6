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

// ParseSince reads a --since or ?since= value (ParseTime); empty is no bound.
func ParseSince(s string, now time.Time) (time.Time, error) {
	if strings.TrimSpace(s) == "" {
		return time.Time{}, nil
	}
	t, err := ParseTime(s, now)
	if err != nil {
		return time.Time{}, fmt.Errorf("since %w", err)
	}
	return t, nil
}

// ParseTime reads a time as the commands take one (alerts tail --since, fleet-health
// check --now): an RFC 3339 time, or a duration relative to now — "+1h" ahead, "-30m"
// back, and without a sign back too ("2h", "3d"), as --since has always read it.
func ParseTime(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	sign, rest := time.Duration(-1), s
	if r, ok := strings.CutPrefix(s, "+"); ok {
		sign, rest = 1, r
	} else if r, ok := strings.CutPrefix(s, "-"); ok {
		rest = r
	}
	d, err := config.ParseDuration(rest)
	if err != nil || d < 0 || rest == "" {
		return time.Time{}, fmt.Errorf("%q: want an RFC 3339 time (2026-11-28T18:00:00Z) or one relative to now (+1h ahead; -30m, 2h or 3d back)", s)
	}
	return now.Add(sign * d), nil
}

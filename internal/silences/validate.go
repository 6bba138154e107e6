package silences

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/cis490/cis490/internal/config"
	"github.com/cis490/cis490/internal/protocol"
)

// Bounds of the free text in a silence: it is shown in tables and alert lines, one
// line each.
const (
	MaxReason = 300 // characters
	maxBy     = 64
)

// check returns s as it is stored (host lowercased, times in UTC, Start now when
// unset, text trimmed) or an ErrInvalid error that says what to change.
func (s Silence) check(now time.Time, max time.Duration, symptoms []string) (Silence, error) {
	if s.Host == "" {
		return Silence{}, invalidError("a silence needs a host: the fleet name of the host to silence")
	}
	host, ok := protocol.NormalizeHost(s.Host)
	if !ok {
		return Silence{}, invalidError(fmt.Sprintf("host %q is not an RFC 1123 host name (ASCII letters, digits and hyphens, dot-separated): use the host's fleet name", s.Host))
	}
	s.Host = host
	s.Symptom = strings.ToLower(strings.TrimSpace(s.Symptom))
	if s.Symptom != "" && !slices.Contains(symptoms, s.Symptom) {
		known := "there is none to choose"
		if len(symptoms) > 0 {
			known = "use one of " + strings.Join(symptoms, ", ")
		}
		return Silence{}, invalidError(fmt.Sprintf("symptom %q is not one fleet health knows: %s, or none to silence every symptom of the host", s.Symptom, known))
	}
	if s.End.IsZero() {
		return Silence{}, invalidError("a silence needs an end: how long it lasts, or until when")
	}
	s.End = s.End.UTC()
	if !s.End.After(now) {
		return Silence{}, invalidError(fmt.Sprintf("end %s is not in the future (it is %s now): give a later end", stamp(s.End), stamp(now)))
	}
	if s.End.Sub(now) > max {
		return Silence{}, invalidError(fmt.Sprintf("end %s is %s away, more than the %s a silence may last (fleet_health.max_silence): end it sooner, and silence again then if need be",
			stamp(s.End), s.End.Sub(now).Round(time.Second), max))
	}
	if s.Start.IsZero() {
		s.Start = now
	}
	s.Start = s.Start.UTC()
	if s.Start.Before(now) {
		return Silence{}, invalidError(fmt.Sprintf("start %s is in the past: leave it out to start now", stamp(s.Start)))
	}
	if !s.End.After(s.Start) {
		return Silence{}, invalidError(fmt.Sprintf("the silence starts after it ends (%s, %s): give an end after its start", stamp(s.Start), stamp(s.End)))
	}
	s.Reason = strings.TrimSpace(s.Reason)
	if s.Reason == "" {
		return Silence{}, invalidError("a reason is required: say why (it is shown with every alert the silence holds back)")
	}
	if err := oneLine("reason", s.Reason, MaxReason); err != nil {
		return Silence{}, err
	}
	s.By = strings.TrimSpace(s.By)
	if err := oneLine("by", s.By, maxBy); err != nil {
		return Silence{}, err
	}
	s.Created = now.UTC()
	return s, nil
}

// oneLine refuses text that would break a table row or a terminal: control
// characters (newlines, escapes), invalid UTF-8, or more than max characters.
func oneLine(field, text string, max int) error {
	if !utf8.ValidString(text) {
		return invalidError(fmt.Sprintf("%s is not valid UTF-8", field))
	}
	if n := utf8.RuneCountInString(text); n > max {
		return invalidError(fmt.Sprintf("%s is %d characters, at most %d: keep it to one short line", field, n, max))
	}
	if strings.ContainsFunc(text, unicode.IsControl) {
		return invalidError(fmt.Sprintf("%s contains a control character (newline, tab, escape): keep it to one line of plain text", field))
	}
	return nil
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// Request is a silence as asked for: the body of POST /v1/silences, and what the
// alerts silence command makes of its flags. Its end is either a time or a duration
// from now; a duration is measured by the clock of whoever records the silence, so
// a laptop's clock being off does not shorten a silence made with --remote.
type Request struct {
	Host    string `json:"host"`
	Symptom string `json:"symptom,omitempty"`
	End     string `json:"end,omitempty"` // RFC 3339
	For     string `json:"for,omitempty"` // a duration: 4h, 90m, 2d
	Reason  string `json:"reason"`
}

// Silence turns the request into the silence to Add, ending at End or now + For.
func (r Request) Silence(now time.Time, by string) (Silence, error) {
	s := Silence{Host: r.Host, Symptom: r.Symptom, Reason: r.Reason, By: by}
	switch {
	case r.End != "" && r.For != "":
		return Silence{}, invalidError("give the silence's end as a time (end) or a duration (for), not both")
	case r.End != "":
		end, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(r.End))
		if err != nil {
			return Silence{}, invalidError(fmt.Sprintf("end %q is not an RFC 3339 time such as 2026-11-28T18:00:00Z", r.End))
		}
		s.End = end
	case r.For != "":
		d, err := config.ParseDuration(strings.TrimSpace(r.For))
		if err != nil || d <= 0 {
			return Silence{}, invalidError(fmt.Sprintf("for %q is not a duration such as 4h, 90m or 2d", r.For))
		}
		s.End = now.Add(d)
	default:
		return Silence{}, invalidError("a silence needs an end: a duration (for, such as 4h) or a time (end, RFC 3339)")
	}
	return s, nil
}

package fleethealth

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// The fleet table (SPEC §5.3): the rows of `fleet-health check`, GET /v1/fleet and
// `cis490 fleet`, worst first, and the line that sums them up.

// Fleet is the fleet as GET /v1/fleet answers it and `cis490 fleet --json` prints it.
type Fleet struct {
	GeneratedAt time.Time `json:"generated_at"`
	WindowFrom  time.Time `json:"window_from"`
	Summary     Summary   `json:"summary"`
	Hosts       []Row     `json:"hosts"`
	// Not tracked (Result says what they are).
	Unproven               []string           `json:"unproven_hosts,omitempty"`
	UnprovenCount          int                `json:"unproven_count,omitempty"`
	RefusedHandshakes      []RefusedHandshake `json:"refused_handshakes,omitempty"`
	RefusedHandshakesCount int                `json:"refused_handshakes_count,omitempty"`
	// StateError says why open_alerts are empty whatever the fleet's: fleet health's
	// alert state could not be read (which file, and what to do).
	StateError string `json:"state_error,omitempty"`
}

// Fleet is the table of res.
func (res *Result) Fleet() Fleet {
	return Fleet{
		GeneratedAt: res.Now, WindowFrom: res.WindowFrom, Summary: res.Summary, Hosts: res.Hosts,
		Unproven: res.Unproven, UnprovenCount: res.UnprovenCount,
		RefusedHandshakes: res.RefusedHandshakes, RefusedHandshakesCount: res.RefusedHandshakesCount,
		StateError: res.StateError,
	}
}

// Summary counts the rows by status, and what is not tracked.
type Summary struct {
	Hosts    int `json:"hosts"`
	OK       int `json:"ok"`
	Alerting int `json:"alerting"`
	// Critical are the alerting hosts with a critical symptom no silence holds back.
	Critical int `json:"critical"`
	Silenced int `json:"silenced"`
	Inactive int `json:"inactive"`
	// NotTracked are the names seen only in refused requests and the addresses of
	// refused handshakes that named no host: not rows, listed below the table.
	NotTracked int `json:"not_tracked"`
}

func summarize(res *Result) Summary {
	s := Summary{Hosts: len(res.Hosts), NotTracked: res.UnprovenCount + res.RefusedHandshakesCount}
	for _, r := range res.Hosts {
		switch r.Status {
		case HostOK:
			s.OK++
		case HostAlerting:
			s.Alerting++
			if r.WorstSeverity == Critical {
				s.Critical++
			}
		case HostSilenced:
			s.Silenced++
		case HostInactive:
			s.Inactive++
		}
	}
	return s
}

// String is the summary line: "42 hosts: 39 ok, 2 alerting, 1 silenced", with the
// inactive and the not tracked when there are any.
func (s Summary) String() string {
	parts := []string{fmt.Sprintf("%d ok", s.OK), fmt.Sprintf("%d alerting", s.Alerting), fmt.Sprintf("%d silenced", s.Silenced)}
	if s.Inactive > 0 {
		parts = append(parts, fmt.Sprintf("%d inactive", s.Inactive))
	}
	line := fmt.Sprintf("%d %s: %s", s.Hosts, plural(s.Hosts, "host", "hosts"), strings.Join(parts, ", "))
	if s.NotTracked > 0 {
		line += fmt.Sprintf("; %d not tracked", s.NotTracked)
	}
	return line
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// rank orders the rows worst first: alerting with a critical symptom, alerting with
// warnings only, silenced (someone already knows), inactive (a roster host that has
// not spoken yet, or one gone with alerts still open: neither is known to work), ok.
func rank(r Row) int {
	switch r.Status {
	case HostAlerting:
		if r.WorstSeverity == Critical {
			return 0
		}
		return 1
	case HostSilenced:
		return 2
	case HostInactive:
		return 3
	case HostOK:
		return 4
	}
	return 5
}

// sortRows puts rows worst first, ties by host name.
func sortRows(rows []Row) {
	slices.SortFunc(rows, func(a, b Row) int {
		return cmp.Or(cmp.Compare(rank(a), rank(b)), strings.Compare(a.Host, b.Host))
	})
}

// worst is the symptom a row leads with: one no silence holds back before a silenced
// one (that is what makes the host alerting), then critical before warning, then the
// order of Symptoms. Nil without findings.
func worst(findings []Finding) *Finding {
	var w *Finding
	for i := range findings {
		f := &findings[i]
		if w == nil || worse(f, w) {
			w = f
		}
	}
	return w
}

func worse(a, b *Finding) bool {
	if (a.Silence == nil) != (b.Silence == nil) {
		return a.Silence == nil
	}
	if a.Severity != b.Severity {
		return a.Severity == Critical
	}
	return symptomOrder(a.Symptom) < symptomOrder(b.Symptom)
}

// daysLeft is whole days from now until notAfter, rounded down: negative once expired,
// 0 on its last day. Nil when notAfter is unknown.
func daysLeft(notAfter, now time.Time) *int {
	if notAfter.IsZero() {
		return nil
	}
	d := int(math.Floor(notAfter.Sub(now).Hours() / 24))
	return &d
}

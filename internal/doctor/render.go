package doctor

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

var marks = map[Status]string{OK: "✓", Warn: "!", Fail: "✗", Skip: "-"}

// WriteHuman prints one line a check, the hint indented under each problem, and a
// closing summary line.
func WriteHuman(w io.Writer, r Report) error {
	width := 0
	for _, c := range r.Checks {
		width = max(width, len(c.ID))
	}
	var b strings.Builder
	for _, c := range r.Checks {
		fmt.Fprintf(&b, "%s %-*s  %s\n", marks[c.Status], width, c.ID, c.Summary)
		if c.Hint != "" && (c.Status == Warn || c.Status == Fail) {
			fmt.Fprintf(&b, "  %*s  → %s\n", width, "", c.Hint)
		}
	}
	fmt.Fprintf(&b, "\n%s: %s (%s)\n", r.Host, r.Status, tally(r))
	_, err := io.WriteString(w, b.String())
	return err
}

func tally(r Report) string {
	var parts []string
	for _, s := range []struct {
		status     Status
		one, other string
	}{{Fail, "failed", "failed"}, {Warn, "warning", "warnings"}, {OK, "ok", "ok"}, {Skip, "skipped", "skipped"}} {
		switch n := r.Count(s.status); n {
		case 0:
		case 1:
			parts = append(parts, "1 "+s.one)
		default:
			parts = append(parts, fmt.Sprintf("%d %s", n, s.other))
		}
	}
	return strings.Join(parts, ", ")
}

// WriteJSON prints the report as the cis490.doctor/v1 document.
func WriteJSON(w io.Writer, r Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // hints quote commands with < and >; keep them readable
	return enc.Encode(r)
}

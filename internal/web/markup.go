package web

import (
	"html/template"
	"strconv"
	"time"
)

// The fleet table's rows and the sparklines are written by Go, not by the template:
// html/template executes by reflection, and a row has some 40 values, which made the
// 300-host page take 10 ms p50 and 23 ms p99 (BenchmarkFleetPage300, measured) against
// the 20 ms budget of a Pi. htmlWriter keeps html/template's promise in another
// way: every string known only at run time goes through text, which escapes it; raw
// takes only markup, which a constant becomes without a visible conversion.

// markup is HTML written into this package's source.
type markup string

type htmlWriter struct{ b []byte }

func (w *htmlWriter) raw(m markup) { w.b = append(w.b, m...) }

// text writes s escaped for HTML text and for a double-quoted attribute, as
// html/template's own escaper does (& < > " ' and NUL).
func (w *htmlWriter) text(s string) {
	last := 0
	for i := 0; i < len(s); i++ {
		var esc string
		switch s[i] {
		case '&':
			esc = "&amp;"
		case '<':
			esc = "&lt;"
		case '>':
			esc = "&gt;"
		case '"':
			esc = "&#34;"
		case '\'':
			esc = "&#39;"
		case 0:
			esc = "\uFFFD"
		default:
			continue
		}
		w.b = append(w.b, s[last:i]...)
		w.b = append(w.b, esc...)
		last = i + 1
	}
	w.b = append(w.b, s[last:]...)
}

func (w *htmlWriter) int(n int) { w.b = strconv.AppendInt(w.b, int64(n), 10) }

// Times: digits and the layouts' own letters, nothing to escape.
func (w *htmlWriter) abs(t time.Time)      { w.b = t.UTC().AppendFormat(w.b, absLayout) }
func (w *htmlWriter) iso(t time.Time)      { w.b = t.UTC().AppendFormat(w.b, time.RFC3339) }
func (w *htmlWriter) rel(t, now time.Time) { w.b = appendRelative(w.b, t, now) }
func (w *htmlWriter) span(d time.Duration) { w.b = appendSpan(w.b, d) }

// html is what the writer wrote, for a template to insert as it is.
func (w *htmlWriter) html() template.HTML { return template.HTML(w.b) }

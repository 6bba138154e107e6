package web

import (
	"net/url"
	"time"

	"github.com/cis490/cis490/internal/fleethealth"
)

// certWarnDays: a certificate with fewer days left shows as a problem.
const certWarnDays = 7

// fleetRow writes host r's row of the fleet table (markup.go says why in Go).
func (w *htmlWriter) fleetRow(r *fleethealth.Row, now time.Time) {
	w.raw(`<tr data-host="`)
	w.text(r.Host)
	w.raw(`" data-status="`)
	w.text(r.Status)
	w.raw(`"><th scope="row"><a href="/hosts/`)
	w.text(url.PathEscape(r.Host))
	w.raw(`">`)
	w.text(r.Host)
	w.raw(`</a></th><td><span class="status status-`)
	w.text(r.Status)
	w.raw(`">`)
	w.text(r.Status)
	w.raw(`</span></td><td>`)
	if r.WorstSymptom != "" {
		w.text(r.WorstSymptom)
		if !r.WorstSince.IsZero() {
			w.raw(` <span title="since `)
			w.abs(r.WorstSince)
			w.raw(`">for `)
			w.span(max(0, now.Sub(r.WorstSince)))
			w.raw(`</span>`)
		}
	}
	w.raw(`</td><td>`)
	if r.LastSeen.IsZero() {
		w.raw(`never`)
	} else {
		w.raw(`<time datetime="`)
		w.iso(r.LastSeen)
		w.raw(`" title="`)
		w.abs(r.LastSeen)
		w.raw(`">`)
		w.rel(r.LastSeen, now)
		w.raw(`</time>`)
	}
	w.raw(`</td><td>`)
	w.titled(r.LastEpisode, now, "none")
	w.raw(`</td><td>`)
	if r.Commit == "" {
		w.raw(`unstamped`)
	} else {
		w.raw(`<code>`)
		w.text(shortCommit(r.Commit))
		w.raw(`</code> `)
		mark, text, class := allowed(r)
		w.raw(`<span class="`)
		w.text(class)
		w.raw(`">`)
		w.text(mark)
		w.raw(`<span class="vh"> `)
		w.text(text)
		w.raw(`</span></span>`)
	}
	w.raw(`</td><td>`)
	if r.Report == nil {
		w.raw(`none`)
	} else {
		w.text(r.Report.Status)
		if !r.Report.ReceivedAt.IsZero() {
			w.raw(`, `)
			w.span(max(0, now.Sub(r.Report.ReceivedAt)))
		}
	}
	switch {
	case r.CertDaysLeft == nil:
		w.raw(`</td><td>`)
	case *r.CertDaysLeft < 0:
		w.raw(`</td><td class="bad">expired`)
	case *r.CertDaysLeft < certWarnDays:
		w.raw(`</td><td class="bad">`)
		w.int(*r.CertDaysLeft)
	default:
		w.raw(`</td><td>`)
		w.int(*r.CertDaysLeft)
	}
	w.raw(`</td><td>`)
	w.int(len(r.OpenAlerts))
	w.raw(`</td><td>`)
	if r.Silence != nil {
		w.titled(r.Silence.Until, now, "")
	}
	w.raw(`</td><td>`)
	w.spark(r.Hourly)
	w.raw("</td></tr>\n")
}

// titled is t relative to now, absolute in its title; none when t is zero.
func (w *htmlWriter) titled(t, now time.Time, none markup) {
	if t.IsZero() {
		w.raw(none)
		return
	}
	w.raw(`<span title="`)
	w.abs(t)
	w.raw(`">`)
	w.rel(t, now)
	w.raw(`</span>`)
}

// allowed is the gate's answer for a row's commit as a mark, its words, and the
// mark's class: ✓ allowed, ✗ refused, ? unknown; nothing without a commit.
func allowed(r *fleethealth.Row) (mark, text, class string) {
	switch {
	case r.Commit == "":
		return "", "", ""
	case r.CommitAllowed == nil:
		return "?", "gate's answer unknown", "muted"
	case *r.CommitAllowed:
		return "✓", "allowed by the gate", "yes"
	}
	return "✗", "refused by the gate", "no"
}

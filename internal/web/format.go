package web

import (
	"fmt"
	"strconv"
	"time"
)

// The words the pages say times, sizes and ages with. A template gets these as
// ready strings: a view is built once per render in Go, so the templates call no
// function per row.

// when is a moment as a cell shows it: relative text, absolute UTC for the title,
// RFC 3339 for <time datetime>. The zero when is "never known".
type when struct {
	Rel, Abs, ISO string
}

const absLayout = "2006-01-02 15:04:05 UTC"

func at(t, now time.Time) when {
	if t.IsZero() {
		return when{}
	}
	u := t.UTC()
	return when{Rel: relative(t, now), Abs: u.Format(absLayout), ISO: u.Format(time.RFC3339)}
}

// lasting is a moment as the start of something still going on: "for 3 h".
func lasting(t, now time.Time) when {
	w := at(t, now)
	if w.ISO != "" {
		w.Rel = "for " + span(now.Sub(t))
	}
	return w
}

func relative(t, now time.Time) string { return string(appendRelative(nil, t, now)) }

// appendRelative is t seen from now: "3 h ago", "just now", "in 4 h".
func appendRelative(b []byte, t, now time.Time) []byte {
	d := now.Sub(t)
	switch {
	case d < -time.Minute:
		return appendSpan(append(b, "in "...), -d)
	case d < time.Minute:
		return append(b, "just now"...)
	}
	return append(appendSpan(b, d), " ago"...)
}

func span(d time.Duration) string { return string(appendSpan(nil, d)) }

// appendSpan is a duration in its largest unit, rounded down: "45 s", "12 min",
// "3 h", "5 d" (hours up to two days: "36 h" says more than "1 d").
func appendSpan(b []byte, d time.Duration) []byte {
	switch {
	case d < time.Minute:
		return append(strconv.AppendInt(b, int64(d/time.Second), 10), " s"...)
	case d < time.Hour:
		return append(strconv.AppendInt(b, int64(d/time.Minute), 10), " min"...)
	case d < 48*time.Hour:
		return append(strconv.AppendInt(b, int64(d/time.Hour), 10), " h"...)
	}
	return append(strconv.AppendInt(b, int64(d/(24*time.Hour)), 10), " d"...)
}

// uptime is a duration in its two largest units: "3 d 4 h", "4 h 12 min".
func uptime(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	days, hours, mins := int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour), int(d%time.Hour/time.Minute)
	switch {
	case days > 0:
		return fmt.Sprintf("%d d %d h", days, hours)
	case hours > 0:
		return fmt.Sprintf("%d h %d min", hours, mins)
	}
	return fmt.Sprintf("%d min", mins)
}

// size is a byte count in IEC units: "512 B", "3.2 GiB".
func size(n uint64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatUint(n, 10) + " B"
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func shortCommit(c string) string {
	if len(c) > 7 {
		return c[:7]
	}
	return c
}

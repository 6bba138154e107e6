package web

import (
	"html"
	"html/template"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/fleethealth"
)

// text escapes as html/template does, so a value written by Go and one written by a
// template read the same.
func FuzzTextEscapesLikeTemplates(f *testing.F) {
	for _, s := range []string{"", "lab-01", `<script>alert(1)</script>`, `a"b'c&d`, "\x00", "é✓"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var w htmlWriter
		w.text(s)
		got := string(w.b)
		assert.Equal(t, template.HTMLEscapeString(s), got)
		assert.NotContains(t, got, "<")
		assert.NotContains(t, got, `"`)
		if !strings.Contains(s, "\x00") {
			assert.Equal(t, s, html.UnescapeString(got))
		}
	})
}

// The Go-written rows escape what a Source says, whatever it says: a row's host,
// status, symptom, commit and report status.
func TestFleetRowEscapes(t *testing.T) {
	const evil = `<script>alert(1)</script>"'&`
	days := -2
	r := fleethealth.Row{Host: evil, Status: evil, WorstSymptom: evil, WorstSince: testNow.Add(-time.Hour), Commit: evil,
		Report: &fleethealth.Report{Status: evil}, CertDaysLeft: &days}
	var w htmlWriter
	w.fleetRow(&r, testNow)
	got := string(w.b)
	assert.NotContains(t, got, "<script")
	assert.NotContains(t, got, `"'&`)
	assert.Contains(t, got, `<tr data-host="&lt;script&gt;alert(1)&lt;/script&gt;&#34;&#39;&amp;" data-status="&lt;script&gt;`)
	assert.Contains(t, got, `<a href="/hosts/%3Cscript%3Ealert%281%29%3C%2Fscript%3E%22%27&amp;">`)
	assert.Contains(t, got, `<td class="bad">expired</td>`)
}

var strokeRE = regexp.MustCompile(`([Mm])(-?\d+) (-?\d+)v-(\d+)`)

// bar heights by x, read back from a path as a browser would draw it.
func strokes(t *testing.T, d string) map[int][2]int {
	t.Helper()
	out := map[int][2]int{}
	x, y := 0, 0
	for _, m := range strokeRE.FindAllStringSubmatch(d, -1) {
		dx, _ := strconv.Atoi(m[2])
		dy, _ := strconv.Atoi(m[3])
		h, _ := strconv.Atoi(m[4])
		if m[1] == "M" {
			x, y = dx, dy
		} else {
			x, y = x+dx, y+dy
		}
		out[x] = [2]int{y, h} // foot, height
		y -= h
	}
	require.Equal(t, len(strokeRE.FindAllString(d, -1)), len(out), "one stroke per bar")
	return out
}

var pathRE = regexp.MustCompile(`<path class="(\w+)" d="([^"]*)"/>`)

func TestSparkline(t *testing.T) {
	hours := make([]fleethealth.HourCounts, fleethealth.SparkHours)
	hours[0] = fleethealth.HourCounts{OK: 12}
	hours[5] = fleethealth.HourCounts{OK: 6}
	hours[23] = fleethealth.HourCounts{OK: 10, Refused: 1, Failed: 1}
	svg := string(sparkSVG(hours))
	assert.Contains(t, svg, `<svg class="spark" role="img" aria-label="requests in 24 h: 28 ok, 1 refused, 1 failed" viewBox="0 0 72 12">`)
	assert.Equal(t, 72, sparkStep*fleethealth.SparkHours, "the viewBox's width")
	paths := map[string]map[int][2]int{}
	for _, m := range pathRE.FindAllStringSubmatch(svg, -1) {
		paths[m[1]] = strokes(t, m[2])
	}
	// x = 3 h + 1; ok stands on the baseline, refused on ok, failed on refused.
	assert.Equal(t, map[int][2]int{1: {12, 12}, 16: {12, 6}, 70: {12, 10}}, paths["o"])
	assert.Equal(t, map[int][2]int{70: {2, 1}}, paths["r"])
	assert.Equal(t, map[int][2]int{70: {1, 1}}, paths["f"])

	assert.Equal(t, `<svg class="spark" role="img" aria-label="requests in 24 h: 0 ok, 0 refused, 0 failed" viewBox="0 0 72 12"><path class="base" d="M0 11.5h72"/></svg>`,
		string(sparkSVG(nil)), "no data yet: an empty sparkline")
}

func TestSparkBarsNeverOverflow(t *testing.T) {
	for _, h := range []fleethealth.HourCounts{{OK: 1000, Refused: 1, Failed: 1}, {OK: 1, Refused: 1, Failed: 1}, {Refused: 5}, {OK: 3, Failed: 9}} {
		for _, peak := range []int{h.OK + h.Refused + h.Failed, 2000} {
			b := bars(h, peak)
			assert.LessOrEqual(t, b[0]+b[1]+b[2], sparkHeight, "%+v of %d", h, peak)
			for i, n := range []int{h.OK, h.Refused, h.Failed} {
				assert.Equal(t, n > 0, b[i] > 0, "%+v of %d: an outcome that happened shows", h, peak)
			}
		}
	}
}

func TestWords(t *testing.T) {
	for d, want := range map[time.Duration]string{
		30 * time.Second: "just now", 5 * time.Minute: "5 min ago", 3*time.Hour + 59*time.Minute: "3 h ago",
		47 * time.Hour: "47 h ago", 50 * time.Hour: "2 d ago", -4 * time.Hour: "in 4 h", -30 * time.Second: "just now",
	} {
		assert.Equal(t, want, relative(testNow.Add(-d), testNow), "%s", d)
	}
	assert.Equal(t, "2 d 2 h", uptime(50*time.Hour))
	assert.Equal(t, "4 h 12 min", uptime(4*time.Hour+12*time.Minute))
	assert.Equal(t, "0 min", uptime(-time.Hour))
	assert.Equal(t, "512 B", size(512))
	assert.Equal(t, "1.5 KiB", size(1536))
	assert.Equal(t, "40.0 GiB", size(40<<30))
	assert.Equal(t, when{}, at(time.Time{}, testNow))
	assert.Equal(t, when{Rel: "for 2 h", Abs: "2026-11-28 16:00:00 UTC", ISO: "2026-11-28T16:00:00Z"}, lasting(testNow.Add(-2*time.Hour), testNow))
}

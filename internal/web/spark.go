package web

import (
	"html/template"

	"github.com/cis490/cis490/internal/fleethealth"
)

// A sparkline is a row's last 24 h of requests (Row.Hourly) as 24 stacked bars,
// ok at the bottom, then refused, then failed: an inline SVG drawn by CSS strokes
// (page.css .spark), one path per outcome, scaled to the row's busiest hour. A path
// is its bars as vertical strokes ("m3 8v-9": over to the next bar's foot, then up),
// which keeps a row's SVG near 300 bytes.
const (
	sparkHeight = 12 // viewBox units; each hour is sparkStep wide
	sparkStep   = 3
)

// sparkSVG is the sparkline as markup, for a template.
func sparkSVG(hours []fleethealth.HourCounts) template.HTML {
	var w htmlWriter
	w.spark(hours)
	return w.html()
}

func (w *htmlWriter) spark(hours []fleethealth.HourCounts) {
	var total fleethealth.HourCounts
	peak := 0
	for _, h := range hours {
		total.OK += h.OK
		total.Refused += h.Refused
		total.Failed += h.Failed
		peak = max(peak, h.OK+h.Refused+h.Failed)
	}
	w.raw(`<svg class="spark" role="img" aria-label="requests in 24 h: `)
	w.int(total.OK)
	w.raw(` ok, `)
	w.int(total.Refused)
	w.raw(` refused, `)
	w.int(total.Failed)
	w.raw(` failed" viewBox="0 0 72 12">`)
	if peak == 0 {
		w.raw(`<path class="base" d="M0 11.5h72"/></svg>`)
		return
	}
	hours = hours[:min(len(hours), fleethealth.SparkHours)]
	for outcome, class := range [3]markup{`<path class="o" d="`, `<path class="r" d="`, `<path class="f" d="`} {
		var p pen
		for i, h := range hours {
			heights := bars(h, peak)
			foot := sparkHeight
			for _, below := range heights[:outcome] {
				foot -= below
			}
			if heights[outcome] == 0 {
				continue
			}
			if !p.down {
				w.raw(class)
			}
			p.stroke(w, sparkStep*i+1, foot, heights[outcome])
		}
		if p.down {
			w.raw(`"/>`)
		}
	}
	w.raw(`</svg>`)
}

// pen draws vertical strokes, each from where the last one ended.
type pen struct {
	down bool
	x, y int
}

func (p *pen) stroke(w *htmlWriter, x, y, h int) {
	if !p.down {
		w.raw("M")
		w.int(x)
		w.raw(" ")
		w.int(y)
	} else {
		w.raw("m")
		w.int(x - p.x)
		w.raw(" ")
		w.int(y - p.y)
	}
	w.raw("v-")
	w.int(h)
	p.down, p.x, p.y = true, x, y-h
}

// bars are an hour's three heights (ok, refused, failed): each outcome that happened
// is at least one unit tall, so one refusal among many successes still shows, and
// together they never pass the box.
func bars(h fleethealth.HourCounts, peak int) [3]int {
	scale := func(n int) int {
		if n == 0 {
			return 0
		}
		return max(1, (n*sparkHeight+peak/2)/peak)
	}
	b := [3]int{scale(h.OK), scale(h.Refused), scale(h.Failed)}
	for b[0]+b[1]+b[2] > sparkHeight {
		i := 0
		if b[1] > b[i] {
			i = 1
		}
		if b[2] > b[i] {
			i = 2
		}
		b[i]--
	}
	return b
}

package web

import (
	"strconv"

	"github.com/cis490/cis490/internal/fleethealth"
)

// A sparkline is a row's last 24 h of requests (Row.Hourly) as 24 stacked bars,
// ok at the bottom, then refused, then failed: an inline SVG drawn by CSS strokes
// (page.css .spark), one path per outcome, scaled to the row's busiest hour. A path
// is a list of "M x y v-h" strokes, which keeps a row's SVG near 300 bytes.
const (
	sparkHeight = 12 // viewBox units; the box is 3 units per hour wide
	sparkStep   = 3
)

type sparkline struct {
	Label               string // the text alternative: the day's counts
	ViewBox             string
	OK, Refused, Failed string // path data; "" draws nothing
	Empty               bool   // no request at all: a baseline only
}

var sparkViewBox = "0 0 " + strconv.Itoa(sparkStep*fleethealth.SparkHours) + " " + strconv.Itoa(sparkHeight)

func spark(hours []fleethealth.HourCounts) sparkline {
	var total fleethealth.HourCounts
	peak := 0
	for _, h := range hours {
		total.OK += h.OK
		total.Refused += h.Refused
		total.Failed += h.Failed
		peak = max(peak, h.OK+h.Refused+h.Failed)
	}
	s := sparkline{
		Label: "requests in 24 h: " + strconv.Itoa(total.OK) + " ok, " + strconv.Itoa(total.Refused) + " refused, " +
			strconv.Itoa(total.Failed) + " failed",
		ViewBox: sparkViewBox,
	}
	if peak == 0 {
		s.Empty = true
		return s
	}
	var ok, refused, failed []byte
	for i, h := range hours {
		if i >= fleethealth.SparkHours {
			break
		}
		x := sparkStep*i + 1
		hOK, hRefused, hFailed := bars(h, peak)
		y := sparkHeight
		ok = stroke(ok, x, y, hOK)
		y -= hOK
		refused = stroke(refused, x, y, hRefused)
		y -= hRefused
		failed = stroke(failed, x, y, hFailed)
	}
	s.OK, s.Refused, s.Failed = string(ok), string(refused), string(failed)
	return s
}

// bars are an hour's three heights: each outcome that happened is at least one unit
// tall, so one refusal among many successes still shows, and together they never
// pass the box.
func bars(h fleethealth.HourCounts, peak int) (int, int, int) {
	scale := func(n int) int {
		if n == 0 {
			return 0
		}
		return max(1, (n*sparkHeight+peak/2)/peak)
	}
	o, r, f := scale(h.OK), scale(h.Refused), scale(h.Failed)
	for o+r+f > sparkHeight {
		switch {
		case o >= r && o >= f:
			o--
		case r >= f:
			r--
		default:
			f--
		}
	}
	return o, r, f
}

func stroke(path []byte, x, y, h int) []byte {
	if h == 0 {
		return path
	}
	path = append(path, 'M')
	path = strconv.AppendInt(path, int64(x), 10)
	path = append(path, ' ')
	path = strconv.AppendInt(path, int64(y), 10)
	path = append(path, 'v', '-')
	return strconv.AppendInt(path, int64(h), 10)
}

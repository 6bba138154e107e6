package alerts

import "time"

// resumeSlack is how far before the newest line printed a reconnect asks from: lines
// written while the stream was down with a ts a little in the past (fleet-health
// check --now -1m) still arrive. Those printed already are recognised and skipped.
const resumeSlack = 10 * time.Minute

// Printed remembers the lines a follower of GET /v1/alerts printed within resumeSlack
// of the newest: the ones a reconnect, which asks from ResumeFrom, is answered again.
type Printed struct {
	newest time.Time
	// floor is the oldest ts the first answer printed: a reconnect never asks from
	// before it, or the lines -n left out would come after all.
	floor     time.Time
	firstOver bool
	raw       map[string]time.Time
	limit     int // prune when raw grows past it
}

// FirstDone marks the end of the first answer.
func (p *Printed) FirstDone() { p.firstOver = true }

// NewPrinted remembers nothing yet.
func NewPrinted() *Printed { return &Printed{raw: map[string]time.Time{}, limit: 1024} }

// Add reports whether l is new, and remembers it.
func (p *Printed) Add(l Line) bool {
	if _, dup := p.raw[string(l.Raw)]; dup {
		return false
	}
	p.raw[string(l.Raw)] = l.Alert.TS
	if !p.firstOver && (p.floor.IsZero() || l.Alert.TS.Before(p.floor)) {
		p.floor = l.Alert.TS
	}
	if l.Alert.TS.After(p.newest) {
		p.newest = l.Alert.TS
	}
	if len(p.raw) > p.limit {
		p.prune()
		p.limit = max(1024, 2*len(p.raw))
	}
	return true
}

// ResumeFrom is the since of a reconnect; false before any line was printed.
func (p *Printed) ResumeFrom() (time.Time, bool) {
	if p.newest.IsZero() {
		return time.Time{}, false
	}
	p.prune()
	since := p.newest.Add(-resumeSlack)
	if p.floor.After(since) {
		since = p.floor
	}
	return since, true
}

func (p *Printed) prune() {
	from := p.newest.Add(-resumeSlack)
	for raw, ts := range p.raw {
		if ts.Before(from) {
			delete(p.raw, raw)
		}
	}
}

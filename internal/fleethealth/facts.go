package fleethealth

import (
	"slices"
	"time"

	"github.com/cis490/cis490/internal/index"
	"github.com/cis490/cis490/internal/protocol"
)

// Counts are a host's requests over the active window.
type Counts struct {
	Requests   int `json:"requests"`
	OK         int `json:"ok"`      // 2xx
	Refused    int `json:"refused"` // 4xx
	Failed     int `json:"failed"`  // 5xx
	Episodes   int `json:"episodes"`
	Heartbeats int `json:"heartbeats"`
	Reports    int `json:"reports"`
	// Unverified are refusals (401) that only claimed this host; also in Refused.
	Unverified int `json:"unverified"`
}

// refusal is a gated request answered 4xx.
type refusal struct {
	at     time.Time
	route  string
	status int
	commit string
	err    string
}

// hostFacts is what the index says about one host over the window. Index lines are
// not sorted by ts and are read in parallel chunks, so every field is an aggregate
// that does not depend on the order lines arrive in (max, min, sum, or a list sorted
// at the end): merging two halves gives what one pass would.
type hostFacts struct {
	host                string
	firstSeen, lastSeen time.Time
	lastRoute           string
	lastStatus          int
	commit              string // the latest stamped commit, any route
	commitAt            time.Time
	counts              Counts
	// verified: some line names this host because it proved who it is (a token or a
	// certificate), not merely because a refused request claimed it.
	verified bool

	// fatal-only: the latest 2xx gated request, and the gated 4xx ones (only those
	// after lastOK matter; the rest are pruned).
	lastOK   time.Time
	refusals []refusal

	// unstamped: the latest gated request and whether it was stamped; the latest
	// stamped one; the unstamped ones (only those after lastStamped matter).
	lastGated        time.Time
	lastGatedRoute   string
	lastGatedStamped bool
	lastStamped      time.Time
	unstamped        []time.Time
}

// isActivity tells the requests a lab host makes on its own from those that only read:
// `alerts tail --remote` from the maintainer's laptop sends X-Cis490-Host too, and
// must not turn the laptop into a fleet host that then goes silent.
func isActivity(e index.Entry) bool {
	switch e.Route {
	case routeEpisodes, routeHeartbeat:
		return true
	case routeHostHealth:
		return e.Method == "PUT"
	}
	return false
}

func isGated(e index.Entry) bool { return e.Route == routeEpisodes || e.Route == routeHeartbeat }

// factsSet maps host to facts.
type factsSet map[string]*hostFacts

func (fs factsSet) add(e index.Entry) {
	if !isActivity(e) {
		return
	}
	host, ok := protocol.NormalizeHost(e.Host)
	if !ok {
		return
	}
	f := fs[host]
	if f == nil {
		f = &hostFacts{host: host}
		fs[host] = f
	}
	f.add(e)
}

func (f *hostFacts) add(e index.Entry) {
	if e.Unverified {
		f.addUnverified(e)
		return
	}
	f.verified = true
	if f.firstSeen.IsZero() || e.TS.Before(f.firstSeen) {
		f.firstSeen = e.TS
	}
	if !e.TS.Before(f.lastSeen) {
		f.lastSeen, f.lastRoute, f.lastStatus = e.TS, e.Route, e.Status
	}
	if e.Stamped && e.Commit != "" && !e.TS.Before(f.commitAt) {
		f.commit, f.commitAt = e.Commit, e.TS
	}
	f.count(e)
	if !isGated(e) {
		return
	}
	switch {
	case e.Status >= 200 && e.Status < 300:
		if e.TS.After(f.lastOK) {
			f.lastOK = e.TS
		}
	case e.Status >= 400 && e.Status < 500:
		f.refusals = append(f.refusals, refusal{e.TS, e.Route, e.Status, e.Commit, e.Error})
	}
	// 5xx answers are the receiver's trouble (draining, disk full), neither the host's
	// success nor its refusal: they neither hide nor feed fatal-only.
	if !e.TS.Before(f.lastGated) {
		f.lastGated, f.lastGatedRoute, f.lastGatedStamped = e.TS, e.Route, e.Stamped
	}
	if e.Stamped {
		if e.TS.After(f.lastStamped) {
			f.lastStamped = e.TS
		}
	} else {
		f.unstamped = append(f.unstamped, e.TS)
	}
	if len(f.refusals)+len(f.unstamped) > 4096 {
		f.prune() // a long-refused host: keep memory bounded by what still matters
	}
}

// addUnverified takes a refusal that only claimed this host (a 401 without a client
// certificate: anyone who reaches the port can send one). It may add to fatal-only's
// refusals, for a host that also proved itself in the window (evaluateFleet drops the
// others), and nothing else: it cannot make a silent host look alive, nor a stamped
// one unstamped.
func (f *hostFacts) addUnverified(e index.Entry) {
	f.count(e)
	f.counts.Unverified++
	if isGated(e) && e.Status >= 400 && e.Status < 500 {
		f.refusals = append(f.refusals, refusal{e.TS, e.Route, e.Status, e.Commit, e.Error})
		if len(f.refusals)+len(f.unstamped) > 4096 {
			f.prune()
		}
	}
}

func (f *hostFacts) count(e index.Entry) {
	c := &f.counts
	c.Requests++
	switch {
	case e.Status >= 200 && e.Status < 300:
		c.OK++
		switch e.Route {
		case routeEpisodes:
			c.Episodes++
		case routeHeartbeat:
			c.Heartbeats++
		case routeHostHealth:
			c.Reports++
		}
	case e.Status >= 400 && e.Status < 500:
		c.Refused++
	case e.Status >= 500:
		c.Failed++
	}
}

// merge folds o, the same host's facts from another part of the index, into f.
func (f *hostFacts) merge(o *hostFacts) {
	f.verified = f.verified || o.verified
	if f.firstSeen.IsZero() || o.firstSeen.Before(f.firstSeen) {
		f.firstSeen = o.firstSeen
	}
	if !o.lastSeen.Before(f.lastSeen) {
		f.lastSeen, f.lastRoute, f.lastStatus = o.lastSeen, o.lastRoute, o.lastStatus
	}
	if o.commit != "" && !o.commitAt.Before(f.commitAt) {
		f.commit, f.commitAt = o.commit, o.commitAt
	}
	c, oc := &f.counts, o.counts
	c.Requests += oc.Requests
	c.OK += oc.OK
	c.Refused += oc.Refused
	c.Failed += oc.Failed
	c.Episodes += oc.Episodes
	c.Heartbeats += oc.Heartbeats
	c.Reports += oc.Reports
	c.Unverified += oc.Unverified
	if o.lastOK.After(f.lastOK) {
		f.lastOK = o.lastOK
	}
	f.refusals = append(f.refusals, o.refusals...)
	if !o.lastGated.IsZero() && !o.lastGated.Before(f.lastGated) {
		f.lastGated, f.lastGatedRoute, f.lastGatedStamped = o.lastGated, o.lastGatedRoute, o.lastGatedStamped
	}
	if o.lastStamped.After(f.lastStamped) {
		f.lastStamped = o.lastStamped
	}
	f.unstamped = append(f.unstamped, o.unstamped...)
}

// prune keeps the refusals after the last success and the unstamped requests after
// the last stamped one, sorted by time.
func (f *hostFacts) prune() {
	f.refusals = slices.DeleteFunc(f.refusals, func(r refusal) bool { return !r.at.After(f.lastOK) })
	slices.SortFunc(f.refusals, func(a, b refusal) int { return a.at.Compare(b.at) })
	f.unstamped = slices.DeleteFunc(f.unstamped, func(t time.Time) bool { return !t.After(f.lastStamped) })
	slices.SortFunc(f.unstamped, time.Time.Compare)
}

func (fs factsSet) merge(o factsSet) {
	for host, of := range o {
		if f := fs[host]; f != nil {
			f.merge(of)
		} else {
			fs[host] = of
		}
	}
}

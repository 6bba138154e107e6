package fleethealth

import (
	"net"
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
	// Handshakes are TLS handshakes refused for a certificate naming this host: not
	// requests, so in no other count.
	Handshakes int `json:"refused_handshakes"`
}

// refusal is a gated request answered 4xx.
type refusal struct {
	at     time.Time
	route  string
	status int
	commit string
	err    string
}

// handshake is a refused TLS handshake (an index line of route tls).
type handshake struct {
	at     time.Time
	reason string
	remote string
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
	// lastEpisode is the latest episode the receiver accepted (2xx).
	lastEpisode time.Time
	// The gate's latest verdict on the host's code: its latest stamped gated request
	// answered 2xx (let through) or 426 (refused). Other answers tell nothing of the
	// gate: a 401 was refused before it, a 5xx may come from either side.
	gateAt      time.Time
	gateCommit  string
	gateRefused bool
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

	// tls-refused: handshakes refused for a certificate naming this host (only those
	// after lastSeen, its last request that got through, matter).
	handshakes []handshake

	// hourly counts what counts counts, and the refused handshakes, by the hour up
	// to now, the evaluation time (Row.Hourly).
	now    time.Time
	hourly [SparkHours]HourCounts
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

// isNoCertificate is a request refused 401 for want of a client certificate: the
// receiver takes such a handshake (/healthz needs none, SPEC §3.1) and refuses the
// request, marking the host it claims unverified. It is read as the handshake refusal
// it used to be, reason no_certificate: tls-refused says what fixes it, and its
// refused heartbeats do not add fatal-only for the same cause.
const noCertificate = "no_certificate"

func isNoCertificate(e index.Entry) bool {
	return e.Unverified && e.Status == 401 && e.Error == noCertificate
}

func isGated(e index.Entry) bool { return e.Route == routeEpisodes || e.Route == routeHeartbeat }

// isResumeProbe is a HEAD /v1/episodes/{sha256}: ship asking where a cut upload
// stands (SPEC §3.3). None of its answers is an episode.
func isResumeProbe(e index.Entry) bool { return e.Route == routeEpisodes && e.Method == "HEAD" }

// answered is a request the receiver served: a 2xx, or a resume probe's 404 ("nothing
// of it here: start over"), which the gate let through like a 2xx and is no refusal.
func answered(e index.Entry) bool {
	return e.Status >= 200 && e.Status < 300 || e.Status == 404 && isResumeProbe(e)
}

// windowFacts is what the index says over the window: per host, and fleet-wide.
type windowFacts struct {
	now   time.Time // the evaluation time: the end of the window, and of Row.Hourly
	hosts map[string]*hostFacts
	// unnamed are refused TLS handshakes whose certificate named no host (or none was
	// presented), by remote address and reason.
	unnamed map[handshakeKey]*RefusedHandshake
	// last507 is the latest request answered 507: the receiver's disk was full.
	last507 time.Time
}

type handshakeKey struct{ remote, reason string }

// RefusedHandshake is a refused TLS handshake that no tracked host can be told from.
type RefusedHandshake struct {
	// Remote is the client's address, without the port (each connection has its own).
	Remote string    `json:"remote"`
	Reason string    `json:"reason"`
	Count  int       `json:"count"`
	Last   time.Time `json:"last"`
}

func newWindowFacts(now time.Time) *windowFacts {
	return &windowFacts{now: now, hosts: map[string]*hostFacts{}, unnamed: map[handshakeKey]*RefusedHandshake{}}
}

func (wf *windowFacts) add(e index.Entry) {
	if e.Status == 507 && e.TS.After(wf.last507) {
		wf.last507 = e.TS
	}
	if e.Route == routeTLS || isNoCertificate(e) {
		wf.addHandshake(e)
		return
	}
	if !isActivity(e) {
		return
	}
	host, ok := protocol.NormalizeHost(e.Host)
	if !ok {
		return
	}
	wf.host(host).add(e)
}

func (wf *windowFacts) host(host string) *hostFacts {
	f := wf.hosts[host]
	if f == nil {
		f = &hostFacts{host: host, now: wf.now}
		wf.hosts[host] = f
	}
	return f
}

// addHandshake takes a refused handshake. The name is only what the refused
// certificate says (anyone can make one that names any host), so, like an unverified
// refusal, it counts for a tracked host and never makes one up or keeps one alive.
func (wf *windowFacts) addHandshake(e index.Entry) {
	if host, ok := protocol.NormalizeHost(e.Host); ok {
		f := wf.host(host)
		f.counts.Handshakes++
		if h := f.hour(e.TS); h != nil {
			h.Refused++
		}
		f.handshakes = append(f.handshakes, handshake{e.TS, e.Error, e.Remote})
		if len(f.refusals)+len(f.unstamped)+len(f.handshakes) > 4096 {
			f.prune()
		}
		return
	}
	remote := e.Remote
	if h, _, err := net.SplitHostPort(remote); err == nil {
		remote = h
	}
	k := handshakeKey{remote, e.Error}
	r := wf.unnamed[k]
	if r == nil {
		r = &RefusedHandshake{Remote: remote, Reason: e.Error}
		wf.unnamed[k] = r
	}
	r.Count++
	if e.TS.After(r.Last) {
		r.Last = e.TS
	}
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
	case answered(e):
		if e.TS.After(f.lastOK) {
			f.lastOK = e.TS
		}
		if e.Route == routeEpisodes && !isResumeProbe(e) && e.TS.After(f.lastEpisode) {
			f.lastEpisode = e.TS
		}
	case e.Status >= 400 && e.Status < 500:
		f.refusals = append(f.refusals, refusal{e.TS, e.Route, e.Status, e.Commit, e.Error})
	}
	if e.Stamped && (e.Status == 426 || e.Status >= 200 && e.Status < 300) && !e.TS.Before(f.gateAt) {
		f.gateAt, f.gateCommit, f.gateRefused = e.TS, e.Commit, e.Status == 426
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
	if len(f.refusals)+len(f.unstamped)+len(f.handshakes) > 4096 {
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
	if isGated(e) && e.Status >= 400 && e.Status < 500 && !answered(e) {
		f.refusals = append(f.refusals, refusal{e.TS, e.Route, e.Status, e.Commit, e.Error})
		if len(f.refusals)+len(f.unstamped)+len(f.handshakes) > 4096 {
			f.prune()
		}
	}
}

func (f *hostFacts) count(e index.Entry) {
	c := &f.counts
	c.Requests++
	h := f.hour(e.TS)
	if h == nil {
		h = &HourCounts{} // outside Row.Hourly: counted nowhere
	}
	switch {
	case answered(e):
		c.OK++
		h.OK++
		switch {
		case isResumeProbe(e):
		case e.Route == routeEpisodes:
			c.Episodes++
		case e.Route == routeHeartbeat:
			c.Heartbeats++
		case e.Route == routeHostHealth:
			c.Reports++
		}
	case e.Status >= 400 && e.Status < 500:
		c.Refused++
		h.Refused++
	case e.Status >= 500:
		c.Failed++
		h.Failed++
	}
}

// hour is the hour of Row.Hourly that t falls in, nil outside them: the last of
// them is (now-1h, now], the first (now-24h, now-23h].
func (f *hostFacts) hour(t time.Time) *HourCounts {
	age := f.now.Sub(t)
	if age < 0 || age >= SparkHours*time.Hour {
		return nil
	}
	return &f.hourly[SparkHours-1-int(age/time.Hour)]
}

// hourlyRow is Row.Hourly: nil when the host has no request in those hours.
func (f *hostFacts) hourlyRow() []HourCounts {
	for _, h := range f.hourly {
		if h != (HourCounts{}) {
			return slices.Clone(f.hourly[:])
		}
	}
	return nil
}

// merge folds o, the same host's facts from another part of the index, into f.
func (f *hostFacts) merge(o *hostFacts) {
	f.verified = f.verified || o.verified
	// Facts of refused lines only (unverified, handshakes) have no firstSeen.
	if !o.firstSeen.IsZero() && (f.firstSeen.IsZero() || o.firstSeen.Before(f.firstSeen)) {
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
	c.Handshakes += oc.Handshakes
	for i, h := range o.hourly {
		f.hourly[i].OK += h.OK
		f.hourly[i].Refused += h.Refused
		f.hourly[i].Failed += h.Failed
	}
	if o.lastOK.After(f.lastOK) {
		f.lastOK = o.lastOK
	}
	if o.lastEpisode.After(f.lastEpisode) {
		f.lastEpisode = o.lastEpisode
	}
	if !o.gateAt.IsZero() && !o.gateAt.Before(f.gateAt) {
		f.gateAt, f.gateCommit, f.gateRefused = o.gateAt, o.gateCommit, o.gateRefused
	}
	f.refusals = append(f.refusals, o.refusals...)
	if !o.lastGated.IsZero() && !o.lastGated.Before(f.lastGated) {
		f.lastGated, f.lastGatedRoute, f.lastGatedStamped = o.lastGated, o.lastGatedRoute, o.lastGatedStamped
	}
	if o.lastStamped.After(f.lastStamped) {
		f.lastStamped = o.lastStamped
	}
	f.unstamped = append(f.unstamped, o.unstamped...)
	f.handshakes = append(f.handshakes, o.handshakes...)
}

// prune keeps the refusals after the last success, the unstamped requests after the
// last stamped one, and the refused handshakes after the last request that got
// through, sorted by time.
func (f *hostFacts) prune() {
	f.refusals = slices.DeleteFunc(f.refusals, func(r refusal) bool { return !r.at.After(f.lastOK) })
	slices.SortFunc(f.refusals, func(a, b refusal) int { return a.at.Compare(b.at) })
	f.unstamped = slices.DeleteFunc(f.unstamped, func(t time.Time) bool { return !t.After(f.lastStamped) })
	slices.SortFunc(f.unstamped, time.Time.Compare)
	f.handshakes = slices.DeleteFunc(f.handshakes, func(h handshake) bool { return !h.at.After(f.lastSeen) })
	slices.SortFunc(f.handshakes, func(a, b handshake) int { return a.at.Compare(b.at) })
}

func (wf *windowFacts) merge(o *windowFacts) {
	for host, of := range o.hosts {
		if f := wf.hosts[host]; f != nil {
			f.merge(of)
		} else {
			wf.hosts[host] = of
		}
	}
	for k, or := range o.unnamed {
		r := wf.unnamed[k]
		if r == nil {
			wf.unnamed[k] = or
			continue
		}
		r.Count += or.Count
		if or.Last.After(r.Last) {
			r.Last = or.Last
		}
	}
	if o.last507.After(wf.last507) {
		wf.last507 = o.last507
	}
}

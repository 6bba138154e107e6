package web

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cis490/cis490/internal/fleethealth"
	"github.com/cis490/cis490/internal/protocol"
)

// The fleet page, GET /: counts, the receiver's own state, one row per host worst
// first (Fleet's order), what is not tracked.

var statuses = []string{fleethealth.HostOK, fleethealth.HostAlerting, fleethealth.HostSilenced, fleethealth.HostInactive}

// filter is the query string's ?status=&q=.
type filter struct {
	Status, Q string
}

// On is whether the filter leaves any host out.
func (f filter) On() bool { return f.Status != "" || f.Q != "" }

func (f filter) keeps(r *fleethealth.Row) bool {
	return (f.Status == "" || r.Status == f.Status) && (f.Q == "" || strings.Contains(r.Host, f.Q))
}

// parseFilter refuses what no row could match by construction, saying what would.
func parseFilter(q url.Values) (filter, error) {
	f := filter{Status: strings.ToLower(strings.TrimSpace(q.Get("status"))), Q: strings.ToLower(strings.TrimSpace(q.Get("q")))}
	if f.Status != "" && !slices.Contains(statuses, f.Status) {
		return filter{}, fmt.Errorf("status %q is not a host status: use one of %s, or leave it out for every host", f.Status, strings.Join(statuses, ", "))
	}
	if len(f.Q) > protocol.MaxHostLength {
		return filter{}, fmt.Errorf("the name filter q is %d characters, longer than any host name (%d): shorten it", len(f.Q), protocol.MaxHostLength)
	}
	return f, nil
}

type fleetView struct {
	frame
	Counts     []count
	Recv       receiverView
	StateError string
	Filter     filter
	Options    []option
	// Shown is how many rows the filter keeps, of Total.
	Shown int
	Total int
	// NoMatch is set when a filter left no row (the fleet has some).
	NoMatch    bool
	Unproven   []string
	UnprovenN  int // beyond the listed ones
	Handshakes []handshakeView
	HandshakeN int
}

type count struct {
	Status string // the badge class; "" for none
	Label  string
	N      int
	Href   string
	Detail string // alerting: by symptom
}

type option struct {
	Value    string
	Label    string
	Selected bool
}

type receiverView struct {
	Free      string
	FreeLow   bool
	FreeErr   string
	MinFree   string
	Version   string
	Commit    string
	Uptime    string
	Started   when
	GateOpen  bool
	Gate      []gateView
	Generated when
}

type gateView struct {
	Name    string
	Loaded  bool
	LastOK  when
	Failing when
}

type handshakeView struct {
	Remote, Reason string
	Count          int
	Last           when
}

func (p *Pages) fleetPage(w http.ResponseWriter, r *http.Request) {
	v, ok := p.visit(w, r)
	if !ok {
		return
	}
	f, err := parseFilter(r.URL.Query())
	if err != nil {
		p.fail(w, r, v, http.StatusBadRequest, "Bad filter", err.Error())
		return
	}
	fl, err := p.src.Fleet()
	if err != nil {
		p.logger(r).Error().Err(err).Msg("fleet page: the fleet could not be evaluated")
		p.fail(w, r, v, http.StatusServiceUnavailable, "Fleet unavailable",
			"The fleet could not be evaluated: "+err.Error()+". The receiver's log says more; try again in a minute.")
		return
	}
	now := p.now()
	p.render(w, r, http.StatusOK, p.fleetT, p.fleetView(v, &fl, f, now), func(hw *htmlWriter) {
		for i := range fl.Hosts {
			if f.keeps(&fl.Hosts[i]) {
				hw.fleetRow(&fl.Hosts[i], now)
			}
		}
	})
}

func (p *Pages) fleetView(v *visitor, fl *fleethealth.Fleet, f filter, now time.Time) fleetView {
	fv := fleetView{frame: p.frame(v, "Fleet"), Filter: f, Total: len(fl.Hosts), StateError: fl.StateError}
	fv.Refresh = true
	fv.Recv = receiverState(v.recv, fl, now)
	fv.Counts = counts(fl)
	fv.Options = []option{{Value: "", Label: "any", Selected: f.Status == ""}}
	for _, s := range statuses {
		fv.Options = append(fv.Options, option{Value: s, Label: s, Selected: f.Status == s})
	}
	for i := range fl.Hosts {
		if f.keeps(&fl.Hosts[i]) {
			fv.Shown++
		}
	}
	fv.NoMatch = f.On() && fv.Shown == 0 && len(fl.Hosts) > 0
	fv.Unproven, fv.UnprovenN = fl.Unproven, max(0, fl.UnprovenCount-len(fl.Unproven))
	for _, h := range fl.RefusedHandshakes {
		fv.Handshakes = append(fv.Handshakes, handshakeView{Remote: h.Remote, Reason: h.Reason, Count: h.Count, Last: at(h.Last, now)})
	}
	fv.HandshakeN = max(0, fl.RefusedHandshakesCount-len(fl.RefusedHandshakes))
	return fv
}

func counts(fl *fleethealth.Fleet) []count {
	n := map[string]int{}
	bySymptom := map[string]int{}
	for i := range fl.Hosts {
		r := &fl.Hosts[i]
		n[r.Status]++
		if r.Status == fleethealth.HostAlerting && r.WorstSymptom != "" {
			bySymptom[r.WorstSymptom]++
		}
	}
	var detail []string
	for _, s := range fleethealth.Symptoms {
		if bySymptom[s] > 0 {
			detail = append(detail, strconv.Itoa(bySymptom[s])+" "+s)
		}
	}
	out := make([]count, 0, len(statuses)+1)
	for _, s := range statuses {
		c := count{Status: s, Label: s, N: n[s], Href: "/?status=" + s}
		if s == fleethealth.HostAlerting {
			c.Detail = strings.Join(detail, ", ")
		}
		out = append(out, c)
	}
	nt := fl.UnprovenCount + fl.RefusedHandshakesCount
	return append(out, count{Label: "not tracked", N: nt, Href: "#not-tracked"})
}

func receiverState(rs Receiver, fl *fleethealth.Fleet, now time.Time) receiverView {
	rv := receiverView{Version: rs.Version, Commit: shortCommit(rs.Commit), MinFree: size(rs.MinFreeBytes),
		GateOpen: len(rs.Gate) == 0, Generated: at(fl.GeneratedAt, now)}
	if !rs.Started.IsZero() {
		rv.Uptime, rv.Started = uptime(now.Sub(rs.Started)), at(rs.Started, now)
	}
	if rs.FreeErr != nil {
		rv.FreeErr = rs.FreeErr.Error()
	} else {
		rv.Free, rv.FreeLow = size(rs.FreeBytes), rs.FreeBytes < 2*rs.MinFreeBytes
	}
	for _, g := range rs.Gate {
		rv.Gate = append(rv.Gate, gateView{Name: g.Name, Loaded: g.Loaded, LastOK: at(g.LastOK, now), Failing: lasting(g.FailingSince, now)})
	}
	return rv
}

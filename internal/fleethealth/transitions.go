package fleethealth

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/cis490/cis490/internal/alerts"
)

// evaluation is one tracked host as of now.
type evaluation struct {
	// facts are the window's lines that name the host; nil when none does.
	facts    *hostFacts
	report   *Report
	findings []Finding
	// active: a request of the host's got through within the window.
	active bool
	// lastSeen is the host's latest request that got through, from the window or,
	// beyond it, from the state.
	lastSeen time.Time
	// rosterSince is when a quiet roster host was first expected (the state's, or now).
	rosterSince time.Time
	// receiver marks the Pi's own row.
	receiver bool
	// judged lists the symptoms this evaluation could tell at all, nil meaning every
	// one: one it could not judge has not cleared.
	judged []string
	// repeat, when set, spaces the repeats of its alerts instead of repeat_interval.
	repeat time.Duration
}

func (ev *evaluation) judges(sym string) bool {
	return ev.judged == nil || slices.Contains(ev.judged, sym)
}

// silenced reports whether a silence holds sym back; a host not evaluated has none.
func (ev *evaluation) silenced(sym string) bool {
	if ev == nil {
		return false
	}
	for _, f := range ev.findings {
		if f.Symptom == sym {
			return f.Silence != nil
		}
	}
	return false
}

// policy is how step treats what it finds.
type policy struct {
	repeat time.Duration
	// roster: a tokens file says who is expected, so a tracked host missing from the
	// evaluation left it (its token was revoked): retired, not expired.
	roster bool
}

// step moves the alert state on by one evaluation and returns the lines to write, by
// host name, then in symptom order. Per (host, symptom):
//   - a symptom that starts fires;
//   - one that lasts fires again no sooner than repeat after the last notification
//     (a gone roster host's silent: its finding's own, longer, repeat);
//   - one that clears writes resolved once;
//   - a host no longer tracked (not in evals) closes its open alerts, expired (open
//     mode: quiet for longer than the active window) or retired (its token was
//     revoked), and is forgotten until it is tracked again.
//
// No firing line reuses a dedup_key (host/symptom/UTC hour), and no two firing lines
// of a (host, symptom) come within repeat of each other: a firing that would is held
// back, open but not announced, and goes out at the first run allowed. A symptom that
// comes back within repeat of its resolution is flapping. A silenced one is held back
// while its silence lasts; its resolution is still written, if it was announced.
func (st *State) step(evals map[string]*evaluation, now time.Time, p policy) []alerts.Alert {
	var lines []alerts.Alert
	hosts := slices.Sorted(maps.Keys(st.Hosts))
	receiverSeen := false
	for host, ev := range evals {
		receiverSeen = receiverSeen || ev.receiver
		if st.Hosts[host] == nil {
			hosts = append(hosts, host)
		}
	}
	slices.Sort(hosts)
	for _, host := range hosts {
		ev := evals[host]
		hs := st.Hosts[host]
		if ev == nil {
			if hs.Receiver && !receiverSeen {
				continue // the receiver's facts were not gathered: nothing is known of it
			}
			lines = append(lines, forget(host, hs, now, p.roster)...)
			delete(st.Hosts, host)
			continue
		}
		if hs == nil {
			hs = &HostState{}
			st.Hosts[host] = hs
		}
		hs.note(ev)
		found := map[string]Finding{}
		for _, f := range ev.findings {
			found[f.Symptom] = f
		}
		for _, sym := range Symptoms {
			f, present := found[sym]
			a := hs.Alerts[sym]
			switch {
			case present && a == nil:
				a = &AlertState{Since: f.Since, Flapping: hs.resolvedWithin(sym, now, p.repeat)}
				hs.Alerts[sym] = a
				lines = st.fire(lines, host, hs, a, f, now, p.repeat)
			case present && (!a.Announced || now.Sub(a.LastNotified) >= cmp.Or(f.repeat, p.repeat)):
				lines = st.fire(lines, host, hs, a, f, now, p.repeat)
			case present:
				a.Summary = f.Summary
			case a != nil:
				if a.Announced && ev.judges(sym) {
					lines = append(lines, closing(host, sym, a, alerts.StatusResolved, now,
						fmt.Sprintf("%s is no longer %s", host, describe(sym))))
					hs.notified(sym).Resolved = now
				} else if a.Announced {
					lines = append(lines, closing(host, sym, a, alerts.StatusExpired, now,
						fmt.Sprintf("%s has sent nothing for longer than the active window: its %s alert closes unresolved; it is judged again once the host sends a request", host, sym)))
				}
				delete(hs.Alerts, sym)
			}
		}
		for sym, n := range hs.Notified {
			last := n.Firing
			if n.Resolved.After(last) {
				last = n.Resolved
			}
			if now.Sub(last) > max(firedMemory, p.repeat) {
				delete(hs.Notified, sym)
			}
		}
	}
	for key, at := range st.Fired {
		if now.Sub(at) > firedMemory {
			delete(st.Fired, key)
		}
	}
	return lines
}

// note keeps what the state must remember of an evaluation beyond the window.
func (hs *HostState) note(ev *evaluation) {
	if ev.active {
		hs.FirstSeen = ev.facts.firstSeen // the earlier of the state's and the index's
	}
	if ev.lastSeen.After(hs.LastSeen) {
		hs.LastSeen = ev.lastSeen
	}
	if hs.RosterSince.IsZero() {
		hs.RosterSince = ev.rosterSince
	}
	hs.Receiver = ev.receiver
	if hs.Alerts == nil {
		hs.Alerts = map[string]*AlertState{}
	}
}

// forget closes the announced alerts of a host no longer tracked.
func forget(host string, hs *HostState, now time.Time, roster bool) []alerts.Alert {
	var lines []alerts.Alert
	for _, sym := range Symptoms {
		a := hs.Alerts[sym]
		switch {
		case a == nil || !a.Announced:
		case roster:
			lines = append(lines, closing(host, sym, a, alerts.StatusRetired, now,
				fmt.Sprintf("%s has no host token any more (revoked): its %s alert closes; it is tracked again once it has one", host, sym)))
		default:
			lines = append(lines, closing(host, sym, a, alerts.StatusExpired, now,
				fmt.Sprintf("%s has sent nothing for longer than the active window: its %s alert closes unresolved; it is tracked again once it sends a request", host, sym)))
		}
	}
	return lines
}

func (hs *HostState) notified(sym string) *Notified {
	if hs.Notified == nil {
		hs.Notified = map[string]*Notified{}
	}
	n := hs.Notified[sym]
	if n == nil {
		n = &Notified{}
		hs.Notified[sym] = n
	}
	return n
}

// lastNotified reads Notified without adding to it.
func (hs *HostState) lastNotified(sym string) Notified {
	if n := hs.Notified[sym]; n != nil {
		return *n
	}
	return Notified{}
}

// resolvedWithin: sym was resolved less than d before now.
func (hs *HostState) resolvedWithin(sym string, now time.Time, d time.Duration) bool {
	r := hs.lastNotified(sym).Resolved
	return !r.IsZero() && !r.After(now) && now.Sub(r) < d
}

// recentFrom is how far back alerts.jsonl is read before a step: to the start of this
// hour, after which every firing line with this hour's dedup_key comes, or repeat back
// when longer (the longest repeat: gone_repeat_interval), so that a repeat counts from
// the last notification even when the state was lost.
func recentFrom(now time.Time, repeat time.Duration) time.Time {
	from := now.Truncate(time.Hour)
	if back := now.Add(-repeat); back.Before(from) {
		return back
	}
	return from
}

// adopt brings the state up to what the recent lines of alerts.jsonl say, so that the
// file itself keeps the guarantees: the state may be older than the file (a crash
// between the append and the save) or gone (removed to start over). Every firing
// line's dedup_key counts as used. As of now, an alert whose latest line is a firing
// one is open and was notified then (unless the state holds a later episode of it),
// and one whose latest line closed it is closed.
func (st *State) adopt(recent []alerts.Alert, now time.Time) {
	type alertKey struct{ host, symptom string }
	latest := map[alertKey]alerts.Alert{}
	for _, l := range recent {
		if l.Status == alerts.StatusFiring && l.TS.After(st.Fired[l.DedupKey]) {
			st.Fired[l.DedupKey] = l.TS
		}
		// Lines of a symptom this cis490 does not know would be state step never closes.
		if !l.TS.After(now) && slices.Contains(Symptoms, l.Symptom) {
			latest[alertKey{l.Host, l.Symptom}] = l
			st.adoptNotified(l)
		}
	}
	for k, l := range latest {
		hs := st.Hosts[k.host]
		var a *AlertState
		if hs != nil {
			a = hs.Alerts[k.symptom]
		}
		switch {
		case l.Status != alerts.StatusFiring:
			if a != nil && a.Since.Equal(l.Since) {
				delete(hs.Alerts, k.symptom)
			}
		case a == nil:
			hs = st.host(k.host)
			if hs.Alerts == nil {
				hs.Alerts = map[string]*AlertState{}
			}
			hs.Alerts[k.symptom] = &AlertState{Since: l.Since, Announced: true, LastNotified: l.TS, Summary: l.Summary, Flapping: l.Flapping}
		case a.Since.Equal(l.Since) && a.LastNotified.Before(l.TS):
			a.Announced, a.LastNotified = true, l.TS
		}
	}
}

// adoptNotified keeps the latest firing and resolved lines of a (host, symptom): the
// interval between two firing lines, and flapping, count from the file's.
func (st *State) adoptNotified(l alerts.Alert) {
	if l.Status != alerts.StatusFiring && l.Status != alerts.StatusResolved {
		return
	}
	n := st.host(l.Host).notified(l.Symptom)
	if l.Status == alerts.StatusFiring && l.TS.After(n.Firing) {
		n.Firing = l.TS
	}
	if l.Status == alerts.StatusResolved && l.TS.After(n.Resolved) {
		n.Resolved = l.TS
	}
}

func (st *State) host(name string) *HostState {
	hs := st.Hosts[name]
	if hs == nil {
		hs = &HostState{}
		st.Hosts[name] = hs
	}
	return hs
}

// fire writes a firing line for an open alert unless a silence holds it back, it is a
// new episode within repeat of the last firing line, or its dedup_key was used
// already. The line's since is the alert's: a lasting symptom keeps the time it
// started.
func (st *State) fire(lines []alerts.Alert, host string, hs *HostState, a *AlertState, f Finding, now time.Time, repeat time.Duration) []alerts.Alert {
	a.Summary = f.Summary
	if f.Silence != nil {
		return lines
	}
	if last := hs.lastNotified(f.Symptom).Firing; !a.Announced && !last.After(now) && now.Sub(last) < repeat {
		return lines
	}
	key := alerts.DedupKey(host, f.Symptom, now)
	if _, used := st.Fired[key]; used {
		return lines
	}
	st.Fired[key] = now
	a.Announced, a.LastNotified = true, now
	hs.notified(f.Symptom).Firing = now
	return append(lines, alerts.Alert{
		TS: now, Host: host, Symptom: f.Symptom, Severity: Severity(f.Symptom), Status: alerts.StatusFiring,
		DedupKey: key, Since: a.Since, Summary: f.Summary, Evidence: mustJSON(f.Evidence), Flapping: a.Flapping,
	})
}

func closing(host, sym string, a *AlertState, status string, now time.Time, summary string) alerts.Alert {
	return alerts.Alert{
		TS: now, Host: host, Symptom: sym, Severity: Severity(sym), Status: status,
		DedupKey: alerts.DedupKey(host, sym, now), Since: a.Since, Summary: summary,
		Evidence: mustJSON(map[string]any{"was": a.Summary, "open_for": human(now.Sub(a.Since))}),
	}
}

func describe(sym string) string {
	switch sym {
	case Silent:
		return "silent: it sends requests again"
	case FatalOnly:
		return "refused: a request of its succeeded, or it stopped trying"
	case TLSRefused:
		return "refused at the TLS handshake: a request of its got through"
	case Unstamped:
		return "unstamped: its requests carry a commit again, or it stopped sending"
	case ReportFailing:
		return "failing its doctor checks"
	case ReportWarning:
		return "warned of by its doctor report"
	case ReportStale:
		return "overdue with its doctor report"
	}
	return sym
}

// mustJSON encodes evidence: maps of times, strings and numbers always encode.
func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("encode evidence: %v", err))
	}
	return b
}

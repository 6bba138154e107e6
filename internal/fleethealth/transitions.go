package fleethealth

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/cis490/cis490/internal/alerts"
)

// evaluation is one tracked host as of now.
type evaluation struct {
	facts    *hostFacts
	report   *Report
	findings []Finding
}

// step moves the alert state on by one evaluation and returns the lines to write, by
// host name, then in symptom order. Per (host, symptom):
//   - a symptom that starts fires;
//   - one that lasts fires again no sooner than repeat after the last notification;
//   - one that clears writes resolved once;
//   - a host no longer active (not in evals) closes its open alerts as expired and is
//     forgotten until it sends a request again.
//
// No firing line reuses a dedup_key (host/symptom/UTC hour): a firing that would is
// held back, open but not announced, and goes out at the first run of a later hour.
func (st *State) step(evals map[string]*evaluation, now time.Time, repeat time.Duration) []alerts.Alert {
	var lines []alerts.Alert
	hosts := slices.Sorted(maps.Keys(st.Hosts))
	for host := range evals {
		if st.Hosts[host] == nil {
			hosts = append(hosts, host)
		}
	}
	slices.Sort(hosts)
	for _, host := range hosts {
		ev := evals[host]
		hs := st.Hosts[host]
		if ev == nil {
			for _, sym := range Symptoms {
				if a := hs.Alerts[sym]; a != nil && a.Announced {
					lines = append(lines, closing(host, sym, a, alerts.StatusExpired, now,
						fmt.Sprintf("%s has sent nothing for longer than the active window: its %s alert closes unresolved; it is tracked again once it sends a request", host, sym)))
				}
			}
			delete(st.Hosts, host)
			continue
		}
		if hs == nil {
			hs = &HostState{}
			st.Hosts[host] = hs
		}
		hs.FirstSeen = ev.facts.firstSeen // the earlier of the state's and the index's
		if hs.Alerts == nil {
			hs.Alerts = map[string]*AlertState{}
		}
		found := map[string]Finding{}
		for _, f := range ev.findings {
			found[f.Symptom] = f
		}
		for _, sym := range Symptoms {
			f, present := found[sym]
			a := hs.Alerts[sym]
			switch {
			case present && a == nil:
				a = &AlertState{Since: f.Since}
				hs.Alerts[sym] = a
				lines = st.fire(lines, host, a, f, now)
			case present && (!a.Announced || now.Sub(a.LastNotified) >= repeat):
				lines = st.fire(lines, host, a, f, now)
			case present:
				a.Summary = f.Summary
			case a != nil:
				if a.Announced {
					lines = append(lines, closing(host, sym, a, alerts.StatusResolved, now,
						fmt.Sprintf("%s is no longer %s", host, describe(sym))))
				}
				delete(hs.Alerts, sym)
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

// recentFrom is how far back alerts.jsonl is read before a step: to the start of this
// hour, after which every firing line with this hour's dedup_key comes, or repeat back
// when longer, so that a repeat counts from the last notification even when the state
// was lost.
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
			if hs == nil {
				hs = &HostState{}
				st.Hosts[k.host] = hs
			}
			if hs.Alerts == nil {
				hs.Alerts = map[string]*AlertState{}
			}
			hs.Alerts[k.symptom] = &AlertState{Since: l.Since, Announced: true, LastNotified: l.TS, Summary: l.Summary}
		case a.Since.Equal(l.Since) && a.LastNotified.Before(l.TS):
			a.Announced, a.LastNotified = true, l.TS
		}
	}
}

// fire writes a firing line for an open alert unless its dedup_key was used already.
// The line's since is the alert's: a lasting symptom keeps the time it started.
func (st *State) fire(lines []alerts.Alert, host string, a *AlertState, f Finding, now time.Time) []alerts.Alert {
	a.Summary = f.Summary
	key := alerts.DedupKey(host, f.Symptom, now)
	if _, used := st.Fired[key]; used {
		return lines
	}
	st.Fired[key] = now
	a.Announced, a.LastNotified = true, now
	return append(lines, alerts.Alert{
		TS: now, Host: host, Symptom: f.Symptom, Status: alerts.StatusFiring, DedupKey: key,
		Since: a.Since, Summary: f.Summary, Evidence: mustJSON(f.Evidence),
	})
}

func closing(host, sym string, a *AlertState, status string, now time.Time, summary string) alerts.Alert {
	return alerts.Alert{
		TS: now, Host: host, Symptom: sym, Status: status, DedupKey: alerts.DedupKey(host, sym, now),
		Since: a.Since, Summary: summary,
		Evidence: mustJSON(map[string]any{"was": a.Summary, "open_for": human(now.Sub(a.Since))}),
	}
}

func describe(sym string) string {
	switch sym {
	case Silent:
		return "silent: it sends requests again"
	case FatalOnly:
		return "refused: a request of its succeeded, or it stopped trying"
	case Unstamped:
		return "unstamped: its requests carry a commit again, or it stopped sending"
	case ReportFailing:
		return "failing its doctor checks"
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

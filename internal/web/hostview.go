package web

import (
	"encoding/json"
	"html/template"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/cis490/cis490/internal/alerts"
	"github.com/cis490/cis490/internal/config"
	"github.com/cis490/cis490/internal/fleethealth"
	"github.com/cis490/cis490/internal/index"
	"github.com/cis490/cis490/internal/silences"
)

// The host page's view: what showHost (host.go) reads, ready to print.

// doctorReport is the part of a stored `cis490 doctor --json` document the page shows.
type doctorReport struct {
	Host        string    `json:"host"`
	Version     string    `json:"version"`
	Commit      string    `json:"commit"`
	GeneratedAt time.Time `json:"generated_at"`
	ReceivedAt  time.Time `json:"received_at"`
	Status      string    `json:"status"`
	Checks      []struct {
		ID      string `json:"id"`
		Status  string `json:"status"`
		Summary string `json:"summary"`
		Hint    string `json:"hint"`
	} `json:"checks"`
}

type hostView struct {
	frame
	Host       string
	Href       string
	Row        *hostFacts
	Counts     fleethealth.Counts
	Symptoms   []findingView
	OpenAlerts []openAlertView

	Report    *reportView
	ReportErr string
	Requests  []requestView
	ReqErr    string
	Alerts    []alertView
	AlertErr  string
	Silences  []silenceView
	SilErr    string

	// Problem is why the form just sent changed nothing.
	Problem     string
	Form        silenceForm
	SymptomOpts []option
	ForOpts     []option
}

// hostFacts are a host's row as the host page lists them, every fact ready to print.
type hostFacts struct {
	Host, Href, Status string
	Symptom            string
	Severity           string
	Since              when
	LastSeen           when
	LastEpisode        when
	Commit             string
	// Allowed is the gate's answer as a mark and its words: ✓ allowed, ✗ refused,
	// ? unknown.
	Mark, MarkText, MarkClass string
	Doctor                    string
	DoctorAge                 string
	Cert                      string
	CertBad                   bool
	Alerts                    int
	Silenced                  when
	Spark                     template.HTML
}

func facts(r *fleethealth.Row, now time.Time) hostFacts {
	v := hostFacts{
		Host: r.Host, Href: "/hosts/" + url.PathEscape(r.Host), Status: r.Status,
		Symptom: r.WorstSymptom, Severity: r.WorstSeverity, Since: lasting(r.WorstSince, now),
		LastSeen: at(r.LastSeen, now), LastEpisode: at(r.LastEpisode, now),
		Commit: shortCommit(r.Commit), Alerts: len(r.OpenAlerts), Spark: sparkSVG(r.Hourly),
		Doctor: "none",
	}
	v.Mark, v.MarkText, v.MarkClass = allowed(r)
	if r.Report != nil {
		v.Doctor = r.Report.Status
		if !r.Report.ReceivedAt.IsZero() {
			v.DoctorAge = span(max(0, now.Sub(r.Report.ReceivedAt)))
		}
	}
	if r.CertDaysLeft != nil {
		d := *r.CertDaysLeft
		v.Cert, v.CertBad = strconv.Itoa(d), d < certWarnDays
		if d < 0 {
			v.Cert = "expired"
		}
	}
	if r.Silence != nil {
		v.Silenced = at(r.Silence.Until, now)
	}
	return v
}

type silenceForm struct{ Symptom, For, Reason string }

type findingView struct {
	Symptom, Severity, Summary string
	Since                      when
	Silenced                   when
}

type openAlertView struct {
	Symptom, Summary string
	Since            when
	Announced        bool
	Flapping         bool
}

type reportView struct {
	Status    string
	Received  when
	Generated when
	Version   string
	Commit    string
	Checks    []checkView
}

type checkView struct {
	ID, Status, Summary, Hint string
}

type requestView struct {
	TS                    when
	Route, Method, Commit string
	Status                int
	Bad                   bool
	Bytes                 string
	Dur                   string
	Remote, Error         string
}

type alertView struct {
	TS                        when
	Symptom, Severity, Status string
	Since                     when
	Summary                   string
	Flapping                  bool
}

type silenceView struct {
	ID, Symptom, State, Reason, By string
	Start, End                     when
	Action                         string
}

func forOptions(maxSilence time.Duration, chosen string) []option {
	if maxSilence <= 0 {
		maxSilence = silences.DefaultMax
	}
	if chosen == "" {
		chosen = "4h"
	}
	var out []option
	for _, c := range silenceChoices {
		if d, _ := config.ParseDuration(c); d <= maxSilence {
			out = append(out, option{Value: c, Label: c, Selected: c == chosen})
		}
	}
	return out
}

var checkRank = map[string]int{"fail": 0, "warn": 1, "ok": 3, "skip": 4}

func report(raw []byte, now time.Time) (*reportView, error) {
	var d doctorReport
	if err := json.Unmarshal(raw, &d); err != nil {
		return nil, err
	}
	rv := &reportView{Status: d.Status, Received: at(d.ReceivedAt, now), Generated: at(d.GeneratedAt, now),
		Version: d.Version, Commit: shortCommit(d.Commit)}
	for _, c := range d.Checks {
		st := c.Status
		if _, known := checkRank[st]; !known {
			st = "unknown"
		}
		rv.Checks = append(rv.Checks, checkView{ID: c.ID, Status: st, Summary: c.Summary, Hint: c.Hint})
	}
	// Problems first; within a status, the report's order.
	slices.SortStableFunc(rv.Checks, func(a, b checkView) int { return rank(a.Status) - rank(b.Status) })
	return rv, nil
}

func rank(status string) int {
	if r, ok := checkRank[status]; ok {
		return r
	}
	return 2
}

func requests(es []index.Entry, now time.Time) []requestView {
	out := make([]requestView, 0, len(es))
	for _, e := range es {
		out = append(out, requestView{
			TS: at(e.TS, now), Route: e.Route, Method: e.Method, Status: e.Status, Bad: e.Status == 0 || e.Status >= 400,
			Bytes: size(uint64(max(0, e.Bytes))), Dur: strconv.FormatFloat(e.DurMS, 'f', 1, 64) + " ms",
			Commit: shortCommit(e.Commit), Remote: e.Remote, Error: e.Error,
		})
	}
	return out
}

func alertRows(as []alerts.Alert, now time.Time) []alertView {
	out := make([]alertView, 0, len(as))
	for _, a := range as {
		out = append(out, alertView{TS: at(a.TS, now), Symptom: a.Symptom, Severity: a.Severity, Status: a.Status,
			Since: at(a.Since, now), Summary: a.Summary, Flapping: a.Flapping})
	}
	return out
}

func silenceRow(host string, s silences.View, now time.Time) silenceView {
	sym := s.Symptom
	if sym == "" {
		sym = "every symptom"
	}
	return silenceView{ID: s.ID, Symptom: sym, State: s.State, Reason: s.Reason, By: s.By,
		Start: at(s.Start, now), End: at(s.End, now),
		Action: "/hosts/" + url.PathEscape(host) + "/silences/" + url.PathEscape(s.ID) + "/end"}
}

// silence makes a silence from the host page's form: 303 back to the page once
// made (Post/Redirect/Get), or the page again with what to change (400).

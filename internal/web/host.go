package web

import (
	"errors"
	"io/fs"
	"net/http"
	"net/url"
	"slices"

	"github.com/cis490/cis490/internal/fleethealth"
	"github.com/cis490/cis490/internal/protocol"
	"github.com/cis490/cis490/internal/silences"
)

// The host page, GET /hosts/{host}: its row, its latest doctor report check by
// check, its last index lines and alerts, its silences, and the form that makes one.

const (
	recentRequests = 50
	recentAlerts   = 50
)

// silenceChoices are the form's durations; those past fleet_health.max_silence are
// left out.
var silenceChoices = []string{"1h", "4h", "12h", "1d", "3d", "7d"}

func (p *Pages) hostPage(w http.ResponseWriter, r *http.Request) {
	v, ok := p.visit(w, r)
	if !ok {
		return
	}
	host, ok := p.hostOf(w, r, v)
	if !ok {
		return
	}
	p.showHost(w, r, v, host, http.StatusOK, silenceForm{}, "")
}

// hostOf is the host the path names, or false once a 400 said it names none.
func (p *Pages) hostOf(w http.ResponseWriter, r *http.Request, v *visitor) (string, bool) {
	host, ok := protocol.NormalizeHost(r.PathValue("host"))
	if !ok {
		p.fail(w, r, v, http.StatusBadRequest, "Not a host name",
			"“"+r.PathValue("host")+"” is not a host name (ASCII letters, digits and hyphens, dot-separated). Pick the host from the fleet page.")
		return "", false
	}
	return host, true
}

// showHost renders host's page with status: 200, or the 4xx of a form that changed
// nothing (then problem says why and form holds what was sent).
func (p *Pages) showHost(w http.ResponseWriter, r *http.Request, v *visitor, host string, status int, form silenceForm, problem string) {
	fl, err := p.src.Fleet()
	if err != nil {
		p.logger(r).Error().Err(err).Msg("fleet page: the fleet could not be evaluated")
		p.fail(w, r, v, http.StatusServiceUnavailable, "Fleet unavailable",
			"The fleet could not be evaluated: "+err.Error()+". The receiver's log says more; try again in a minute.")
		return
	}
	var hr *fleethealth.Row
	for i := range fl.Hosts {
		if fl.Hosts[i].Host == host {
			hr = &fl.Hosts[i]
			break
		}
	}
	rep, repErr := p.src.Report(host)
	if hr == nil && errors.Is(repErr, fs.ErrNotExist) {
		p.fail(w, r, v, http.StatusNotFound, "No such host",
			"No host “"+host+"” is in the fleet (no request within the active window, no host token) and it sent no doctor report,"+
				" as of the fleet's evaluation at "+fl.GeneratedAt.UTC().Format("15:04:05")+" UTC. A host that spoke since then shows"+
				" up at the next evaluation: reload in a few seconds.")
		return
	}
	now := p.now()
	hv := hostView{frame: p.frame(v, host), Host: host, Href: "/hosts/" + url.PathEscape(host), Problem: problem, Form: form}
	hv.Refresh = status == http.StatusOK && problem == ""
	if hr != nil {
		rv := facts(hr, now)
		hv.Row, hv.Counts = &rv, hr.Requests
		for _, f := range hr.Symptoms {
			fv := findingView{Symptom: f.Symptom, Severity: f.Severity, Summary: f.Summary, Since: lasting(f.Since, now)}
			if f.Silence != nil {
				fv.Silenced = at(f.Silence.Until, now)
			}
			hv.Symptoms = append(hv.Symptoms, fv)
		}
		for _, a := range hr.OpenAlerts {
			hv.OpenAlerts = append(hv.OpenAlerts, openAlertView{Symptom: a.Symptom, Summary: a.Summary, Since: lasting(a.Since, now),
				Announced: a.Announced, Flapping: a.Flapping})
		}
	}
	switch {
	case repErr == nil:
		if rv, err := report(rep, now); err != nil {
			hv.ReportErr = "The stored report cannot be read (" + err.Error() + "): the host's next `cis490 health ship` replaces it."
		} else {
			hv.Report = rv
		}
	case !errors.Is(repErr, fs.ErrNotExist):
		hv.ReportErr = "The report could not be read: " + repErr.Error()
	}
	if reqs, err := p.src.Requests(host, recentRequests); err != nil {
		hv.ReqErr = "The request index could not be read: " + err.Error()
	} else {
		hv.Requests = requests(reqs, now)
	}
	if al, err := p.src.Alerts(host, recentAlerts); err != nil {
		hv.AlertErr = "alerts.jsonl could not be read: " + err.Error()
	} else {
		hv.Alerts = alertRows(al, now)
	}
	if sl, err := p.src.Silences(host); err != nil {
		hv.SilErr = "The silences could not be read: " + err.Error()
	} else {
		for _, s := range sl {
			hv.Silences = append(hv.Silences, silenceRow(host, s, now))
		}
	}
	hv.SymptomOpts = []option{{Value: "", Label: "every symptom", Selected: form.Symptom == ""}}
	for _, s := range fleethealth.Symptoms {
		hv.SymptomOpts = append(hv.SymptomOpts, option{Value: s, Label: s, Selected: form.Symptom == s})
	}
	hv.ForOpts = forOptions(v.recv.MaxSilence, form.For)
	p.render(w, r, status, p.hostT, hv, nil)
}

func (p *Pages) silence(w http.ResponseWriter, r *http.Request) {
	v, ok := p.visit(w, r)
	if !ok {
		return
	}
	host, ok := p.hostOf(w, r, v)
	if !ok || !p.checkPost(w, r, v) {
		return
	}
	form := silenceForm{Symptom: r.PostForm.Get("symptom"), For: r.PostForm.Get("for"), Reason: r.PostForm.Get("reason")}
	if !slices.ContainsFunc(forOptions(v.recv.MaxSilence, ""), func(o option) bool { return o.Value == form.For }) {
		p.showHost(w, r, v, host, http.StatusBadRequest, form, "Choose how long the silence lasts from the list; nothing was silenced.")
		return
	}
	if form.Symptom != "" && !slices.Contains(fleethealth.Symptoms, form.Symptom) {
		p.showHost(w, r, v, host, http.StatusBadRequest, form, "Choose the symptom from the list; nothing was silenced.")
		return
	}
	sl, err := p.src.Silence(silences.Request{Host: host, Symptom: form.Symptom, For: form.For, Reason: form.Reason}, v.admin)
	if errors.Is(err, silences.ErrInvalid) {
		p.showHost(w, r, v, host, http.StatusBadRequest, form, "Nothing was silenced: "+err.Error()+".")
		return
	}
	if err != nil {
		p.logger(r).Error().Err(err).Str("host", host).Msg("fleet page: a silence could not be made")
		p.fail(w, r, v, http.StatusInternalServerError, "Silence not made", "The silence could not be recorded: "+err.Error()+".")
		return
	}
	p.logger(r).Info().Str("id", sl.ID).Str("host", sl.Host).Str("symptom", sl.Symptom).Time("end", sl.End).Str("by", v.admin).
		Msg("fleet page: silence made")
	http.Redirect(w, r, "/hosts/"+url.PathEscape(host), http.StatusSeeOther)
}

// endSilence ends one of the host's active or pending silences now: 303 back to the
// page, or the page again saying why nothing changed.
func (p *Pages) endSilence(w http.ResponseWriter, r *http.Request) {
	v, ok := p.visit(w, r)
	if !ok {
		return
	}
	host, ok := p.hostOf(w, r, v)
	if !ok || !p.checkPost(w, r, v) {
		return
	}
	id := r.PathValue("id")
	current, err := p.src.Silences(host)
	if err != nil {
		p.logger(r).Error().Err(err).Str("host", host).Msg("fleet page: the silences could not be read")
		p.fail(w, r, v, http.StatusInternalServerError, "Silence not ended", "The silences could not be read: "+err.Error()+".")
		return
	}
	// An id from another host's page would end that host's silence from this one's.
	if !slices.ContainsFunc(current, func(s silences.View) bool { return s.ID == id }) {
		p.showHost(w, r, v, host, http.StatusNotFound, silenceForm{}, "No active or pending silence of "+host+" has the id “"+id+"”: it may have ended already. Nothing was changed.")
		return
	}
	err = p.src.EndSilence(id, v.admin)
	switch {
	case errors.Is(err, silences.ErrNotFound):
		p.showHost(w, r, v, host, http.StatusNotFound, silenceForm{}, "Nothing was changed: "+err.Error()+".")
		return
	case errors.Is(err, silences.ErrOver):
		p.showHost(w, r, v, host, http.StatusConflict, silenceForm{}, "Nothing was changed: "+err.Error()+".")
		return
	case err != nil:
		p.logger(r).Error().Err(err).Str("host", host).Str("id", id).Msg("fleet page: a silence could not be ended")
		p.fail(w, r, v, http.StatusInternalServerError, "Silence not ended", "The silence could not be ended: "+err.Error()+".")
		return
	}
	p.logger(r).Info().Str("id", id).Str("host", host).Str("by", v.admin).Msg("fleet page: silence ended")
	http.Redirect(w, r, "/hosts/"+url.PathEscape(host), http.StatusSeeOther)
}

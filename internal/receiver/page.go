package receiver

import (
	"bytes"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cis490/cis490/internal/alerts"
	"github.com/cis490/cis490/internal/buildinfo"
	"github.com/cis490/cis490/internal/fleethealth"
	"github.com/cis490/cis490/internal/index"
	"github.com/cis490/cis490/internal/silences"
	"github.com/cis490/cis490/internal/web"
)

// pageSource is what the fleet page (internal/web, SPEC §3.5) reads and changes:
// the same data, through the same code, as the API routes that answer it
// (GET /v1/fleet, /v1/host-health/{host}, /v1/alerts, /v1/silences).
type pageSource struct{ s *Server }

var _ web.Source = pageSource{}

// Fleet is GET /v1/fleet's evaluation, from its cache.
func (p pageSource) Fleet() (fleethealth.Fleet, error) { return p.s.fleetView.get() }

// Receiver is what /healthz says of the receiver, with the data folder's free space.
func (p pageSource) Receiver() web.Receiver {
	s := p.s
	b := buildinfo.Get()
	r := web.Receiver{Host: s.fleet.Host, Version: b.Version, Commit: b.Commit, Started: s.started,
		MinFreeBytes: uint64(max(s.cfg.MinFreeBytes, 0)), Gate: s.health().Gate,
		MaxSilence: s.fleetConfig().MaxSilence, Open: s.tokens == nil}
	r.FreeBytes, r.FreeErr = s.store.FreeBytes()
	return r
}

// Report is host's latest doctor report as stored.
func (p pageSource) Report(host string) ([]byte, error) { return p.s.store.HostHealth(host) }

// Requests are host's last n index lines within the active window, newest first,
// read from the end of the index back (index.Tail).
func (p pageSource) Requests(host string, n int) ([]index.Entry, error) {
	s := p.s
	from := s.now().Add(-s.fleetConfig().ActiveWindow)
	out, st, err := index.Tail(filepath.Join(s.cfg.DataDir, "index"), from, host, n)
	if st.Skipped > 0 {
		s.log.Debug().Int("skipped", st.Skipped).Str("host", host).Msg("the request index has lines that are not entries (torn or garbage); they were skipped")
	}
	return out, err
}

// Alerts are host's last n lines of alerts.jsonl, newest first. They are read from
// the end back (alerts.Backward), so a page costs what it shows, not the file's
// history; a line that does not hold host's name in quotes, as fleet health writes
// it, is passed over without parsing (unless an escape could spell it).
func (p pageSource) Alerts(host string, n int) ([]alerts.Alert, error) {
	if n <= 0 {
		return nil, nil
	}
	quoted := []byte(`"` + strings.ToLower(host) + `"`)
	f := alerts.Filter{Host: host}
	var out []alerts.Alert
	err := alerts.Backward(p.s.alertsPath(), func(line []byte) bool {
		if !bytes.Contains(line, quoted) && bytes.IndexByte(line, '\\') < 0 {
			return true
		}
		if a, ok := alerts.Parse(line); ok && f.Match(a) {
			out = append(out, a)
		}
		return len(out) < n
	})
	return out, err
}

// Silences are host's active and pending silences, as GET /v1/silences lists them.
func (p pageSource) Silences(host string) ([]silences.View, error) {
	s := p.s
	set, st, err := silences.Load(s.silencesPath())
	if err != nil {
		return nil, err
	}
	if st.Skipped > 0 {
		s.log.Warn().Int("skipped", st.Skipped).Str("file", s.silencesPath()).Msg("silences file has damaged lines; skipped")
	}
	return slices.DeleteFunc(set.List(s.now()), func(v silences.View) bool {
		return !strings.EqualFold(v.Host, host) || (v.State != silences.StateActive && v.State != silences.StatePending)
	}), nil
}

// Silence makes a silence as POST /v1/silences does.
func (p pageSource) Silence(req silences.Request, admin string) (silences.Silence, error) {
	return p.s.makeSilence(&p.s.log, req, admin)
}

// EndSilence ends a silence as DELETE /v1/silences/{id} does.
func (p pageSource) EndSilence(id, admin string) error {
	return p.s.endSilence(&p.s.log, id, admin)
}

// Admin checks an admin token as a bearer token is checked (identify); the token
// goes nowhere else.
func (p pageSource) Admin(token string) (string, bool) {
	if p.s.tokens == nil {
		return "", false
	}
	id, ok := p.s.tokens.Lookup(token)
	if !ok || !id.IsAdmin() {
		return "", false
	}
	return id.Admin, true
}

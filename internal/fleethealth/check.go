package fleethealth

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/cis490/cis490/internal/alerts"
	"github.com/cis490/cis490/internal/config"
	"github.com/cis490/cis490/internal/protocol"
)

// BatchGCPercent is the garbage collector's target for a `fleet-health check`
// process. Decoding a day of index lines allocates about 100 MB of short-lived
// strings while the live heap stays a few MB; collecting at every 100% of growth
// costs a fifth of the check's CPU. 400 trades some 30 MB more peak memory for it.
// Only a short batch process may set this: the receiver's GET /v1/fleet runs the
// same code under the server's own setting.
const BatchGCPercent = 400

// Options configure one check.
type Options struct {
	Config     config.FleetHealth
	DataDir    string // the receiver's serve.data_dir
	AlertsPath string // config.Config.AlertsPath()
	// TokensFile is serve.tokens_file. Its host tokens are the roster: the hosts
	// expected, whether or not they sent a request. Empty is open mode: the roster is
	// the hosts seen in the window.
	TokensFile string
	// Receiver is what the check learned of the receiver it runs beside
	// (GatherReceiverFacts): the Pi's own row. Nil: not on the Pi, or not gathered.
	Receiver *ReceiverFacts
	// AllowsCommit is the live gate's answer for a commit: the receiver's own, for
	// GET /v1/fleet. Nil: a row's commit_allowed comes from the index (the host's
	// latest stamped upload or heartbeat with that commit was let through or refused 426).
	AllowsCommit func(commit string) bool
	// Now is the evaluation time; zero means the clock's.
	Now    time.Time
	DryRun bool
	Logger zerolog.Logger
	// Notifier forwards beyond alerts.jsonl; nil forwards nowhere.
	Notifier *Notifier
}

// Result is what a check saw, and what it notified (or, dry, would have).
type Result struct {
	Now        time.Time `json:"now"`
	WindowFrom time.Time `json:"window_from"`
	DryRun     bool      `json:"dry_run"`
	Summary    Summary   `json:"summary"`
	// Hosts are worst first (table.go), ties by host name.
	Hosts         []Row          `json:"hosts"`
	Notifications []alerts.Alert `json:"notifications"`
	Index         ReadStats      `json:"index"`
	// Unproven are names seen only in requests refused without a token or
	// certificate that proved them (at most 20, sorted); UnprovenCount counts all.
	// They are not tracked: a new host with a bad token shows up here.
	Unproven      []string `json:"unproven_hosts,omitempty"`
	UnprovenCount int      `json:"unproven_count,omitempty"`
	// RefusedHandshakes are TLS handshakes refused for a certificate that named no
	// host (or none at all), by remote address and reason, latest first (at most 20;
	// RefusedHandshakesCount counts all). Not tracked either.
	RefusedHandshakes      []RefusedHandshake `json:"refused_handshakes,omitempty"`
	RefusedHandshakesCount int                `json:"refused_handshakes_count,omitempty"`
	// StateError says why the open alerts are unknown: the alert state could not be
	// read (Snapshot only; Check fails instead).
	StateError string `json:"state_error,omitempty"`
}

// Host statuses of a Row.
const (
	HostOK       = "ok"
	HostAlerting = "alerting"
	// HostSilenced: every symptom the host shows is silenced (alerts silence).
	HostSilenced = "silenced"
	// HostInactive: no request within the active window: a roster host not yet
	// overdue, or one listed while it still has open alerts (a check closes them).
	HostInactive = "inactive"
)

// Row is one host as of the evaluation: the line of `fleet-health check`, of
// GET /v1/fleet and of `cis490 fleet`.
type Row struct {
	Host   string `json:"host"`
	Status string `json:"status"`
	// The worst symptom (table.go's worst): the one the row leads with.
	WorstSymptom  string    `json:"worst_symptom,omitempty"`
	WorstSeverity string    `json:"worst_severity,omitempty"`
	WorstSince    time.Time `json:"worst_since,omitzero"`
	LastSeen      time.Time `json:"last_seen,omitzero"`
	LastRoute     string    `json:"last_route,omitempty"`
	LastStatus    int       `json:"last_status,omitempty"`
	// LastEpisode is the latest episode the receiver accepted from the host within the
	// window (a 2xx upload).
	LastEpisode time.Time `json:"last_episode,omitzero"`
	// Commit is the latest commit the host stamped a request with.
	Commit string `json:"commit"`
	// CommitAllowed is whether the gate lets Commit through: the live gate's answer in
	// GET /v1/fleet, else the index's (Options.AllowsCommit). Null when unknown: no
	// commit, or none of its uploads or heartbeats got an answer that tells.
	CommitAllowed *bool `json:"commit_allowed"`
	// CertDaysLeft is whole days until the certificate the latest doctor report looked
	// at expires (Report.CertNotAfter), negative once it has; null when unknown.
	CertDaysLeft *int `json:"cert_days_left"`
	// Requests are counted over the active window.
	Requests Counts `json:"requests"`
	// Hourly counts the host's requests by outcome per hour over the last 24 h,
	// oldest first: Hourly[SparkHours-1] is the hour that ends at the evaluation time.
	// Nil when the host sent none. The fleet page draws its sparkline from it.
	Hourly     []HourCounts `json:"hourly,omitempty"`
	Report     *Report      `json:"report"`
	Symptoms   []Finding    `json:"symptoms"`
	OpenAlerts []OpenAlert  `json:"open_alerts"`
	// Silence is, when Status is silenced, the silence that ends first of those
	// holding its symptoms back: alerts flow again from its until.
	Silence *SilenceRef `json:"silence,omitempty"`
}

// SparkHours is how many hours Row.Hourly covers.
const SparkHours = 24

// HourCounts are one hour of a host's requests by outcome: 2xx, 4xx, 5xx. A TLS
// handshake refused for its certificate counts as refused.
type HourCounts struct {
	OK      int `json:"ok"`
	Refused int `json:"refused"`
	Failed  int `json:"failed"`
}

// OpenAlert is an alert the state holds open.
type OpenAlert struct {
	Symptom      string    `json:"symptom"`
	Since        time.Time `json:"since"`
	Announced    bool      `json:"announced"`
	LastNotified time.Time `json:"last_notified,omitzero"`
	Summary      string    `json:"summary"`
	Flapping     bool      `json:"flapping,omitempty"`
}

// ErrNoIndex means the data folder has no request index: not a receiver's.
var ErrNoIndex = errors.New("no request index in this data folder")

// Check runs one evaluation: reads the index of the active window and the doctor
// reports, moves the alert state on, and (unless dry) appends the notifications to
// alerts.jsonl, forwards them, and saves the state. Checks on one data folder are
// serialised by a lock, so two at once never notify the same thing twice.
func Check(ctx context.Context, opts Options) (*Result, error) {
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	now = now.UTC()
	if err := hasIndex(opts.DataDir); err != nil {
		return nil, err
	}
	if !opts.DryRun {
		unlock, err := lock(ctx, lockPath(opts.DataDir))
		if err != nil {
			return nil, err
		}
		defer unlock()
	}
	st, err := loadState(statePath(opts.DataDir))
	if err != nil {
		return nil, err
	}
	in, err := inputs(opts, now)
	if err != nil {
		return nil, err
	}
	// alerts.jsonl is the record of what was notified; the state only remembers it.
	recent, logErr := alerts.Recent(opts.AlertsPath, recentFrom(now, max(opts.Config.RepeatInterval, opts.Config.GoneRepeatInterval)))
	if logErr != nil && opts.DryRun {
		return nil, fmt.Errorf("%w (fleet_health.alerts_file): fleet-health check must read it to know what was notified", logErr)
	}
	st.adopt(recent, now)
	fe, err := evaluateFleet(opts.DataDir, opts.Config, now, st, in, opts.Logger)
	if err != nil {
		return nil, err
	}
	lines := st.step(fe.evals, now, policy{repeat: opts.Config.RepeatInterval, roster: in.roster != nil})
	res := &Result{
		Now: now, WindowFrom: now.Add(-opts.Config.ActiveWindow), DryRun: opts.DryRun,
		Hosts: rows(fe.evals, st, now, opts.AllowsCommit), Notifications: lines, Index: fe.stats,
	}
	res.finish(fe)
	logRun(opts.Logger, res)
	if opts.DryRun {
		return res, nil
	}
	// Notify first, record after: the state is saved only once the lines are in
	// alerts.jsonl, so one that could not be written is retried at the next run. A
	// crash between the append and the save repeats nothing either: adopt reads the
	// lines back.
	err = logErr
	if err == nil {
		err = alerts.Append(opts.AlertsPath, lines...)
	}
	// Syslog, Alertmanager and the webhook need no disk: a full one must not
	// silence them too.
	opts.Notifier.notify(ctx, lines, openForAM(st, fe.evals, now))
	if errors.Is(err, syscall.EROFS) {
		return nil, fmt.Errorf("%s (%w); %d notification(s) not written there are tried again at the next run, and were forwarded to syslog, Alertmanager and the webhook where configured",
			readOnlyAlertsFile(opts.AlertsPath), err, len(lines))
	}
	if err != nil {
		return nil, fmt.Errorf("%w (fleet_health.alerts_file): %d notification(s) not written there are tried again at the next run, and were forwarded to syslog, Alertmanager and the webhook where configured; free space on its disk, or make fleet_health.alerts_file a file fleet-health check can write",
			err, len(lines))
	}
	if err := st.save(statePath(opts.DataDir)); err != nil {
		return nil, err
	}
	return res, nil
}

// unitStateDir is all cis490-fleet-health.service may write (StateDirectory=cis490,
// under ProtectSystem=strict).
const unitStateDir = "/var/lib/cis490"

// readOnlyAlertsFile says what to do about an alerts file on a read-only file
// system: under the unit, that is any file outside unitStateDir (issue 11).
func readOnlyAlertsFile(path string) string {
	msg := "fleet_health.alerts_file " + path + " is on a read-only file system: "
	if rel, err := filepath.Rel(unitStateDir, path); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
		return msg + "the unit may write " + unitStateDir + ", so the file system itself is mounted read-only: check `findmnt -T " + path + "`"
	}
	// ReadWritePaths= must name a folder that exists: the file's, or the nearest
	// one above it that Append would create the rest in.
	dir := filepath.Dir(path)
	for dir != filepath.Dir(dir) {
		if _, err := os.Stat(dir); err == nil {
			break
		}
		dir = filepath.Dir(dir)
	}
	return msg + "the unit may write only " + unitStateDir + "; add ReadWritePaths=" + dir +
		" in a drop-in (systemctl edit cis490-fleet-health.service) or move the file"
}

// Snapshot evaluates the fleet as of opts.Now (zero: the clock's) without touching
// anything: GET /v1/fleet. Its open alerts are those the last check left open. A state
// that cannot be read does not keep the fleet from being shown: the rows come without
// open alerts, and StateError says why.
func Snapshot(opts Options) (*Result, error) {
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	now = now.UTC()
	if err := hasIndex(opts.DataDir); err != nil {
		return nil, err
	}
	st, stateErr := loadState(statePath(opts.DataDir))
	if stateErr != nil {
		st = newState()
	}
	in, err := inputs(opts, now)
	if err != nil {
		return nil, err
	}
	fe, err := evaluateFleet(opts.DataDir, opts.Config, now, st, in, opts.Logger)
	if err != nil {
		return nil, err
	}
	res := &Result{Now: now, WindowFrom: now.Add(-opts.Config.ActiveWindow), DryRun: true,
		Hosts: rows(fe.evals, st, now, opts.AllowsCommit), Index: fe.stats}
	if stateErr != nil {
		res.StateError = "open alerts unknown: " + stateErr.Error()
	}
	return res.finish(fe), nil
}

// hasIndex: the receiver creates index/ when it starts. Without it this is not the
// receiver's data folder, and an evaluation would only invent state and an empty fleet.
func hasIndex(dataDir string) error {
	if _, err := os.Stat(indexDir(dataDir)); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %w; run it on the receiver with its configuration (serve.data_dir, --config or --data-dir), after `cis490 serve` has started once",
			ErrNoIndex, err)
	} else if err != nil {
		return fmt.Errorf("the request index: %w; fleet health must be able to read serve.data_dir (run it as the receiver's user, as its units do)", err)
	}
	return nil
}

// fleetInputs are what an evaluation knows beyond the index and the reports.
type fleetInputs struct {
	// roster maps each host with a host token to its token's creation (zero when
	// unknown); nil is open mode: the roster is the hosts seen in the window.
	roster map[string]time.Time
	// silenced finds the silence matching a host's symptom now; nil matches nothing.
	silenced func(host, symptom string) (SilenceRef, bool)
	receiver *ReceiverFacts
}

// fleetEval is one evaluation of the fleet.
type fleetEval struct {
	evals    map[string]*evaluation
	stats    ReadStats
	unproven []string
	unnamed  []RefusedHandshake
}

// evaluateFleet reads the index over the active window, back from now. That bounds
// fatal-only's "since the last 2xx" by the window too: a host refused for longer than
// it shows the refusals within it, which is enough to fire.
func evaluateFleet(dataDir string, cfg config.FleetHealth, now time.Time, st *State, in fleetInputs, log zerolog.Logger) (*fleetEval, error) {
	wf, stats, err := readWindow(indexDir(dataDir), now.Add(-cfg.ActiveWindow), now)
	if err != nil {
		return nil, err
	}
	if stats.Skipped > 0 {
		log.Warn().Int("skipped", stats.Skipped).Msg("the request index has lines that are not entries (torn or garbage); they were skipped")
	}
	out := &fleetEval{evals: map[string]*evaluation{}, stats: stats, unnamed: unnamedHandshakes(wf)}
	for host, f := range wf.hosts {
		// Anyone who reaches the port can send a request that claims any host and is
		// refused 401, or a certificate that names any host. Such lines count only for
		// a host that is tracked (it proved who it is within the window, or it has a
		// host token), never to make one up or keep one alive.
		if in.roster != nil {
			if _, ok := in.roster[host]; !ok {
				out.unproven = append(out.unproven, host)
			}
			continue
		}
		if !f.verified {
			out.unproven = append(out.unproven, host)
			continue
		}
		out.evals[host] = activeHost(dataDir, f, st.Hosts[host], now, cfg, log)
	}
	for host, created := range in.roster {
		f := wf.hosts[host]
		if f != nil && f.verified {
			out.evals[host] = activeHost(dataDir, f, st.Hosts[host], now, cfg, log)
		} else {
			out.evals[host] = quietHost(host, f, created, st.Hosts[host], now, cfg)
		}
	}
	if in.receiver != nil {
		out.receiverRow(dataDir, in.receiver, wf.last507, st, now, cfg, log)
	}
	for host, ev := range out.evals {
		heldTLS(ev, st.Hosts[host])
		for i := range ev.findings {
			fd := &ev.findings[i]
			fd.Severity, fd.repeat = Severity(fd.Symptom), ev.repeat
			if in.silenced != nil {
				if ref, ok := in.silenced(host, fd.Symptom); ok {
					fd.Silence = &ref
				}
			}
		}
	}
	if len(out.unproven) > 0 {
		slices.Sort(out.unproven)
		log.Info().Int("count", len(out.unproven)).Strs("hosts", out.unproven[:min(len(out.unproven), 10)]).
			Msg("ignoring hosts not tracked (no host token, or seen only in requests or handshakes refused without a valid token or certificate); `cis490 doctor` on a new host tells whether it is accepted")
	}
	return out, nil
}

// activeHost evaluates a tracked host that sent a request within the window.
func activeHost(dataDir string, f *hostFacts, hs *HostState, now time.Time, cfg config.FleetHealth, log zerolog.Logger) *evaluation {
	rep, err := readReport(dataDir, f.host)
	if err != nil {
		log.Warn().Err(err).Msg("doctor report skipped")
	}
	if hs != nil && !hs.FirstSeen.IsZero() && hs.FirstSeen.Before(f.firstSeen) {
		f.firstSeen = hs.FirstSeen
	}
	return &evaluation{facts: f, report: rep, active: true, lastSeen: f.lastSeen,
		findings: evaluate(f, rep, f.firstSeen, now, cfg)}
}

// quietHost evaluates a roster host without a request that got through in the window:
// silent (from its last request, or from when it was expected) and tls-refused are
// all that can be told of it. f holds what refused lines named it, if any.
func quietHost(host string, f *hostFacts, created time.Time, hs *HostState, now time.Time, cfg config.FleetHealth) *evaluation {
	ev := &evaluation{facts: f, rosterSince: now, judged: []string{Silent, TLSRefused}}
	if hs != nil {
		ev.lastSeen = hs.LastSeen
		if !hs.RosterSince.IsZero() {
			ev.rosterSince = hs.RosterSince
		}
	}
	expected := created
	if expected.IsZero() {
		expected = ev.rosterSince
	}
	quiet := expected
	if !ev.lastSeen.IsZero() {
		quiet = ev.lastSeen
	}
	// Gone: quiet for longer than the active window. Its alerts stay open, but an
	// hourly reminder of a dead host is noise: they repeat every gone_repeat_interval.
	if now.Sub(quiet) > cfg.ActiveWindow {
		ev.repeat = cfg.GoneRepeatInterval
	}
	if found := quietSilent(host, ev.lastSeen, expected, now, cfg); found != nil {
		ev.findings = append(ev.findings, *found)
	}
	if f != nil {
		if found := tlsRefused(f); found != nil {
			ev.findings = append(ev.findings, *found)
		}
	}
	return ev
}

// receiverRow adds the Pi's own symptoms to its row, which exists whether or not the
// Pi ever sent a request: its doctor report says report-failing or report-warning, and
// the receiver's facts the rest. last507 is the window's latest 507, fleet-wide.
func (out *fleetEval) receiverRow(dataDir string, rf *ReceiverFacts, last507 time.Time, st *State, now time.Time, cfg config.FleetHealth, log zerolog.Logger) {
	host, ok := protocol.NormalizeHost(rf.Host)
	if !ok {
		log.Warn().Str("host", rf.Host).Msg("the receiver's own row is left out: its host name is not a valid one (set host in the configuration)")
		return
	}
	if now.Sub(last507) > cfg.FatalWindow {
		last507 = time.Time{}
	}
	ev := out.evals[host]
	if ev == nil {
		rep, err := readReport(dataDir, host)
		if err != nil {
			log.Warn().Err(err).Msg("doctor report skipped")
		}
		ev = &evaluation{report: rep, judged: []string{ReportFailing, ReportWarning}}
		if hs := st.Hosts[host]; hs != nil {
			ev.lastSeen = hs.LastSeen
		}
		for _, found := range []*Finding{reportFailing(host, rep, now), reportWarning(host, rep, now)} {
			if found != nil {
				ev.findings = append(ev.findings, *found)
			}
		}
		out.evals[host] = ev
		out.unproven = slices.DeleteFunc(out.unproven, func(h string) bool { return h == host })
	}
	ev.receiver = true
	if ev.judged != nil {
		ev.judged = append(ev.judged, DiskLow, GateStale, ReceiverDown, StorageDown)
	}
	ev.findings = append(ev.findings, piFindings(rf, last507, now, cfg)...)
}

// heldTLS keeps tls-refused open, as the state holds it, until the host's next request
// that gets through, though its refused handshakes have left the window: a host
// refused for longer than that is still refused.
func heldTLS(ev *evaluation, hs *HostState) {
	if hs == nil || hs.Alerts[TLSRefused] == nil || slices.ContainsFunc(ev.findings, func(f Finding) bool { return f.Symptom == TLSRefused }) {
		return
	}
	a := hs.Alerts[TLSRefused]
	if ev.lastSeen.After(a.Since) {
		return
	}
	ev.findings = append(ev.findings, Finding{Symptom: TLSRefused, Since: a.Since, Summary: a.Summary,
		Evidence: map[string]any{"held": "no request of the host has got through since its handshakes were refused"}})
	slices.SortStableFunc(ev.findings, func(a, b Finding) int { return symptomOrder(a.Symptom) - symptomOrder(b.Symptom) })
}

func symptomOrder(sym string) int {
	if i := slices.Index(Symptoms, sym); i >= 0 {
		return i
	}
	return len(Symptoms)
}

// unnamedHandshakes lists the refused handshakes whose certificate named no host,
// latest first.
func unnamedHandshakes(wf *windowFacts) []RefusedHandshake {
	out := make([]RefusedHandshake, 0, len(wf.unnamed))
	for _, r := range wf.unnamed {
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b RefusedHandshake) int {
		if c := b.Last.Compare(a.Last); c != 0 {
			return c
		}
		return strings.Compare(a.Remote+" "+a.Reason, b.Remote+" "+b.Reason)
	})
	return out
}

// finish notes what is not tracked in res, at most 20 of each, and sums it up.
func (res *Result) finish(fe *fleetEval) *Result {
	res.Unproven, res.UnprovenCount = fe.unproven[:min(len(fe.unproven), 20)], len(fe.unproven)
	res.RefusedHandshakes, res.RefusedHandshakesCount = fe.unnamed[:min(len(fe.unnamed), 20)], len(fe.unnamed)
	if len(res.RefusedHandshakes) == 0 {
		res.RefusedHandshakes = nil
	}
	res.Summary = summarize(res)
	return res
}

// rows are the table: one row a host, evaluated or with alerts the state holds open,
// worst first. allows is the live gate (nil: the index says).
func rows(evals map[string]*evaluation, st *State, now time.Time, allows func(string) bool) []Row {
	hosts := slices.Collect(maps.Keys(evals))
	for host := range st.Hosts {
		if evals[host] == nil {
			hosts = append(hosts, host)
		}
	}
	out := make([]Row, 0, len(hosts))
	for _, host := range hosts {
		r := Row{Host: host, Status: HostInactive, Symptoms: []Finding{}, OpenAlerts: []OpenAlert{}}
		hs := st.Hosts[host]
		if ev := evals[host]; ev != nil {
			if f := ev.facts; f != nil && ev.active {
				r.LastSeen, r.LastRoute, r.LastStatus, r.Commit = f.lastSeen, f.lastRoute, f.lastStatus, f.commit
				r.LastEpisode, r.CommitAllowed = f.lastEpisode, commitAllowed(f, allows)
			} else {
				r.LastSeen = ev.lastSeen
			}
			if ev.facts != nil {
				r.Requests, r.Hourly = ev.facts.counts, ev.facts.hourlyRow()
			}
			r.Report = ev.report
			if ev.report != nil {
				r.CertDaysLeft = daysLeft(ev.report.CertNotAfter, now)
			}
			r.Symptoms = append(r.Symptoms, ev.findings...)
			r.Status, r.Silence = hostStatus(ev)
			if w := worst(ev.findings); w != nil {
				r.WorstSymptom, r.WorstSeverity, r.WorstSince = w.Symptom, w.Severity, w.Since
			}
		} else if hs != nil {
			r.LastSeen = hs.LastSeen
		}
		if hs != nil {
			for _, sym := range Symptoms {
				if a := hs.Alerts[sym]; a != nil {
					r.OpenAlerts = append(r.OpenAlerts, OpenAlert{sym, a.Since, a.Announced, a.LastNotified, a.Summary, a.Flapping})
				}
			}
		}
		out = append(out, r)
	}
	sortRows(out)
	return out
}

// commitAllowed is whether the gate lets f's latest commit through: allows' answer,
// or the index's latest verdict on that same commit; nil when neither can say.
func commitAllowed(f *hostFacts, allows func(string) bool) *bool {
	var ok bool
	switch {
	case f.commit == "":
		return nil
	case allows != nil:
		ok = allows(f.commit)
	case f.gateCommit == f.commit && !f.gateAt.IsZero():
		ok = !f.gateRefused
	default:
		return nil
	}
	return &ok
}

// hostStatus is alerting while any symptom is not silenced, silenced when all are
// (with the silence that ends first), ok with none; a quiet roster host with none
// is inactive.
func hostStatus(ev *evaluation) (string, *SilenceRef) {
	if len(ev.findings) == 0 {
		if !ev.active && !ev.receiver {
			return HostInactive, nil
		}
		return HostOK, nil
	}
	var first *SilenceRef
	for _, f := range ev.findings {
		if f.Silence == nil {
			return HostAlerting, nil
		}
		if first == nil || f.Silence.Until.Before(first.Until) {
			first = f.Silence
		}
	}
	return HostSilenced, first
}

// openForAM lists every announced alert that no silence holds back, for Alertmanager,
// due to end three runs ahead. One held back (silenced, or waiting for its interval)
// is not pushed: Alertmanager lets it end, and hears of it again when alerts.jsonl does.
func openForAM(st *State, evals map[string]*evaluation, now time.Time) []amAlert {
	var out []amAlert
	for _, host := range slices.Sorted(maps.Keys(st.Hosts)) {
		for _, sym := range Symptoms {
			a := st.Hosts[host].Alerts[sym]
			if a == nil || !a.Announced || evals[host].silenced(sym) {
				continue
			}
			out = append(out, toAM(host, sym, a.Since, a.Summary, now.Add(3*RunInterval)))
		}
	}
	return out
}

func logRun(log zerolog.Logger, res *Result) {
	log.Info().Time("now", res.Now).Bool("dry_run", res.DryRun).Int("hosts", len(res.Hosts)).
		Int("alerting", res.Summary.Alerting).Int("silenced", res.Summary.Silenced).
		Int("notifications", len(res.Notifications)).Int("index_files", res.Index.Files).Int("index_lines", res.Index.Lines).
		Msg("fleet-health check")
}

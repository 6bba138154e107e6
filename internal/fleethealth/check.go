package fleethealth

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"slices"
	"time"

	"github.com/rs/zerolog"

	"github.com/cis490/cis490/internal/alerts"
	"github.com/cis490/cis490/internal/config"
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
	// Now is the evaluation time; zero means the clock's.
	Now    time.Time
	DryRun bool
	Logger zerolog.Logger
	// Notifier forwards beyond alerts.jsonl; nil forwards nowhere.
	Notifier *Notifier
}

// Result is what a check saw, and what it notified (or, dry, would have).
type Result struct {
	Now           time.Time      `json:"now"`
	WindowFrom    time.Time      `json:"window_from"`
	DryRun        bool           `json:"dry_run"`
	Hosts         []Row          `json:"hosts"`
	Notifications []alerts.Alert `json:"notifications"`
	Index         ReadStats      `json:"index"`
	// Unproven are names seen only in requests refused without a token or
	// certificate that proved them (at most 20, sorted); UnprovenCount counts all.
	// They are not tracked: a new host with a bad token shows up here.
	Unproven      []string `json:"unproven_hosts,omitempty"`
	UnprovenCount int      `json:"unproven_count,omitempty"`
	// StateError says why the open alerts are unknown: the alert state could not be
	// read (Snapshot only; Check fails instead).
	StateError string `json:"state_error,omitempty"`
}

// Host statuses of a Row.
const (
	HostOK       = "ok"
	HostAlerting = "alerting"
	// HostInactive: no request within the active window; listed while it still has
	// open alerts (a check closes them as expired).
	HostInactive = "inactive"
)

// Row is one host as of the evaluation: the line of `fleet-health check` and of
// GET /v1/fleet.
type Row struct {
	Host       string    `json:"host"`
	Status     string    `json:"status"`
	LastSeen   time.Time `json:"last_seen,omitzero"`
	LastRoute  string    `json:"last_route,omitempty"`
	LastStatus int       `json:"last_status,omitempty"`
	// Commit is the latest commit the host stamped a request with.
	Commit string `json:"commit"`
	// Requests are counted over the active window.
	Requests   Counts      `json:"requests"`
	Report     *Report     `json:"report"`
	Symptoms   []Finding   `json:"symptoms"`
	OpenAlerts []OpenAlert `json:"open_alerts"`
}

// OpenAlert is an alert the state holds open.
type OpenAlert struct {
	Symptom      string    `json:"symptom"`
	Since        time.Time `json:"since"`
	Announced    bool      `json:"announced"`
	LastNotified time.Time `json:"last_notified,omitzero"`
	Summary      string    `json:"summary"`
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
	// The receiver creates index/ when it starts. Without it this is not the
	// receiver's data folder, and a check would only invent state and an empty fleet.
	if _, err := os.Stat(indexDir(opts.DataDir)); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %w; run fleet-health check on the receiver with its configuration (serve.data_dir, --config or --data-dir), after `cis490 serve` has started once",
			ErrNoIndex, err)
	} else if err != nil {
		return nil, fmt.Errorf("the request index: %w; fleet-health check must be able to read serve.data_dir (run it as the receiver's user, as its unit does)", err)
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
	// alerts.jsonl is the record of what was notified; the state only remembers it.
	recent, logErr := alerts.Recent(opts.AlertsPath, recentFrom(now, opts.Config.RepeatInterval))
	if logErr != nil && opts.DryRun {
		return nil, fmt.Errorf("%w (fleet_health.alerts_file): fleet-health check must read it to know what was notified", logErr)
	}
	st.adopt(recent, now)
	evals, stats, unproven, err := evaluateFleet(opts.DataDir, opts.Config, now, st, opts.Logger)
	if err != nil {
		return nil, err
	}
	lines := st.step(evals, now, opts.Config.RepeatInterval)
	res := &Result{
		Now: now, WindowFrom: now.Add(-opts.Config.ActiveWindow), DryRun: opts.DryRun,
		Hosts: rows(evals, st), Notifications: lines, Index: stats,
	}
	res.withUnproven(unproven)
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
	opts.Notifier.notify(ctx, lines, openForAM(st, now))
	if err != nil {
		return nil, fmt.Errorf("%w (fleet_health.alerts_file): %d notification(s) not written there are tried again at the next run, and were forwarded to syslog, Alertmanager and the webhook where configured; free space on its disk, or make fleet_health.alerts_file a file fleet-health check can write",
			err, len(lines))
	}
	if err := st.save(statePath(opts.DataDir)); err != nil {
		return nil, err
	}
	return res, nil
}

// Snapshot evaluates the fleet as of now without touching anything: GET /v1/fleet.
// Its open alerts are those the last check left open. A state that cannot be read
// does not keep the fleet from being shown: the rows come without open alerts, and
// StateError says why.
func Snapshot(dataDir string, cfg config.FleetHealth, now time.Time, log zerolog.Logger) (*Result, error) {
	now = now.UTC()
	st, stateErr := loadState(statePath(dataDir))
	if stateErr != nil {
		st = newState()
	}
	evals, stats, unproven, err := evaluateFleet(dataDir, cfg, now, st, log)
	if err != nil {
		return nil, err
	}
	res := &Result{Now: now, WindowFrom: now.Add(-cfg.ActiveWindow), DryRun: true, Hosts: rows(evals, st), Index: stats}
	if stateErr != nil {
		res.StateError = "open alerts unknown: " + stateErr.Error()
	}
	return res.withUnproven(unproven), nil
}

// evaluateFleet reads the index over the active window, back from now. That bounds
// fatal-only's "since the last 2xx" by the window too: a host refused for longer than
// it shows the refusals within it, which is enough to fire.
func evaluateFleet(dataDir string, cfg config.FleetHealth, now time.Time, st *State, log zerolog.Logger) (map[string]*evaluation, ReadStats, []string, error) {
	facts, stats, err := readWindow(indexDir(dataDir), now.Add(-cfg.ActiveWindow), now)
	if err != nil {
		return nil, stats, nil, err
	}
	if stats.Skipped > 0 {
		log.Warn().Int("skipped", stats.Skipped).Msg("the request index has lines that are not entries (torn or garbage); they were skipped")
	}
	evals := make(map[string]*evaluation, len(facts))
	var unproven []string
	for host, f := range facts {
		// Anyone who reaches the port can send a request that claims any host and is
		// refused 401. Such lines count only for a host that also proved who it is
		// within the window (a token revoked since), never to make one up or keep
		// one alive.
		if !f.verified {
			unproven = append(unproven, host)
			continue
		}
		rep, err := readReport(dataDir, host)
		if err != nil {
			log.Warn().Err(err).Msg("doctor report skipped")
		}
		first := f.firstSeen
		if hs := st.Hosts[host]; hs != nil && !hs.FirstSeen.IsZero() && hs.FirstSeen.Before(first) {
			first = hs.FirstSeen
		}
		f.firstSeen = first
		evals[host] = &evaluation{facts: f, report: rep, findings: evaluate(f, rep, first, now, cfg)}
	}
	if len(unproven) > 0 {
		slices.Sort(unproven)
		log.Info().Int("count", len(unproven)).Strs("hosts", unproven[:min(len(unproven), 10)]).
			Msg("ignoring hosts seen only in requests refused without a valid token or certificate; `cis490 doctor` on a new host tells whether its token is accepted")
	}
	return evals, stats, unproven, nil
}

// withUnproven notes the unproven names in res, at most 20 of them.
func (res *Result) withUnproven(names []string) *Result {
	res.Unproven, res.UnprovenCount = names[:min(len(names), 20)], len(names)
	return res
}

func rows(evals map[string]*evaluation, st *State) []Row {
	hosts := slices.Collect(maps.Keys(evals))
	for host := range st.Hosts {
		if evals[host] == nil {
			hosts = append(hosts, host)
		}
	}
	slices.Sort(hosts)
	out := make([]Row, 0, len(hosts))
	for _, host := range hosts {
		r := Row{Host: host, Status: HostInactive, Symptoms: []Finding{}, OpenAlerts: []OpenAlert{}}
		if ev := evals[host]; ev != nil {
			f := ev.facts
			r.LastSeen, r.LastRoute, r.LastStatus, r.Commit = f.lastSeen, f.lastRoute, f.lastStatus, f.commit
			r.Requests, r.Report = f.counts, ev.report
			r.Symptoms = append(r.Symptoms, ev.findings...)
			r.Status = HostOK
			if len(ev.findings) > 0 {
				r.Status = HostAlerting
			}
		}
		if hs := st.Hosts[host]; hs != nil {
			for _, sym := range Symptoms {
				if a := hs.Alerts[sym]; a != nil {
					r.OpenAlerts = append(r.OpenAlerts, OpenAlert{sym, a.Since, a.Announced, a.LastNotified, a.Summary})
				}
			}
		}
		out = append(out, r)
	}
	return out
}

// openForAM lists every open alert for Alertmanager, due to end three runs ahead.
func openForAM(st *State, now time.Time) []amAlert {
	var out []amAlert
	for _, host := range slices.Sorted(maps.Keys(st.Hosts)) {
		for _, sym := range Symptoms {
			if a := st.Hosts[host].Alerts[sym]; a != nil {
				out = append(out, toAM(host, sym, a.Since, a.Summary, now.Add(3*RunInterval)))
			}
		}
	}
	return out
}

func logRun(log zerolog.Logger, res *Result) {
	alerting := 0
	for _, r := range res.Hosts {
		if r.Status == HostAlerting {
			alerting++
		}
	}
	log.Info().Time("now", res.Now).Bool("dry_run", res.DryRun).Int("hosts", len(res.Hosts)).Int("alerting", alerting).
		Int("notifications", len(res.Notifications)).Int("index_files", res.Index.Files).Int("index_lines", res.Index.Lines).
		Msg("fleet-health check")
}

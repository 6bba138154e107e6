// Package doctor is the lab host's self-check (SPEC §4.3): independent checks run
// concurrently under one deadline, each ending ok, warn, fail or skip with a one-line
// summary and a hint naming the command or file that fixes it. The report it builds
// is what `cis490 health ship` delivers to the receiver.
package doctor

import (
	"context"
	"github.com/cis490/cis490/internal/install"
	"time"

	"github.com/rs/zerolog"

	"github.com/cis490/cis490/internal/buildinfo"
	"github.com/cis490/cis490/internal/config"
)

// Schema names the report's JSON layout; readers on the receiver key on it.
const Schema = "cis490.doctor/v1"

// Status is a check's (or a report's) outcome.
type Status string

const (
	OK   Status = "ok"
	Warn Status = "warn"
	Fail Status = "fail"
	Skip Status = "skip"
)

// rank orders statuses by severity; skip ranks with ok because a check that did not
// apply says nothing about the host's health.
func (s Status) rank() int {
	switch s {
	case Fail:
		return 2
	case Warn:
		return 1
	}
	return 0
}

// Check is one check's result.
type Check struct {
	ID         string         `json:"id"`
	Status     Status         `json:"status"`
	Summary    string         `json:"summary"`
	Hint       string         `json:"hint"`
	DurationMS float64        `json:"duration_ms"`
	Details    map[string]any `json:"details"`
}

// Report is the whole run: the `cis490 doctor --json` document.
type Report struct {
	Schema      string    `json:"schema"`
	Host        string    `json:"host"`
	Version     string    `json:"version"`
	Commit      string    `json:"commit"`
	GeneratedAt time.Time `json:"generated_at"`
	Status      Status    `json:"status"`
	Checks      []Check   `json:"checks"`
}

// Count returns how many checks ended with s.
func (r Report) Count(s Status) int {
	n := 0
	for _, c := range r.Checks {
		if c.Status == s {
			n++
		}
	}
	return n
}

// Failing lists the ids of checks at least as bad as worst: Fail, or Warn for --strict.
func (r Report) Failing(worst Status) []string {
	var ids []string
	for _, c := range r.Checks {
		if c.Status.rank() >= worst.rank() {
			ids = append(ids, c.ID)
		}
	}
	return ids
}

// Options are what a run looks at. Only Config (or ConfigErr) is required.
type Options struct {
	Config config.Config
	// ConfigErr is why the configuration did not load: the config check fails with it
	// and every check that needs the configuration is skipped, so a broken file still
	// produces a report.
	ConfigErr error
	Logger    zerolog.Logger
	Build     buildinfo.Info
	Now       func() time.Time
	// SystemdDir exists only when systemd is the init system (sd_booted(3)).
	SystemdDir string
	// Systemctl runs `systemctl ARGS` and returns its standard output.
	Systemctl func(ctx context.Context, args ...string) (string, error)
}

func (o *Options) defaults() {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.SystemdDir == "" {
		o.SystemdDir = "/run/systemd/system"
	}
	if o.Systemctl == nil {
		o.Systemctl = systemctl
	}
	if o.Build == (buildinfo.Info{}) {
		o.Build = buildinfo.Get()
	}
}

// Run runs every check of a lab host within the configuration's doctor.timeout and
// returns the report. It never takes longer than the timeout (plus rendering): a
// check still running at the deadline is reported as failed.
func Run(ctx context.Context, opts Options) Report { return run(ctx, opts, definitions) }

// run is Run with the checks of either role (pirole.go has the receiver's).
func run(ctx context.Context, opts Options, definitions func(context.Context, Options) []definition) Report {
	opts.defaults()
	timeout := opts.Config.Doctor.Timeout
	host := opts.Config.Host
	if opts.ConfigErr != nil {
		d := config.Default()
		timeout, host = d.Doctor.Timeout, d.Host
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	checks := runAll(ctx, definitions(ctx, opts), timeout)
	r := Report{
		Schema:      Schema,
		Host:        host,
		Version:     opts.Build.Version,
		Commit:      opts.Build.Commit,
		GeneratedAt: opts.Now().UTC(),
		Status:      OK,
		Checks:      checks,
	}
	for _, c := range checks {
		if c.Status.rank() > r.Status.rank() {
			r.Status = c.Status
		}
	}
	return r
}

// definitions lists the checks in the order they are reported. The ids are a
// contract: fleet health and people's scripts key on them.
func definitions(ctx context.Context, opts Options) []definition {
	cfg := opts.Config
	var p *probe
	if opts.ConfigErr == nil {
		p = newProbe(ctx, cfg, opts.Now, opts.Logger)
	}
	slowReceiver := "the receiver at " + cfg.Receiver.URL + " did not answer in time: check the network and " +
		"`systemctl status cis490-receiver` on the receiver, or raise doctor.timeout in lab-host.toml"
	slowSpool := "the spool's file system did not answer: check " + cfg.Ship.SpoolDir + " (a hung network mount?)"
	local := func(check func() Check) func(context.Context) Check {
		return func(context.Context) Check { return check() }
	}
	defs := []definition{
		{id: "config", run: local(func() Check { return checkConfig(cfg, opts.ConfigErr) })},
		{id: "host-name", run: local(func() Check { return checkHostName(cfg) }), needsConfig: true},
		{id: "receiver-reachable", run: p.reachable, slowHint: slowReceiver, needsConfig: true},
		{id: "token", run: p.token, slowHint: slowReceiver, needsConfig: true},
		{id: "commit-allowed", run: p.commitAllowed, slowHint: slowReceiver, needsConfig: true},
		{id: "client-cert", run: p.clientCert, slowHint: "whether the receiver accepts this certificate waits for its TLS handshake (see receiver-reachable): " + slowReceiver, needsConfig: true},
		{id: "clock-skew", run: p.clockSkew, slowHint: slowReceiver, needsConfig: true},
		{id: "spool", run: local(func() Check { return checkSpool(cfg.Ship.SpoolDir, opts.Now()) }), slowHint: slowSpool, needsConfig: true},
		{id: "disk", run: local(func() Check { return checkDisk(cfg.Ship.SpoolDir) }), slowHint: slowSpool, needsConfig: true},
		{id: "timers", run: func(ctx context.Context) Check {
			return checkTimers(ctx, install.LabHost.Timers(cfg), opts.SystemdDir, opts.Systemctl)
		},
			slowHint: "systemctl did not answer: check `systemctl status` on this host"},
		{id: "update", run: local(func() Check { return checkUpdate(cfg, opts.Now()) }), needsConfig: true},
		{id: "version", run: local(func() Check { return checkVersion(opts.Build) })},
	}
	if opts.ConfigErr != nil {
		for i := range defs {
			if defs[i].needsConfig {
				defs[i].run = local(func() Check { return skipped("not checked: the configuration did not load (see config)") })
			}
		}
	}
	return defs
}

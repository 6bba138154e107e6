// Package install sets a machine up for one role, lab host or receiver (SPEC §6):
// the binary, the units the binary embeds, a commented configuration skeleton, the
// token, and the spool or data folders; then it enables the units. Every step
// compares what is there with what should be, so a second run changes nothing and
// says so.
package install

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/cis490/cis490/internal/config"
	"github.com/cis490/cis490/internal/spool"
	"github.com/cis490/cis490/systemd"
)

// Where things go on the installed system (under Options.Root).
const (
	UnitDir          = "/etc/systemd/system"
	ConfigDir        = "/etc/cis490"
	DefaultTokenFile = "/etc/cis490/token"
	// StateDir is the units' StateDirectory=, the receiver's data folder by default.
	StateDir = "/var/lib/cis490"
	// SpoolDir is the spool the lab-host units may write (ReadWritePaths=).
	SpoolDir = "/var/spool/cis490"
)

// ConfigPath is the configuration the units read: they run without --config.
var ConfigPath = filepath.Join(ConfigDir, config.FileName)

// Role is what a machine is for: the units it gets and those enabled with --now.
type Role struct {
	Name   string // as on the command line
	Title  string // in sentences
	Units  []string
	Enable []string
	// Optional units are enabled too when the configuration asks for what they do.
	Optional []OptionalUnit
}

// OptionalUnit is a timer that only works once the configuration says how: the
// autoupdate needs a release key, the cert-fetch a certificate file to keep.
type OptionalUnit struct {
	Unit string
	// Wanted says whether cfg asks for the unit and, when not, what to set.
	Wanted func(cfg config.Config) (bool, string)
}

var (
	LabHost = Role{
		Name:  "lab-host",
		Title: "lab host",
		Units: []string{"cis490-doctor-check.service", "cis490-doctor-check.timer", "cis490-ship.service", "cis490-ship.timer",
			"cis490-cert-fetch.service", "cis490-cert-fetch.timer", "cis490-autoupdate.service", "cis490-autoupdate.timer"},
		Enable: []string{"cis490-ship.timer", "cis490-doctor-check.timer"},
		// The four self-healing mechanisms of SPEC §1, from one run: these two as soon
		// as the configuration says how.
		Optional: []OptionalUnit{
			{Unit: "cis490-cert-fetch.timer", Wanted: func(cfg config.Config) (bool, string) {
				if cfg.Receiver.CertFile != "" && cfg.Receiver.KeyFile != "" {
					return true, ""
				}
				return false, "cis490-cert-fetch.timer not enabled: set receiver.cert_file and key_file (one file may hold both, e.g. /etc/cis490/client.pem) for cis490 cert renew to keep, then run install again"
			}},
			{Unit: "cis490-autoupdate.timer", Wanted: func(cfg config.Config) (bool, string) {
				if strings.TrimSpace(cfg.Update.PublicKeys) != "" {
					return true, ""
				}
				return false, "cis490-autoupdate.timer not enabled: set update.public_keys to the release key (--update-key KEY writes it when install creates the configuration), then run install again"
			}},
		},
	}
	Receiver = Role{
		Name:  "receiver",
		Title: "receiver",
		// The Pi checks itself daily too: its report is its own row's (SPEC §4.3).
		Units:  []string{"cis490-doctor-check.service", "cis490-doctor-check.timer", "cis490-fleet-health.service", "cis490-fleet-health.timer", "cis490-receiver.service"},
		Enable: []string{"cis490-receiver.service", "cis490-fleet-health.timer", "cis490-doctor-check.timer"},
	}
)

// Timers are the role's timers that cfg asks for: the ones it always enables and
// the optional ones whose configuration is there (doctor's timers check expects
// exactly these).
func (r Role) Timers(cfg config.Config) []string {
	var out []string
	for _, u := range r.Enable {
		if strings.HasSuffix(u, ".timer") {
			out = append(out, u)
		}
	}
	for _, o := range r.Optional {
		if ok, _ := o.Wanted(cfg); ok {
			out = append(out, o.Unit)
		}
	}
	return out
}

// Options say what to install where.
type Options struct {
	Role Role
	// Root is the prefix everything is written under; "" is the running system.
	Root string
	// DryRun prints the plan and changes nothing.
	DryRun bool
	// Binary is the cis490 executable to install as systemd.BinaryPath.
	Binary string
	// Token, when not nil, is stored in receiver.token_file (ReadToken checks it).
	Token []byte
	// UpdateKey, when set, is the minisign public key releases are signed by
	// (update.public_keys): written into a new configuration, checked against an
	// existing one (install never edits it).
	UpdateKey string
	// CA makes the receiver the lab's CA (cis490 ca init) in data_dir/ca/, with the
	// Pi's own server certificate for CANames (none: detected).
	CA      bool
	CANames []string
	// SpoolGroup, when set, is the group of producers that drop files in outbox/.
	SpoolGroup *Group
	// Systemctl, when set, makes systemd load and run the units. The command sets it
	// only without --root: under a prefix, the running systemd is not the target's.
	Systemctl Systemctl
	Out       io.Writer
}

// Group is a Unix group: its name for messages, its id for chown.
type Group struct {
	Name string
	GID  int
}

// UsageError is an error in what was asked for (a configuration that does not load,
// a bad path), as opposed to a failure while doing it.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

func usage(format string, args ...any) error { return &UsageError{fmt.Errorf(format, args...)} }

// Run installs opts.Role. The report goes to opts.Out as each step happens, so a
// failure shows how far it got.
func Run(ctx context.Context, opts Options) (Summary, error) {
	if opts.Root != "" {
		if fi, err := os.Stat(opts.Root); err != nil || !fi.IsDir() {
			return Summary{}, usage("--root %s is not a folder: create it first", opts.Root)
		}
	}
	p, err := newPlan(opts)
	if err != nil {
		return Summary{}, err
	}
	r := &reporter{out: opts.Out, dryRun: opts.DryRun, root: opts.Root}
	r.header(opts.Role.Name)
	for _, s := range p.steps {
		if err := r.do(s); err != nil {
			return r.sum, err
		}
	}
	if opts.Systemctl != nil {
		if err := enableUnits(ctx, opts, p, r); err != nil {
			return r.sum, err
		}
	} else {
		r.note("systemd left alone: on the target, run systemctl enable --now " + join(p.enable))
	}
	r.notes(p.notes)
	r.footer(opts.Role.Title)
	return r.sum, nil
}

// plan is every file and folder step, in order, plus what to tell the operator.
type plan struct {
	steps []step
	notes []string
	// unitSteps are the unit files, to tell whether systemd must reload.
	unitSteps map[string]step
	binary    step
	// enable are the units to enable and start: the role's, and its optional units
	// that the configuration asks for.
	enable []string
}

func newPlan(opts Options) (*plan, error) {
	cfg, cfgExists, err := readConfig(opts.Root)
	if err != nil {
		return nil, err
	}
	p := &plan{unitSteps: map[string]step{}}
	at := func(path string) string { return filepath.Join(opts.Root, path) }

	bin, err := os.ReadFile(opts.Binary)
	if err != nil {
		return nil, fmt.Errorf("read the binary to install: %w", err)
	}
	p.binary = &fileStep{path: at(systemd.BinaryPath), mode: 0o755, data: bin, what: "the binary every unit runs"}
	p.steps = append(p.steps, p.binary, &dirStep{path: at(ConfigDir), mode: 0o755})
	if cfg, err = p.addConfig(opts, cfg, cfgExists, at); err != nil {
		return nil, err
	}
	switch opts.Role.Name {
	case LabHost.Name:
		spoolDir, g, kept := at(cfg.Ship.SpoolDir), opts.SpoolGroup, false
		if g == nil {
			g, kept = earlierSpoolGroup(spoolDir)
		}
		p.steps = append(p.steps, spoolSteps(spoolDir, g, kept)...)
		if kept {
			p.notes = append(p.notes, fmt.Sprintf("the spool keeps group %s from an earlier --spool-group; --spool-group root makes it root's alone", g.Name))
		}
		if filepath.Clean(cfg.Ship.SpoolDir) != SpoolDir {
			p.notes = append(p.notes, unitCannotWrite("ship.spool_dir", cfg.Ship.SpoolDir, SpoolDir, "cis490-ship.service cis490-doctor-check.service"))
		}
	case Receiver.Name:
		// serve.data_dir's default follows whoever runs it; under the units it is
		// their StateDirectory.
		dataDir := receiverDataDir(cfg)
		if dataDir != StateDir {
			p.notes = append(p.notes, unitCannotWrite("serve.data_dir", dataDir, StateDir, "cis490-receiver.service cis490-fleet-health.service"))
		}
		p.steps = append(p.steps, &dirStep{path: at(dataDir), mode: 0o750})
		if opts.CA {
			p.steps = append(p.steps, &caStep{dir: at(filepath.Join(dataDir, "ca")), host: cfg.Host, names: opts.CANames})
		}
		if alerts := cfg.FleetHealth.AlertsFile; alerts != "" && !within(alerts, dataDir) {
			dir := filepath.Dir(alerts)
			p.notes = append(p.notes, fmt.Sprintf("fleet_health.alerts_file is %s, but the units may write only %s: create %s and add ReadWritePaths=%s in a drop-in (systemctl edit cis490-fleet-health.service)",
				alerts, dataDir, dir, dir))
		}
	}
	for _, name := range opts.Role.Units {
		data, err := systemd.Unit(name)
		if err != nil {
			return nil, err
		}
		s := &unitStep{
			file: fileStep{path: at(filepath.Join(UnitDir, name)), mode: 0o644, data: data},
			pkg:  at(filepath.Join(systemd.PackageUnitDir, name)),
		}
		p.unitSteps[name] = s
		p.steps = append(p.steps, s)
	}
	p.enable = append([]string{}, opts.Role.Enable...)
	for _, o := range opts.Role.Optional {
		if ok, why := o.Wanted(cfg); ok {
			p.enable = append(p.enable, o.Unit)
		} else {
			p.notes = append(p.notes, why)
		}
	}
	if !cfgExists {
		p.notes = append(p.notes, nextSteps(opts.Role))
	}
	return p, nil
}

// addConfig adds the configuration skeleton (written only if there is none) and the
// token, stored where the configuration says the client reads it. It returns the
// configuration the units will read: cfg, or the skeleton's values when it is new.
func (p *plan) addConfig(opts Options, cfg config.Config, cfgExists bool, at func(string) string) (config.Config, error) {
	tokenFile := cfg.Receiver.TokenFile
	if tokenFile == "" {
		tokenFile = DefaultTokenFile
	}
	if !filepath.IsAbs(tokenFile) {
		return cfg, usage("receiver.token_file %q in %s must be an absolute path", tokenFile, ConfigPath)
	}
	set := map[string]any{}
	if opts.UpdateKey != "" {
		if err := p.setUpdateKey(opts.UpdateKey, &cfg, cfgExists, set); err != nil {
			return cfg, err
		}
	}
	if opts.CA {
		p.setCAFiles(&cfg, cfgExists, set)
	}
	if opts.Token != nil {
		set["receiver.token_file"] = tokenFile
		if cfgExists && cfg.Receiver.TokenFile == "" {
			p.notes = append(p.notes, fmt.Sprintf("receiver.token_file is not set in %s: add token_file = %q under [receiver], or the token is not used", ConfigPath, tokenFile))
		}
	}
	p.steps = append(p.steps, &fileStep{path: at(ConfigPath), mode: 0o644, data: Skeleton(set), keep: true, what: "commented defaults"})
	if opts.Token != nil {
		token := append(append([]byte{}, opts.Token...), '\n')
		p.steps = append(p.steps, &fileStep{path: at(tokenFile), mode: 0o600, data: token, what: "the bearer token", secret: true})
	}
	return cfg, nil
}

func unitCannotWrite(key, dir, allowed, units string) string {
	return fmt.Sprintf("%s is %s, but the units may write only %s: add ReadWritePaths=%s in a drop-in (systemctl edit %s)",
		key, dir, allowed, dir, units)
}

// readConfig reads the configuration the units will read, the one under root; none
// is fine (the defaults apply, and the skeleton will be written).
func readConfig(root string) (config.Config, bool, error) {
	path := filepath.Join(root, ConfigPath)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return config.Default(), false, nil
	}
	cfg, err := config.Load(config.New(), path)
	if err != nil {
		return cfg, true, usage("%w (fix it, then run install again)", err)
	}
	for _, p := range []struct {
		key, path string
		optional  bool
	}{
		{"ship.spool_dir", cfg.Ship.SpoolDir, false},
		{"serve.data_dir", cfg.Serve.DataDir, false},
		{"fleet_health.alerts_file", cfg.FleetHealth.AlertsFile, true},
	} {
		if !(p.optional && p.path == "") && !filepath.IsAbs(p.path) {
			return cfg, true, usage("%s %q in %s must be an absolute path", p.key, p.path, path)
		}
	}
	return cfg, true, nil
}

// within reports whether path is dir or inside it.
func within(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

// spoolSteps make the spool root's: producers that are not root get outbox/ through
// their group g (setgid, so what they drop stays in the group), and may look into the
// other folders to see what happened to their files. Group root (--spool-group root)
// is root alone. kept: g is the spool's from an earlier --spool-group.
func spoolSteps(dir string, g *Group, kept bool) []step {
	var steps []step
	for _, sub := range []string{"", spool.Outbox, spool.Sent, spool.Rejected} {
		s := &dirStep{path: filepath.Join(dir, sub), mode: 0o750, group: g, groupKept: kept}
		if g != nil && g.GID != 0 && sub == spool.Outbox {
			s.mode = 0o770 | fs.ModeSetgid
		}
		steps = append(steps, s)
	}
	return steps
}

// earlierSpoolGroup is the producers' group an earlier --spool-group gave outbox/:
// a run without the flag keeps it (after an upgrade nobody repeats the flag, and
// producers must keep writing). Install's own folders have its group: root's, or
// under --root run by a user, that user's.
func earlierSpoolGroup(dir string) (*Group, bool) {
	fi, err := os.Lstat(filepath.Join(dir, spool.Outbox))
	if err != nil || !fi.IsDir() {
		return nil, false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || st.Gid == 0 || int(st.Gid) == os.Getegid() {
		return nil, false
	}
	return &Group{Name: groupName(int(st.Gid)), GID: int(st.Gid)}, true
}

func nextSteps(r Role) string {
	if r.Name == Receiver.Name {
		return "next: edit " + ConfigPath + " ([serve] listen, tokens_file, [serve.tls]), mint tokens with `cis490 token new --host NAME`, then `systemctl restart cis490-receiver.service`"
	}
	return "next: edit " + ConfigPath + " (host, [receiver] url, ca_file, cert_file, key_file), then check with `cis490 doctor`"
}

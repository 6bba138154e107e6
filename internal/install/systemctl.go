package install

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// Systemctl runs systemctl with args and returns what it printed on standard output.
type Systemctl func(ctx context.Context, args ...string) (string, error)

// ExecSystemctl runs the systemctl found on PATH.
func ExecSystemctl(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "systemctl", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			err = fmt.Errorf("%w: %s", err, msg)
		}
		return string(out), fmt.Errorf("systemctl %s: %w", strings.Join(args, " "), err)
	}
	return string(out), nil
}

// enableUnits makes systemd see the units and run the role's timers and service,
// calling only what the current state needs: the states are asked first, so a
// second run changes nothing.
func enableUnits(ctx context.Context, opts Options, p *plan, r *reporter) error {
	sc := opts.Systemctl
	reload := false
	for _, s := range p.unitSteps {
		_, changed := r.changed[s]
		reload = reload || changed
	}
	var start, restart []string
	states := map[string]string{}
	for _, u := range p.enable {
		// Both exit non-zero for "disabled" and "inactive": the word is the answer.
		enabled, _ := sc(ctx, "is-enabled", u)
		active, _ := sc(ctx, "is-active", u)
		enabled, active = word(enabled), word(active)
		states[u] = enabled + ", " + active
		switch {
		case enabled != "enabled" || !running(active):
			start = append(start, u)
		case strings.HasSuffix(u, ".service") && (rewritten(r.changed[p.binary]) || rewritten(r.changed[p.unitSteps[u]])):
			// A timer's next run picks the new binary up by itself; a service
			// runs the old one until it restarts. A copy removed in favour of the
			// package's equal unit changes nothing it runs.
			restart = append(restart, u)
		default:
			r.line("unchanged", u, states[u])
		}
	}
	if len(start) > 0 {
		reload = true
	}
	if reload {
		r.systemd("ran", "would run", "systemctl daemon-reload", "")
		if !opts.DryRun {
			if _, err := sc(ctx, "daemon-reload"); err != nil {
				return systemdFailed(err)
			}
		}
	}
	for _, u := range start {
		r.systemd("started", "would start", u, "systemctl enable --now; was "+states[u])
		if !opts.DryRun {
			if _, err := sc(ctx, "enable", "--now", u); err != nil {
				return systemdFailed(err)
			}
		}
	}
	for _, u := range restart {
		r.systemd("restarted", "would restart", u, "systemctl try-restart: the binary or its unit changed")
		if !opts.DryRun {
			if _, err := sc(ctx, "try-restart", u); err != nil {
				return systemdFailed(err)
			}
		}
	}
	return nil
}

func rewritten(a action) bool { return a == create || a == update }

func word(out string) string {
	if w := strings.TrimSpace(out); w != "" {
		return w
	}
	return "unknown"
}

func running(state string) bool {
	return state == "active" || state == "activating" || state == "reloading"
}

func systemdFailed(err error) error {
	return fmt.Errorf("%w\nThe files are in place. Fix what systemd reports and run install again; "+
		"without a running systemd (a container, an image being built) use --root DIR instead", err)
}

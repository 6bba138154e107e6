package doctor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// checkTimers checks the units that make a lab host ship, report, renew its
// certificate and update on its own: those install lab-host enables for this
// configuration (install.LabHost.Timers).
func checkTimers(ctx context.Context, timers []string, systemdDir string, systemctl func(context.Context, ...string) (string, error)) Check {
	if _, err := os.Stat(systemdDir); err != nil {
		return skipped("not checked: systemd is not running on this host (" + systemdDir + " does not exist)")
	}
	details := map[string]any{}
	var problems []string
	for _, unit := range timers {
		// Both commands exit non-zero for "disabled" or "inactive": the word they
		// print is the answer, the exit code only repeats it.
		enabled, err := systemctl(ctx, "is-enabled", unit)
		if errors.Is(err, exec.ErrNotFound) {
			return failed("systemctl not found, yet "+systemdDir+" exists", "check the PATH cis490 runs with", details)
		}
		active, _ := systemctl(ctx, "is-active", unit)
		enabled, active = orUnknown(enabled), orUnknown(active)
		details[unit] = map[string]any{"enabled": enabled, "active": active}
		if enabled != "enabled" || active != "active" {
			problems = append(problems, fmt.Sprintf("%s is %s and %s", unit, enabled, active))
		}
	}
	if len(problems) > 0 {
		// A warning, not a failure: a host may ship with `cis490 ship --watch` instead.
		return warned(strings.Join(problems, "; "),
			"`systemctl enable --now "+strings.Join(timers, " ")+"` (or `cis490 install lab-host`, which installs and enables them)", details)
	}
	return ok(strings.Join(timers, " and ")+" are enabled and active", details)
}

func orUnknown(state string) string {
	state = strings.TrimSpace(state)
	if state == "" {
		return "not-found"
	}
	return state
}

// systemctl runs the real systemctl and returns what it printed on standard output.
func systemctl(ctx context.Context, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, "systemctl", args...).Output()
	return string(out), err
}

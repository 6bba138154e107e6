package ship

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// AutoupdateUnit is the service that moves this host to the release the gate allows
// (SPEC §4.5); a 426 starts it.
const AutoupdateUnit = "cis490-autoupdate.service"

// StartAutoupdate is what ship does about a 426: under systemd, it starts
// AutoupdateUnit without waiting for it (the update replaces this very binary, and
// this run has nothing left to do), and says so; anywhere else it says what to run.
// The returned sentence is for the run's log; an error means systemd was asked and
// refused (the unit is not installed, say), and says what to do instead.
func StartAutoupdate(ctx context.Context) (string, error) {
	// systemd sets INVOCATION_ID for every unit it runs; a shell does not.
	if os.Getenv("INVOCATION_ID") == "" {
		return "run `cis490 update` to move to the allowed release (under systemd, ship starts " + AutoupdateUnit + " itself)", nil
	}
	cmd := exec.CommandContext(ctx, "systemctl", "start", "--no-block", AutoupdateUnit)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return "", fmt.Errorf("start %s to move to the allowed release: %s (install it with `cis490 install lab-host` and an update key, or run `cis490 update`)", AutoupdateUnit, msg)
	}
	return "started " + AutoupdateUnit + " to move to the allowed release", nil
}

package doctor

import (
	"context"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// fakeSystemctl answers like systemctl from a table of "verb unit" → output.
func fakeSystemctl(states map[string]string) func(context.Context, ...string) (string, error) {
	return func(_ context.Context, args ...string) (string, error) {
		out, ok := states[strings.Join(args, " ")]
		if !ok {
			return "", &exec.ExitError{}
		}
		return out + "\n", nil
	}
}

func TestCheckTimersSkipsWithoutSystemd(t *testing.T) {
	t.Parallel()
	c := checkTimers(context.Background(), labTimers, "/nonexistent/run/systemd/system", fakeSystemctl(nil))
	assert.Equal(t, Skip, c.Status)
	assert.Contains(t, c.Summary, "systemd is not running")
}

func TestCheckTimers(t *testing.T) {
	t.Parallel()
	healthy := map[string]string{
		"is-enabled cis490-ship.timer": "enabled", "is-active cis490-ship.timer": "active",
		"is-enabled cis490-doctor-check.timer": "enabled", "is-active cis490-doctor-check.timer": "active",
	}
	c := checkTimers(context.Background(), labTimers, t.TempDir(), fakeSystemctl(healthy))
	assert.Equal(t, OK, c.Status, c.Summary)

	disabled := map[string]string{
		"is-enabled cis490-ship.timer": "disabled", "is-active cis490-ship.timer": "inactive",
		"is-enabled cis490-doctor-check.timer": "enabled", "is-active cis490-doctor-check.timer": "active",
	}
	c = checkTimers(context.Background(), labTimers, t.TempDir(), fakeSystemctl(disabled))
	assert.Equal(t, Warn, c.Status)
	assert.Equal(t, "cis490-ship.timer is disabled and inactive", c.Summary)
	assert.Contains(t, c.Hint, "systemctl enable --now cis490-ship.timer cis490-doctor-check.timer")

	// Never installed: systemctl prints nothing on standard output.
	c = checkTimers(context.Background(), labTimers, t.TempDir(), fakeSystemctl(map[string]string{}))
	assert.Equal(t, Warn, c.Status)
	assert.Contains(t, c.Summary, "cis490-doctor-check.timer is not-found")
	assert.Contains(t, c.Hint, "cis490 install lab-host")
}

func TestCheckTimersWithoutSystemctl(t *testing.T) {
	t.Parallel()
	missing := func(context.Context, ...string) (string, error) {
		return "", &exec.Error{Name: "systemctl", Err: exec.ErrNotFound}
	}
	c := checkTimers(context.Background(), labTimers, t.TempDir(), missing)
	assert.Equal(t, Fail, c.Status)
	assert.Contains(t, c.Summary, "systemctl not found")
}

// labTimers are the timers of a lab host whose configuration asks for no certificate
// renewal and no autoupdate.
var labTimers = []string{"cis490-ship.timer", "cis490-doctor-check.timer"}

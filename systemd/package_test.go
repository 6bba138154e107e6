package systemd

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// repo is the repository this file is in.
func repo(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(file))
}

// The .deb and install agree on where things are: one binary path, and the unit
// folder that install looks in for the package's units.
func TestPackageLayoutIsTheUnits(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join(repo(t), ".goreleaser.yaml"))
	require.NoError(t, err)
	cfg := string(b)
	assert.Contains(t, cfg, "\n    bindir: "+filepath.Dir(BinaryPath)+"\n")
	for _, ext := range []string{"service", "timer"} {
		assert.Contains(t, cfg, "\n      - src: systemd/*."+ext+"\n        dst: "+PackageUnitDir+"/\n")
	}
	for _, name := range Names() {
		// The maintainer scripts find the units by this pattern.
		assert.True(t, strings.HasPrefix(name, "cis490-"), name)
	}
}

// stubSystemctl logs each call and answers from $STATE: a file <unit>.enabled or
// <unit>.active says so.
const stubSystemctl = `#!/bin/sh
echo "$*" >>"$LOG"
case "$1" in
is-enabled) if [ -e "$STATE/$2.enabled" ]; then echo enabled; else echo disabled; exit 1; fi ;;
is-active) [ "$2" = --quiet ] && shift; [ -e "$STATE/$2.active" ] || exit 3 ;;
esac
exit 0
`

// maintainerScript runs packaging/deb/<script> args in a mount namespace of its own,
// where /run/systemd/system exists (as on a machine booted with systemd) and the
// package's unit folder holds these units, with a stub systemctl first on PATH. It
// returns the systemctl calls.
func maintainerScript(t *testing.T, enabled, active []string, script string, args ...string) []string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root, to mount over /run and the unit folder in a private mount namespace; CI runs as root")
	}
	if out, err := exec.Command("unshare", "--mount", "--propagation", "private", "true").CombinedOutput(); err != nil {
		t.Skipf("cannot make a mount namespace here (unshare: %v %s)", err, out)
	}
	dir := t.TempDir()
	for _, sub := range []string{"bin", "state", "units"} {
		require.NoError(t, os.Mkdir(filepath.Join(dir, sub), 0o755))
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "bin/systemctl"), []byte(stubSystemctl), 0o755))
	for _, name := range Names() {
		b, err := Unit(name)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, "units", name), b, 0o644))
	}
	for _, u := range enabled {
		require.NoError(t, os.WriteFile(filepath.Join(dir, "state", u+".enabled"), nil, 0o644))
	}
	for _, u := range active {
		require.NoError(t, os.WriteFile(filepath.Join(dir, "state", u+".active"), nil, 0o644))
	}
	const setup = `set -e
mount -t tmpfs tmpfs /run
mkdir -p /run/systemd/system
mkdir -p "$UNITS_DIR"
mount --bind "$1/units" "$UNITS_DIR"
shift
exec sh "$@"
`
	cmd := exec.Command("unshare", append([]string{"--mount", "--propagation", "private", "sh", "-c", setup, "sh", dir,
		filepath.Join(repo(t), "packaging/deb", script)}, args...)...)
	cmd.Env = []string{"PATH=" + filepath.Join(dir, "bin") + ":" + os.Getenv("PATH"), "LOG=" + filepath.Join(dir, "log"),
		"STATE=" + filepath.Join(dir, "state"), "UNITS_DIR=" + PackageUnitDir}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Run(), "%s %v: %s", script, args, out.String())
	log, err := os.ReadFile(filepath.Join(dir, "log"))
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	return strings.Split(strings.TrimSuffix(string(log), "\n"), "\n")
}

func started(calls []string) []string {
	var units []string
	for _, c := range calls {
		if u, ok := strings.CutPrefix(c, "start "); ok {
			units = append(units, u)
		}
	}
	return units
}

// What the receiver and timers need after dpkg -i, in each case issue 11 found: over
// a receiver that install set up the receiver must move to the new binary, and after
// dpkg -r then dpkg -i what was enabled must run again without a reboot.
func TestPostinstRestartsAndStartsWhatIsEnabled(t *testing.T) {
	t.Parallel()
	receiver := []string{"cis490-receiver.service", "cis490-fleet-health.timer", "cis490-doctor-check.timer"}
	for _, tc := range []struct {
		name            string
		enabled, active []string
		args            []string
		started         []string
	}{
		{name: "first install, nothing enabled", args: []string{"configure", ""}},
		{name: "first install over install receiver, running", enabled: receiver, active: receiver, args: []string{"configure", ""}},
		{name: "upgrade of a running receiver", enabled: receiver, active: receiver, args: []string{"configure", "0.1.0"}},
		{name: "reinstall after dpkg -r", enabled: receiver, args: []string{"configure", "0.1.0"}, started: receiver},
		{name: "reinstall on a lab host, one timer stopped by hand", enabled: []string{"cis490-ship.timer", "cis490-doctor-check.timer"},
			active: []string{"cis490-doctor-check.timer"}, args: []string{"configure", "0.1.0"}, started: []string{"cis490-ship.timer"}},
		{name: "a removal that failed", enabled: receiver, args: []string{"abort-remove"}, started: receiver},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			calls := maintainerScript(t, tc.enabled, tc.active, "postinst", tc.args...)
			require.GreaterOrEqual(t, len(calls), 2, calls)
			assert.Equal(t, []string{"daemon-reload", "try-restart cis490-receiver.service"}, calls[:2],
				"a running receiver restarts on the new binary, on a first install as on an upgrade")
			assert.ElementsMatch(t, tc.started, started(calls))
			for _, c := range calls {
				assert.False(t, strings.HasPrefix(c, "enable ") || strings.HasPrefix(c, "reenable "), "the package enables nothing, install does: %s", c)
				assert.False(t, strings.HasPrefix(c, "start ") && strings.HasSuffix(c, ".service") && c != "start cis490-receiver.service",
					"oneshot services are their timers' to start: %s", c)
			}
		})
	}
}

func TestPrermStopsEveryUnitOnRemovalOnly(t *testing.T) {
	t.Parallel()
	calls := maintainerScript(t, nil, nil, "prerm", "remove")
	require.Len(t, calls, 1)
	stop := strings.Fields(calls[0])
	assert.Equal(t, "stop", stop[0])
	assert.ElementsMatch(t, Names(), stop[1:], "timers, the receiver and any oneshot run in progress")

	assert.Empty(t, maintainerScript(t, nil, nil, "prerm", "upgrade", "0.2.0"), "an upgrade stops nothing: postinst restarts")
}

func TestPostrmReloads(t *testing.T) {
	t.Parallel()
	for _, arg := range []string{"remove", "purge", "upgrade"} {
		assert.Equal(t, []string{"daemon-reload"}, maintainerScript(t, nil, nil, "postrm", arg), arg)
	}
}

// Without systemd running (a container, a chroot) or under dpkg --root, the scripts
// leave systemd alone and succeed.
func TestMaintainerScriptsWithoutSystemd(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "systemctl"), []byte("#!/bin/sh\necho called >>\"$LOG\"\nexit 1\n"), 0o755))
	log := filepath.Join(dir, "log")
	for _, script := range []string{"postinst configure", "prerm remove", "postrm remove"} {
		args := strings.Fields(script)
		cmd := exec.Command("sh", append([]string{filepath.Join(repo(t), "packaging/deb", args[0])}, args[1:]...)...)
		cmd.Env = []string{"PATH=" + dir + ":" + os.Getenv("PATH"), "LOG=" + log, "DPKG_ROOT=/tmp/image"}
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s: %s", script, out)
	}
	assert.NoFileExists(t, log)
}

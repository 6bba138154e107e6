package install

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/systemd"
)

// fakeBinary stands in for the cis490 executable install copies.
func fakeBinary(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "cis490")
	require.NoError(t, os.WriteFile(p, []byte(content), 0o700))
	return p
}

func run(t *testing.T, opts Options) (Summary, string) {
	t.Helper()
	var out bytes.Buffer
	opts.Out = &out
	sum, err := Run(context.Background(), opts)
	require.NoError(t, err, out.String())
	return sum, out.String()
}

// tree lists every path under root, in walk order, with its mode.
func tree(t *testing.T, root string) []string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		lines = append(lines, modeString(fi.Mode())+" "+rel)
		return nil
	})
	require.NoError(t, err)
	return lines
}

// fileState is everything a rewrite would change: content, mode and modification time.
type fileState struct {
	mode  fs.FileMode
	mtime time.Time
	data  string
}

func snapshot(t *testing.T, root string) map[string]fileState {
	t.Helper()
	m := map[string]fileState{}
	require.NoError(t, filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		s := fileState{mode: fi.Mode(), mtime: fi.ModTime()}
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			s.data = string(b)
		}
		m[p] = s
		return nil
	}))
	return m
}

func TestInstallTree(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		role Role
		// changes are the steps a first run reports: the parents (etc, usr/bin, …)
		// are created on the way, not reported.
		changes int
		want    []string
	}{
		{LabHost, 16, []string{
			"0755 etc",
			"0755 etc/cis490",
			"0644 etc/cis490/lab-host.toml",
			"0600 etc/cis490/token",
			"0755 etc/systemd",
			"0755 etc/systemd/system",
			"0644 etc/systemd/system/cis490-autoupdate.service",
			"0644 etc/systemd/system/cis490-autoupdate.timer",
			"0644 etc/systemd/system/cis490-cert-fetch.service",
			"0644 etc/systemd/system/cis490-cert-fetch.timer",
			"0644 etc/systemd/system/cis490-doctor-check.service",
			"0644 etc/systemd/system/cis490-doctor-check.timer",
			"0644 etc/systemd/system/cis490-ship.service",
			"0644 etc/systemd/system/cis490-ship.timer",
			"0755 usr",
			"0755 usr/bin",
			"0755 usr/bin/cis490",
			"0755 var",
			"0755 var/spool",
			"0750 var/spool/cis490",
			"0750 var/spool/cis490/outbox",
			"0750 var/spool/cis490/rejected",
			"0750 var/spool/cis490/sent",
		}},
		{Receiver, 10, []string{
			"0755 etc",
			"0755 etc/cis490",
			"0644 etc/cis490/lab-host.toml",
			"0600 etc/cis490/token",
			"0755 etc/systemd",
			"0755 etc/systemd/system",
			"0644 etc/systemd/system/cis490-doctor-check.service",
			"0644 etc/systemd/system/cis490-doctor-check.timer",
			"0644 etc/systemd/system/cis490-fleet-health.service",
			"0644 etc/systemd/system/cis490-fleet-health.timer",
			"0644 etc/systemd/system/cis490-receiver.service",
			"0755 usr",
			"0755 usr/bin",
			"0755 usr/bin/cis490",
			"0755 var",
			"0755 var/lib",
			"0750 var/lib/cis490",
		}},
	} {
		t.Run(tc.role.Name, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			opts := Options{Role: tc.role, Root: root, Binary: fakeBinary(t, "binary v1"), Token: []byte("c490_secret")}
			sum, out := run(t, opts)
			assert.Equal(t, tc.want, tree(t, root))
			assert.Equal(t, tc.changes, sum.Changed, out)
			assert.Contains(t, out, "changes made")

			bin, err := os.ReadFile(filepath.Join(root, "usr/bin/cis490"))
			require.NoError(t, err)
			assert.Equal(t, "binary v1", string(bin))
			tok, err := os.ReadFile(filepath.Join(root, "etc/cis490/token"))
			require.NoError(t, err)
			assert.Equal(t, "c490_secret\n", string(tok))
			cfg, err := os.ReadFile(filepath.Join(root, "etc/cis490/lab-host.toml"))
			require.NoError(t, err)
			assert.Equal(t, string(Skeleton(map[string]any{"receiver.token_file": DefaultTokenFile})), string(cfg))
			assert.Contains(t, string(cfg), "\ntoken_file = \"/etc/cis490/token\"\n", "the stored token is the one the config names")
			for _, u := range tc.role.Units {
				want, err := systemd.Unit(u)
				require.NoError(t, err)
				got, err := os.ReadFile(filepath.Join(root, "etc/systemd/system", u))
				require.NoError(t, err)
				assert.Equal(t, string(want), string(got), u)
			}

			before := snapshot(t, root)
			sum, out = run(t, opts)
			assert.Zero(t, sum.Changed, out)
			assert.Contains(t, out, "nothing to change: the "+tc.role.Title+" is installed")
			assert.NotContains(t, out, "created")
			assert.NotContains(t, out, "updated")
			assert.Equal(t, before, snapshot(t, root), "a second run rewrites nothing")
		})
	}
}

func TestInstallKeepsAnExistingConfig(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	cfgPath := filepath.Join(root, "etc/cis490/lab-host.toml")
	require.NoError(t, os.MkdirAll(filepath.Dir(cfgPath), 0o755))
	mine := "host = \"lab-42\"\n[ship]\nspool_dir = \"/srv/spool\"\n"
	require.NoError(t, os.WriteFile(cfgPath, []byte(mine), 0o640))

	_, out := run(t, Options{Role: LabHost, Root: root, Binary: fakeBinary(t, "bin"), Token: []byte("tok")})

	got, err := os.ReadFile(cfgPath)
	require.NoError(t, err)
	assert.Equal(t, mine, string(got))
	fi, err := os.Stat(cfgPath)
	require.NoError(t, err)
	assert.Equal(t, fs.FileMode(0o640), fi.Mode().Perm(), "not even its mode is touched")
	assert.Contains(t, out, "kept          /etc/cis490/lab-host.toml")
	assert.DirExists(t, filepath.Join(root, "srv/spool/outbox"), "the spool is where the config says")
	assert.NoDirExists(t, filepath.Join(root, "var/spool/cis490"))
	assert.Contains(t, out, "ReadWritePaths=/srv/spool", "the units cannot write there without a drop-in")
	assert.Contains(t, out, `receiver.token_file is not set in /etc/cis490/lab-host.toml: add token_file = "/etc/cis490/token"`)
	assert.NotContains(t, out, "next: edit", "next steps are for a new config")
}

func TestInstallRefusesABrokenConfig(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	cfgPath := filepath.Join(root, "etc/cis490/lab-host.toml")
	require.NoError(t, os.MkdirAll(filepath.Dir(cfgPath), 0o755))
	require.NoError(t, os.WriteFile(cfgPath, []byte("[ship]\nspool_dri = \"/x\"\n"), 0o644))

	_, err := Run(context.Background(), Options{Role: LabHost, Root: root, Binary: fakeBinary(t, "bin"), Out: &bytes.Buffer{}})
	require.Error(t, err)
	var ue *UsageError
	assert.ErrorAs(t, err, &ue)
	assert.Contains(t, err.Error(), "ship.spool_dri")
	assert.Equal(t, []string{"0755 etc", "0755 etc/cis490", "0644 etc/cis490/lab-host.toml"}, tree(t, root), "nothing written")
}

func TestInstallRepairsAndReplaces(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	opts := Options{Role: LabHost, Root: root, Binary: fakeBinary(t, "v1"), Token: []byte("old")}
	run(t, opts)

	outbox := filepath.Join(root, "var/spool/cis490/outbox")
	require.NoError(t, os.Chmod(outbox, 0o777))
	unit := filepath.Join(root, "etc/systemd/system/cis490-ship.timer")
	require.NoError(t, os.WriteFile(unit, []byte("[Timer]\nOnUnitActiveSec=1h\n"), 0o644))
	opts.Binary, opts.Token = fakeBinary(t, "v2"), []byte("tok-8f3a2c")

	sum, out := run(t, opts)
	assert.Equal(t, 4, sum.Changed, out)
	assert.Contains(t, out, "updated       /var/spool/cis490/outbox  (mode 0777 → 0750)")
	assert.Contains(t, out, "updated       /etc/systemd/system/cis490-ship.timer  (content differs")
	assert.Contains(t, out, "updated       /usr/bin/cis490")
	assert.Contains(t, out, "updated       /etc/cis490/token  (a different token")
	assert.NotContains(t, out, "tok-8f3a2c", "a token never reaches the output")
	tok, err := os.ReadFile(filepath.Join(root, "etc/cis490/token"))
	require.NoError(t, err)
	assert.Equal(t, "tok-8f3a2c\n", string(tok))
	want, _ := systemd.Unit("cis490-ship.timer")
	got, err := os.ReadFile(unit)
	require.NoError(t, err)
	assert.Equal(t, string(want), string(got))
}

// producers is a group that is not root's, that the test may chgrp to: as root (CI),
// Debian's "users"; otherwise the test's own group.
func producers(t *testing.T) *Group {
	t.Helper()
	if os.Getegid() != 0 {
		return &Group{Name: groupName(os.Getegid()), GID: os.Getegid()}
	}
	g, err := user.LookupGroup("users")
	if err != nil {
		t.Skipf("no group users to chgrp the spool to: %v", err)
	}
	gid, err := strconv.Atoi(g.Gid)
	require.NoError(t, err)
	return &Group{Name: g.Name, GID: gid}
}

func spoolModes(t *testing.T, root string) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, sub := range []string{"", "outbox", "sent", "rejected"} {
		fi, err := os.Stat(filepath.Join(root, "var/spool/cis490", sub))
		require.NoError(t, err)
		m[sub] = fmt.Sprintf("%s %d", modeString(fi.Mode()), fi.Sys().(*syscall.Stat_t).Gid)
	}
	return m
}

func TestInstallSpoolGroup(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	g := producers(t)
	run(t, Options{Role: LabHost, Root: root, Binary: fakeBinary(t, "bin"), SpoolGroup: g})

	gid := strconv.Itoa(g.GID)
	assert.Equal(t, map[string]string{"": "0750 " + gid, "outbox": "2770 " + gid, "sent": "0750 " + gid, "rejected": "0750 " + gid},
		spoolModes(t, root))
}

// The README says to run install again after every upgrade, and nobody repeats
// --spool-group each time: a run without it must not lock the producers out.
func TestInstallAgainWithoutSpoolGroupKeepsIt(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root: install creates folders with its own group, and only root can chgrp them to another group and back")
	}
	root := t.TempDir()
	g := producers(t)
	opts := Options{Role: LabHost, Root: root, Binary: fakeBinary(t, "bin")}
	withGroup := opts
	withGroup.SpoolGroup = g
	run(t, withGroup)
	gid := strconv.Itoa(g.GID)
	grouped := map[string]string{"": "0750 " + gid, "outbox": "2770 " + gid, "sent": "0750 " + gid, "rejected": "0750 " + gid}
	require.Equal(t, grouped, spoolModes(t, root))

	sum, out := run(t, opts)
	assert.Equal(t, grouped, spoolModes(t, root), "producers can still write to outbox/")
	assert.Zero(t, sum.Changed, out)
	assert.Contains(t, out, "kept          /var/spool/cis490/outbox  (folder 2770, group "+g.Name+", from an earlier --spool-group)")
	assert.Contains(t, out, "kept          /var/spool/cis490/sent  (folder 0750, group "+g.Name+", from an earlier --spool-group)")
	assert.Contains(t, out, "--spool-group root")
	assert.Contains(t, out, "nothing to change")

	// Repairs keep the group too.
	require.NoError(t, os.Chmod(filepath.Join(root, "var/spool/cis490/outbox"), 0o777))
	_, out = run(t, opts)
	assert.Equal(t, grouped, spoolModes(t, root))
	assert.Contains(t, out, "updated       /var/spool/cis490/outbox  (mode 0777 → 2770")

	// --spool-group root is how the group is given up.
	withRoot := opts
	withRoot.SpoolGroup = &Group{Name: "root", GID: 0}
	sum, out = run(t, withRoot)
	rootOnly := map[string]string{"": "0750 0", "outbox": "0750 0", "sent": "0750 0", "rejected": "0750 0"}
	assert.Equal(t, rootOnly, spoolModes(t, root))
	assert.Equal(t, 4, sum.Changed, out)
	assert.Contains(t, out, "updated       /var/spool/cis490/outbox  (mode 2770 → 0750; group "+g.Name+" → root)")
	sum, out = run(t, opts)
	assert.Equal(t, rootOnly, spoolModes(t, root))
	assert.Zero(t, sum.Changed, out)
	assert.NotContains(t, out, "kept          /var/spool")
}

func TestInstallDryRunChangesNothing(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	sc := newFakeSystemctl()
	sum, out := run(t, Options{Role: LabHost, Root: root, DryRun: true, Binary: fakeBinary(t, "bin"), Token: []byte("t"), Systemctl: sc.run})
	assert.Empty(t, tree(t, root))
	assert.Equal(t, 16+3, sum.Changed, out, "16 files and folders, daemon-reload, 2 timers")
	assert.Contains(t, out, "(dry run: nothing is changed)")
	assert.Contains(t, out, "would create  /etc/cis490/lab-host.toml")
	assert.Contains(t, out, "would start   cis490-ship.timer")
	assert.Contains(t, out, "would run     systemctl daemon-reload")
	assert.Contains(t, out, "run again without --dry-run")
	assert.Equal(t, []string{
		"is-enabled cis490-ship.timer", "is-active cis490-ship.timer",
		"is-enabled cis490-doctor-check.timer", "is-active cis490-doctor-check.timer",
	}, sc.calls(), "only questions, no changes")
}

func TestInstallRefusesAMissingRoot(t *testing.T) {
	t.Parallel()
	_, err := Run(context.Background(), Options{Role: LabHost, Root: filepath.Join(t.TempDir(), "nope"), Binary: fakeBinary(t, "bin"), Out: &bytes.Buffer{}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "create it first")
}

// fakeSystemctl answers like systemctl on a machine where nothing is enabled yet,
// and remembers what enable --now did. Unit tests use it; the end-to-end test runs
// the real command against a stand-in systemctl script on PATH.
type fakeSystemctl struct {
	mu     sync.Mutex
	log    []string
	on     map[string]bool
	failOn string
}

func newFakeSystemctl() *fakeSystemctl { return &fakeSystemctl{on: map[string]bool{}} }

func (f *fakeSystemctl) run(_ context.Context, args ...string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	call := strings.Join(args, " ")
	f.log = append(f.log, call)
	if f.failOn != "" && strings.HasPrefix(call, f.failOn) {
		return "", errors.New("systemctl " + call + ": exit status 1: System has not been booted with systemd as init system (PID 1). Can't operate.")
	}
	switch args[0] {
	case "is-enabled":
		if f.on[args[1]] {
			return "enabled\n", nil
		}
		return "disabled\n", errors.New("exit status 1")
	case "is-active":
		if f.on[args[1]] {
			return "active\n", nil
		}
		return "inactive\n", errors.New("exit status 3")
	case "enable":
		f.on[args[2]] = true
	}
	return "", nil
}

func (f *fakeSystemctl) calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.log...)
}

func (f *fakeSystemctl) reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.log = nil
}

func TestInstallCallsSystemctl(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	sc := newFakeSystemctl()
	opts := Options{Role: LabHost, Root: root, Binary: fakeBinary(t, "bin"), Systemctl: sc.run}

	_, out := run(t, opts)
	assert.Equal(t, []string{
		"is-enabled cis490-ship.timer", "is-active cis490-ship.timer",
		"is-enabled cis490-doctor-check.timer", "is-active cis490-doctor-check.timer",
		"daemon-reload",
		"enable --now cis490-ship.timer",
		"enable --now cis490-doctor-check.timer",
	}, sc.calls())
	assert.Contains(t, out, "started       cis490-ship.timer  (systemctl enable --now; was disabled, inactive)")

	sc.reset()
	sum, out := run(t, opts)
	assert.Zero(t, sum.Changed, out)
	assert.Equal(t, []string{
		"is-enabled cis490-ship.timer", "is-active cis490-ship.timer",
		"is-enabled cis490-doctor-check.timer", "is-active cis490-doctor-check.timer",
	}, sc.calls(), "nothing to reload or enable the second time")
	assert.Contains(t, out, "unchanged     cis490-ship.timer  (enabled, active)")
}

func TestInstallRestartsAReceiverOnANewBinary(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	sc := newFakeSystemctl()
	opts := Options{Role: Receiver, Root: root, Binary: fakeBinary(t, "v1"), Systemctl: sc.run}
	run(t, opts)

	sc.reset()
	opts.Binary = fakeBinary(t, "v2")
	_, out := run(t, opts)
	assert.Equal(t, []string{
		"is-enabled cis490-receiver.service", "is-active cis490-receiver.service",
		"is-enabled cis490-fleet-health.timer", "is-active cis490-fleet-health.timer",
		"is-enabled cis490-doctor-check.timer", "is-active cis490-doctor-check.timer",
		"try-restart cis490-receiver.service",
	}, sc.calls(), "the timer picks the new binary up at its next run; the service must restart")
	assert.Contains(t, out, "restarted     cis490-receiver.service")
}

func TestInstallSystemctlFailure(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	sc := newFakeSystemctl()
	sc.failOn = "daemon-reload"
	var out bytes.Buffer
	_, err := Run(context.Background(), Options{Role: LabHost, Root: root, Binary: fakeBinary(t, "bin"), Systemctl: sc.run, Out: &out})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "System has not been booted with systemd")
	assert.Contains(t, err.Error(), "The files are in place")
	assert.Contains(t, err.Error(), "--root DIR")
	assert.FileExists(t, filepath.Join(root, "etc/systemd/system/cis490-ship.timer"))
}

// installPackage puts the units where the .deb does, as `dpkg -i` would.
func installPackage(t *testing.T, root string, units []string, edit func(name string, data []byte) []byte) {
	t.Helper()
	dir := filepath.Join(root, systemd.PackageUnitDir)
	require.NoError(t, os.MkdirAll(dir, 0o755))
	for _, u := range units {
		data, err := systemd.Unit(u)
		require.NoError(t, err)
		if edit != nil {
			data = edit(u, data)
		}
		require.NoError(t, os.WriteFile(filepath.Join(dir, u), data, 0o644))
	}
}

// With the cis490 package installed, its units are in /usr/lib/systemd/system, and a
// copy in /etc/systemd/system would override the package's next upgrade: install
// writes none, and removes those it wrote before the package came.
func TestInstallLeavesUnitsToThePackage(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	sc := newFakeSystemctl()
	opts := Options{Role: Receiver, Root: root, Binary: fakeBinary(t, "bin"), Systemctl: sc.run}
	run(t, opts) // before the package: the units are install's, in /etc
	etc := func(u string) string { return filepath.Join(root, UnitDir, u) }
	require.FileExists(t, etc("cis490-receiver.service"))

	installPackage(t, root, Receiver.Units, nil)
	mine := []byte("[Service]\nExecStart=/usr/bin/cis490 serve --log-level debug\n")
	require.NoError(t, os.WriteFile(etc("cis490-fleet-health.timer"), mine, 0o644))
	sc.reset()
	sum, out := run(t, opts)

	for _, u := range []string{"cis490-receiver.service", "cis490-fleet-health.service", "cis490-doctor-check.service", "cis490-doctor-check.timer"} {
		assert.NoFileExists(t, etc(u))
		assert.Contains(t, out, "removed       /etc/systemd/system/"+u+"  (provided by the cis490 package in /usr/lib/systemd/system; this copy would hide its upgrades)")
	}
	got, err := os.ReadFile(etc("cis490-fleet-health.timer"))
	require.NoError(t, err)
	assert.Equal(t, string(mine), string(got), "a unit install did not write is not removed")
	assert.Contains(t, out, "kept          /etc/systemd/system/cis490-fleet-health.timer  (overrides the cis490 package's unit")
	assert.Equal(t, 4+1, sum.Changed, out, "4 copies removed, and daemon-reload")
	assert.Contains(t, sc.calls(), "daemon-reload", "systemd must forget the removed copies")
	assert.NotContains(t, sc.calls(), "try-restart cis490-receiver.service", "the receiver's unit is the same, only its file moved")

	sc.reset()
	sum, out = run(t, opts)
	assert.Zero(t, sum.Changed, out)
	assert.Contains(t, out, "unchanged     /usr/lib/systemd/system/cis490-receiver.service  (provided by the cis490 package)")
	assert.NotContains(t, sc.calls(), "daemon-reload")
}

func TestInstallOverridesAPackageOfOtherUnits(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	// A package older (or newer) than this binary: its units differ, and this binary's
	// go to /etc, where they override the package's, as before.
	installPackage(t, root, LabHost.Units, func(_ string, data []byte) []byte { return append(data, "# another version\n"...) })
	_, out := run(t, Options{Role: LabHost, Root: root, Binary: fakeBinary(t, "bin")})
	for _, u := range LabHost.Units {
		want, err := systemd.Unit(u)
		require.NoError(t, err)
		got, err := os.ReadFile(filepath.Join(root, UnitDir, u))
		require.NoError(t, err)
		assert.Equal(t, string(want), string(got), u)
		assert.Contains(t, out, "created       /etc/systemd/system/"+u)
	}
}

func TestInstallWithThePackageDryRun(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	opts := Options{Role: LabHost, Root: root, Binary: fakeBinary(t, "bin")}
	run(t, opts)
	installPackage(t, root, LabHost.Units, nil)
	before := snapshot(t, root)
	opts.DryRun = true
	sum, out := run(t, opts)
	assert.Equal(t, before, snapshot(t, root))
	assert.Equal(t, len(LabHost.Units), sum.Changed, out)
	assert.Contains(t, out, "would remove  /etc/systemd/system/cis490-ship.timer")
}

// The .deb's postinst starts, after a reinstall, the units that are enabled but not
// running, and finds them as cis490-receiver.service and every cis490-*.timer
// (systemd/package_test.go runs it): that must cover all that install enables.
func TestThePackageStartsWhatInstallEnables(t *testing.T) {
	t.Parallel()
	for _, role := range []Role{LabHost, Receiver} {
		for _, u := range role.Enable {
			timer, err := filepath.Match("cis490-*.timer", u)
			require.NoError(t, err)
			assert.True(t, timer || u == "cis490-receiver.service", "%s enables %s, which postinst would not start", role.Name, u)
		}
	}
}

// fleet-health writes alerts.jsonl; under ProtectSystem=strict it may write only the
// data folder, and an alerts file elsewhere would fail at the first alert.
func TestInstallReceiverSaysWhereAlertsCannotBeWritten(t *testing.T) {
	t.Parallel()
	const outside = "fleet_health.alerts_file is /var/log/cis490/alerts.jsonl, but the units may write only %s: " +
		"create /var/log/cis490 and add ReadWritePaths=/var/log/cis490 in a drop-in (systemctl edit cis490-fleet-health.service)"
	for _, tc := range []struct {
		name, config, note string
	}{
		{"outside the data folder", "[fleet_health]\nalerts_file = \"/var/log/cis490/alerts.jsonl\"\n", fmt.Sprintf(outside, "/var/lib/cis490")},
		{"in a folder of the data folder", "[fleet_health]\nalerts_file = \"/var/lib/cis490/alerts/alerts.jsonl\"\n", ""},
		{"outside a data_dir of its own", "[serve]\ndata_dir = \"/srv/cis490\"\n[fleet_health]\nalerts_file = \"/var/log/cis490/alerts.jsonl\"\n", fmt.Sprintf(outside, "/srv/cis490")},
		{"in a data_dir of its own", "[serve]\ndata_dir = \"/srv/cis490\"\n[fleet_health]\nalerts_file = \"/srv/cis490/alerts.jsonl\"\n", ""},
		{"the default, in a data_dir of its own", "[serve]\ndata_dir = \"/srv/cis490\"\n", ""},
		{"a neighbour that only looks inside", "[fleet_health]\nalerts_file = \"/var/lib/cis490-alerts/alerts.jsonl\"\n", "fleet_health.alerts_file is /var/lib/cis490-alerts/alerts.jsonl"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			cfgPath := filepath.Join(root, "etc/cis490/lab-host.toml")
			require.NoError(t, os.MkdirAll(filepath.Dir(cfgPath), 0o755))
			require.NoError(t, os.WriteFile(cfgPath, []byte(tc.config), 0o644))
			_, out := run(t, Options{Role: Receiver, Root: root, Binary: fakeBinary(t, "bin")})
			if tc.note == "" {
				assert.NotContains(t, out, "fleet_health.alerts_file")
			} else {
				assert.Contains(t, out, "  note: "+tc.note)
			}
		})
	}
}

func TestInstallRefusesARelativeAlertsFile(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	cfgPath := filepath.Join(root, "etc/cis490/lab-host.toml")
	require.NoError(t, os.MkdirAll(filepath.Dir(cfgPath), 0o755))
	require.NoError(t, os.WriteFile(cfgPath, []byte("[fleet_health]\nalerts_file = \"alerts.jsonl\"\n"), 0o644))
	_, err := Run(context.Background(), Options{Role: Receiver, Root: root, Binary: fakeBinary(t, "bin"), Out: &bytes.Buffer{}})
	var ue *UsageError
	require.ErrorAs(t, err, &ue)
	assert.Contains(t, err.Error(), `fleet_health.alerts_file "alerts.jsonl" in `)
	assert.Equal(t, []string{"0755 etc", "0755 etc/cis490", "0644 etc/cis490/lab-host.toml"}, tree(t, root), "nothing written")
}

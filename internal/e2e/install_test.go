package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/systemd"
)

// repoRoot is the repository this test file is in.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// maxExposure is the highest `systemd-analyze security` score a unit may have: the
// units score 1.6 to 1.8 today, and hardening must not quietly erode.
const maxExposure = 2.0

// Every unit in systemd/ passes `systemd-analyze verify` as installed: under a --root
// prefix that holds the real binary at the path the units run, and the distribution's
// own units (sysinit.target and friends) that every service depends on.
func TestUnitsPassSystemdAnalyze(t *testing.T) {
	t.Parallel()
	analyze, err := exec.LookPath("systemd-analyze")
	require.NoError(t, err, "systemd-analyze is needed: apt-get install systemd (.ci/run does)")
	root := t.TempDir()
	for _, role := range []string{"lab-host", "receiver"} {
		r := Run(t, bin, Env(t), nil, "install", role, "--root", root)
		require.Equal(t, 0, r.Code, r.Stderr)
	}
	require.NoError(t, os.MkdirAll(filepath.Join(root, "usr/lib/systemd"), 0o755))
	out, err := exec.Command("cp", "-a", "/usr/lib/systemd/system", filepath.Join(root, "usr/lib/systemd/")).CombinedOutput()
	require.NoError(t, err, "%s", out)

	var installed []string
	for _, name := range systemd.Names() {
		p := filepath.Join(root, "etc/systemd/system", name)
		require.FileExists(t, p, "every unit in systemd/ is installed by one of the roles")
		installed = append(installed, p)
	}
	verify := func(units ...string) (int, string) {
		cmd := exec.Command(analyze, append([]string{"verify", "--man=no", "--root=" + root}, units...)...)
		out, _ := cmd.CombinedOutput()
		return cmd.ProcessState.ExitCode(), string(out)
	}
	code, output := verify(installed...)
	assert.Equal(t, 0, code, output)
	assert.Empty(t, output, "warnings count: an unknown key is only a warning to systemd")

	// The harness catches what it is there for.
	broken := filepath.Join(root, "etc/systemd/system/cis490-broken.service")
	require.NoError(t, os.WriteFile(broken, []byte("[Service]\nExecStart=/usr/bin/cis490-missing\n"), 0o644))
	code, output = verify(broken)
	assert.NotEqual(t, 0, code, "a missing ExecStart binary fails")
	assert.Contains(t, output, "cis490-missing")
	require.NoError(t, os.WriteFile(broken, []byte("[Service]\nExecStart=/usr/bin/cis490 serve\nProtectSytem=strict\n"), 0o644))
	_, output = verify(broken)
	assert.Contains(t, output, "Unknown key", "a typo shows up in the output")

	score := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`)
	for _, name := range systemd.Names() {
		if !strings.HasSuffix(name, ".service") {
			continue
		}
		out, _ := exec.Command(analyze, "security", "--offline=yes", "--root="+root, name).CombinedOutput()
		m := score.FindSubmatch(out)
		require.NotNil(t, m, "%s", out)
		exposure, err := strconv.ParseFloat(string(m[1]), 64)
		require.NoError(t, err)
		t.Logf("systemd-analyze security: %s %.1f", name, exposure)
		assert.LessOrEqual(t, exposure, maxExposure, "%s lost hardening:\n%s", name, out)
	}
}

// stubSystemctl is a stand-in for systemctl. There is no systemd running as PID 1 in
// CI (nor in most containers), so the real one could only fail; this one logs each
// call and answers is-enabled and is-active from what enable --now did before.
const stubSystemctl = `#!/bin/sh
echo "$*" >>"$SYSTEMCTL_LOG"
case "$1" in
is-enabled) if [ -e "$SYSTEMCTL_STATE/$2" ]; then echo enabled; else echo disabled; exit 1; fi ;;
is-active) if [ -e "$SYSTEMCTL_STATE/$2" ]; then echo active; else echo inactive; exit 3; fi ;;
enable) : >"$SYSTEMCTL_STATE/$3" ;;
daemon-reload | try-restart) ;;
*) echo "stub systemctl: unexpected $*" >&2; exit 1 ;;
esac
`

// overlaid are the folders install writes on a real system. The test mounts an
// overlay on each, in a mount namespace of its own: install runs exactly as it would
// on a lab host (no --root, as root, real paths), every write lands in the overlay's
// upper folder, where the test reads it, and the machine itself is untouched.
var overlaid = []string{"/etc", "/var", "/usr/bin"}

const overlayScript = `set -e
t=$1; shift
i=0
for d in /etc /var /usr/bin; do
  i=$((i+1))
  mkdir -p "$t/up$i" "$t/work$i"
  mount -t overlay overlay -o "lowerdir=$d,upperdir=$t/up$i,workdir=$t/work$i" "$d"
done
exec "$@"
`

func TestInstallOnTheRealSystemCallsSystemctl(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root, to mount overlays in a private mount namespace; CI runs as root")
	}
	if out, err := exec.Command("unshare", "--mount", "--propagation", "private", "true").CombinedOutput(); err != nil {
		t.Skipf("cannot make a mount namespace here (unshare: %v %s)", err, out)
	}
	dir := t.TempDir()
	for _, d := range overlaid {
		if strings.HasPrefix(dir, d+"/") {
			t.Skipf("the test folder %s is inside %s, which the test overlays", dir, d)
		}
	}
	stub := filepath.Join(dir, "stub")
	state := filepath.Join(dir, "state")
	require.NoError(t, os.MkdirAll(stub, 0o755))
	require.NoError(t, os.MkdirAll(state, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(stub, "systemctl"), []byte(stubSystemctl), 0o755))
	logFile := filepath.Join(dir, "systemctl.log")
	token := filepath.Join(dir, "token")
	require.NoError(t, os.WriteFile(token, []byte("c490_real_system\n"), 0o600))
	_, hostHadUnit := os.Stat("/etc/systemd/system/cis490-ship.timer")

	env := append(Env(t), "SYSTEMCTL_LOG="+logFile, "SYSTEMCTL_STATE="+state)
	env[0] = "PATH=" + stub + ":" + os.Getenv("PATH")
	install := func() (Result, []string) {
		_ = os.Remove(logFile)
		args := []string{"--mount", "--propagation", "private", "sh", "-c", overlayScript, "sh", dir,
			bin, "install", "lab-host", "--token-file", token}
		cmd := exec.Command("unshare", args...)
		cmd.Env = env
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		_ = cmd.Run()
		log, _ := os.ReadFile(logFile)
		return Result{Code: cmd.ProcessState.ExitCode(), Stdout: out.String(), Stderr: errb.String()}, strings.Split(strings.TrimSpace(string(log)), "\n")
	}

	r, calls := install()
	require.Equal(t, 0, r.Code, "stdout:\n%s\nstderr:\n%s", r.Stdout, r.Stderr)
	assert.Equal(t, []string{
		"is-enabled cis490-ship.timer", "is-active cis490-ship.timer",
		"is-enabled cis490-doctor-check.timer", "is-active cis490-doctor-check.timer",
		"daemon-reload",
		"enable --now cis490-ship.timer",
		"enable --now cis490-doctor-check.timer",
	}, calls)
	assert.Contains(t, r.Stdout, "cis490 install lab-host on this machine")
	assert.Contains(t, r.Stdout, "started       cis490-doctor-check.timer")

	up := func(i int, rel string) string { return filepath.Join(dir, "up"+strconv.Itoa(i), rel) }
	var written []string
	for i := range overlaid {
		require.NoError(t, filepath.WalkDir(up(i+1, ""), func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				written = append(written, filepath.Join(overlaid[i], strings.TrimPrefix(p, up(i+1, ""))))
			}
			return err
		}))
	}
	sort.Strings(written)
	assert.Equal(t, []string{
		"/etc/cis490/lab-host.toml",
		"/etc/cis490/token",
		"/etc/systemd/system/cis490-autoupdate.service",
		"/etc/systemd/system/cis490-autoupdate.timer",
		"/etc/systemd/system/cis490-cert-fetch.service",
		"/etc/systemd/system/cis490-cert-fetch.timer",
		"/etc/systemd/system/cis490-doctor-check.service",
		"/etc/systemd/system/cis490-doctor-check.timer",
		"/etc/systemd/system/cis490-ship.service",
		"/etc/systemd/system/cis490-ship.timer",
		"/usr/bin/cis490",
	}, written, "every file install wrote on the system")
	for _, sub := range []string{"outbox", "sent", "rejected"} {
		if _, err := os.Stat("/var/spool/cis490/" + sub); err == nil {
			continue // this machine has it already (a `cis490 ship` run as root): nothing to create
		}
		assert.DirExists(t, up(2, "spool/cis490/"+sub))
	}
	fi, err := os.Stat(up(1, "cis490/token"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	want, err := os.ReadFile(bin)
	require.NoError(t, err)
	got, err := os.ReadFile(up(3, "cis490"))
	require.NoError(t, err)
	assert.True(t, bytes.Equal(want, got), "/usr/bin/cis490 is the binary that ran install")

	_, err = os.Stat("/etc/systemd/system/cis490-ship.timer")
	assert.Equal(t, hostHadUnit == nil, err == nil, "the machine itself is untouched")

	r, calls = install()
	require.Equal(t, 0, r.Code, r.Stderr)
	assert.Contains(t, r.Stdout, "nothing to change: the lab host is installed")
	assert.Equal(t, []string{
		"is-enabled cis490-ship.timer", "is-active cis490-ship.timer",
		"is-enabled cis490-doctor-check.timer", "is-active cis490-doctor-check.timer",
	}, calls, "the second run only asks")
}

func TestInstallRefusesToRunAsAUser(t *testing.T) {
	t.Parallel()
	args := []string{bin, "install", "receiver"}
	if os.Geteuid() == 0 {
		setpriv, err := exec.LookPath("setpriv")
		if err != nil {
			t.Skip("running as root, and no setpriv to drop to a user")
		}
		args = append([]string{setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"}, args...)
	}
	r := Run(t, args[0], Env(t), nil, args[1:]...)
	assert.Equal(t, 1, r.Code)
	assert.Contains(t, r.Stderr, "run it as root (sudo cis490 install receiver), or pass --root DIR")
	assert.Empty(t, r.Stdout)
}

func TestCheckedInCompletionsLoad(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(repoRoot(), "completions")
	out, err := exec.Command("bash", "-c", `source "$1" && complete -p cis490`, "bash", filepath.Join(dir, "cis490.bash")).CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Equal(t, "complete -o default -F __start_cis490 cis490\n", string(out))
	// zsh and fish, where installed, at least parse theirs.
	for shell, file := range map[string]string{"zsh": "_cis490", "fish": "cis490.fish"} {
		if _, err := exec.LookPath(shell); err != nil {
			continue
		}
		out, err := exec.Command(shell, "-n", filepath.Join(dir, file)).CombinedOutput()
		assert.NoError(t, err, "%s -n %s: %s", shell, file, out)
	}
}

// copyRepo copies the repository's files (tracked and new, not ignored) into a fresh
// git repository with one commit.
func copyRepo(t *testing.T) string {
	t.Helper()
	src := repoRoot()
	list, err := exec.Command("git", "-C", src, "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	require.NoError(t, err)
	dst := t.TempDir()
	for _, rel := range strings.Split(strings.TrimRight(string(list), "\x00"), "\x00") {
		fi, err := os.Stat(filepath.Join(src, rel))
		if err != nil {
			continue // deleted in the work tree, not yet in git
		}
		b, err := os.ReadFile(filepath.Join(src, rel))
		require.NoError(t, err)
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(dst, rel)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dst, rel), b, fi.Mode().Perm()))
	}
	git(t, dst, "init", "-q")
	commitAll(t, dst)
	return dst
}

func git(t *testing.T, dir string, args ...string) {
	t.Helper()
	args = append([]string{"-C", dir, "-c", "user.name=e2e", "-c", "user.email=e2e@localhost", "-c", "commit.gpgsign=false"}, args...)
	out, err := exec.Command("git", args...).CombinedOutput()
	require.NoError(t, err, "git %v: %s", args, out)
}

func commitAll(t *testing.T, dir string) {
	t.Helper()
	git(t, dir, "add", "-A")
	git(t, dir, "commit", "-q", "--allow-empty", "-m", "snapshot")
}

func docsFresh(t *testing.T, repo string) (int, string) {
	t.Helper()
	cmd := exec.Command("bash", filepath.Join(repo, ".ci/docs-fresh"))
	cmd.Dir = repo
	out, _ := cmd.CombinedOutput()
	return cmd.ProcessState.ExitCode(), string(out)
}

// The CI check that generated files are fresh passes on a fresh tree and fails on a
// stale one: a page edited by hand, or a page missing from git (untracked counts).
func TestDocsFreshCheck(t *testing.T) {
	t.Parallel()
	repo := copyRepo(t)
	docsFresh(t, repo) // regenerates: fresh by construction, whatever the real tree's state
	commitAll(t, repo)
	code, out := docsFresh(t, repo)
	require.Equal(t, 0, code, out)

	page := filepath.Join(repo, "man", "cis490-ship.1")
	require.NoError(t, os.WriteFile(page, []byte("edited by hand\n"), 0o644))
	commitAll(t, repo)
	code, out = docsFresh(t, repo)
	assert.NotEqual(t, 0, code, out)
	assert.Contains(t, out, "man/cis490-ship.1")
	assert.Contains(t, out, "go run ./cmd/cis490 gen --out .")
	commitAll(t, repo) // the check regenerated it: fresh again

	git(t, repo, "rm", "-q", "completions/cis490.fish")
	commitAll(t, repo)
	code, out = docsFresh(t, repo)
	assert.NotEqual(t, 0, code, "an untracked generated file counts:\n%s", out)
	assert.Contains(t, out, "completions/cis490.fish")
}

package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/release"
	"github.com/cis490/cis490/internal/release/releasetest"
	"github.com/cis490/cis490/internal/update"
)

// The commits of the e2e updates: A is what the host runs first (the gate refuses it),
// B the release it updates to, C a release the gate stops allowing after it was
// published (its doctor fails commit-allowed: the rollback), D a release without this
// platform's binary.
var (
	upA = releasetest.Commit("a1")
	upB = releasetest.Commit("b2")
	upC = releasetest.Commit("c3")
	upD = releasetest.Commit("d4")
)

// updateWorld is a receiver on loopback with serve.update.public_keys and a gate
// from an allow-list file, the maintainer's key and dist folders, and a lab host whose
// binary is root/usr/bin/cis490.
type updateWorld struct {
	t          *testing.T
	srv        *Server
	allow      string
	key, pub   string
	bins       map[string]string // commit → built binary
	hostBin    string
	hostCfg    string
	stateDir   string
	spool      string
	env        []string
	maintainer string // the maintainer's config: receiver.url only
}

func newUpdateWorld(t *testing.T) *updateWorld {
	t.Helper()
	w := &updateWorld{t: t, bins: map[string]string{}, env: Env(t)}
	dir := t.TempDir()
	for _, c := range []string{upA, upB, upC} {
		b, err := Build(dir, c)
		require.NoError(t, err)
		w.bins[c] = b
	}
	w.key = filepath.Join(dir, "release.key")
	r := Run(t, w.bins[upA], w.env, nil, "release", "keygen", "--out", w.key, "--unencrypted")
	require.Equal(t, 0, r.Code, r.Stderr)
	w.pub = strings.TrimSpace(r.Stdout)

	w.allow = filepath.Join(dir, "allowlist")
	w.setAllowed(upB, upC)
	pi := filepath.Join(dir, "pi.toml")
	require.NoError(t, os.WriteFile(pi, fmt.Appendf(nil, "[serve]\nlisten = \"127.0.0.1:0\"\ndata_dir = %q\n[serve.gate]\nallowlist_file = %q\nrefresh = \"1s\"\n[serve.update]\npublic_keys = %q\n",
		filepath.Join(dir, "data"), w.allow, w.pub), 0o600))
	w.srv = StartServe(t, bin, w.env, "http", "--config", pi)
	w.maintainer = filepath.Join(dir, "laptop.toml")
	require.NoError(t, os.WriteFile(w.maintainer, fmt.Appendf(nil, "[receiver]\nurl = %q\n", w.srv.URL), 0o600))

	root := t.TempDir()
	w.hostBin = filepath.Join(root, "usr", "bin", "cis490")
	require.NoError(t, os.MkdirAll(filepath.Dir(w.hostBin), 0o755))
	data, err := os.ReadFile(w.bins[upA])
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(w.hostBin, data, 0o755))
	w.stateDir = filepath.Join(root, "var", "lib", "cis490", "update")
	w.spool = filepath.Join(root, "var", "spool", "cis490")
	require.NoError(t, os.MkdirAll(filepath.Join(w.spool, "outbox"), 0o750))
	w.hostCfg = filepath.Join(root, "lab-host.toml")
	w.writeHostConfig(w.pub)
	return w
}

func (w *updateWorld) writeHostConfig(keys string) {
	require.NoError(w.t, os.WriteFile(w.hostCfg, fmt.Appendf(nil, "host = \"lab-07\"\n[receiver]\nurl = %q\ntimeout = \"5s\"\n[ship]\nspool_dir = %q\nretries = 1\n[update]\npublic_keys = %q\nstate_dir = %q\n",
		w.srv.URL, w.spool, keys, w.stateDir), 0o600))
}

// setAllowed rewrites the allow-list and, once the receiver runs, waits until its gate
// allows each commit.
func (w *updateWorld) setAllowed(commits ...string) {
	w.t.Helper()
	require.NoError(w.t, os.WriteFile(w.allow, []byte(strings.Join(commits, "\n")+"\n"), 0o600))
	if w.srv == nil {
		return
	}
	deadline := time.Now().Add(15 * time.Second)
	for _, c := range commits {
		for {
			req, _ := http.NewRequest(http.MethodGet, w.srv.URL+"/v1/whoami", nil)
			req.Header.Set("X-Cis490-Host", "probe")
			req.Header.Set("X-Cis490-Code-Commit", c)
			res, err := http.DefaultClient.Do(req)
			require.NoError(w.t, err)
			var who struct {
				CommitAllowed bool `json:"commit_allowed"`
			}
			_ = json.NewDecoder(res.Body).Decode(&who)
			res.Body.Close()
			if who.CommitAllowed {
				break
			}
			require.False(w.t, time.Now().After(deadline), "the gate never allowed %s", c)
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// publish signs a dist folder of commit's binary (and an armv7 stand-in) with seq
// and publishes it with `cis490 release publish --remote`.
func (w *updateWorld) publish(commit string, seq int64, bins ...releasetest.Bin) {
	w.t.Helper()
	if bins == nil {
		bins = []releasetest.Bin{{GOARCH: runtime.GOARCH, GOARM: release.RunningGOARM(), Path: w.bins[commit]}, {GOARCH: "arm", GOARM: "7", Data: []byte("armv7 stand-in")}}
	}
	dist := releasetest.Dist(w.t, commit, "v0.0.0-e2e", bins...)
	r := Run(w.t, w.bins[upA], w.env, nil, "release", "sign", dist, "--key", w.key, "--seq", fmt.Sprint(seq))
	require.Equal(w.t, 0, r.Code, r.Stderr)
	start := time.Now()
	r = Run(w.t, w.bins[upA], w.env, nil, "--config", w.maintainer, "release", "publish", dist, "--remote")
	require.Equal(w.t, 0, r.Code, r.Stderr)
	w.t.Logf("publish of %s took %s", commit[:4], time.Since(start))
}

// waitTarget waits until the receiver's gate has reloaded and names commit.
func (w *updateWorld) waitTarget(commit string) {
	w.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		req, _ := http.NewRequest(http.MethodGet, w.srv.URL+release.TargetPath, nil)
		req.Header.Set("X-Cis490-Host", "probe")
		res, err := http.DefaultClient.Do(req)
		require.NoError(w.t, err)
		var p release.Published
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		_ = json.Unmarshal(body, &p)
		if p.Commit == commit {
			return
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("the target is %q (%d), not %s", p.Commit, res.StatusCode, commit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (w *updateWorld) host(args ...string) Result {
	w.t.Helper()
	return Run(w.t, w.hostBin, w.env, nil, append([]string{"--config", w.hostCfg}, args...)...)
}

func (w *updateWorld) installed() string {
	w.t.Helper()
	r := Run(w.t, w.hostBin, w.env, nil, "version", "--json")
	require.Equal(w.t, 0, r.Code, r.Stderr)
	var v struct{ Commit string }
	require.NoError(w.t, json.Unmarshal([]byte(r.Stdout), &v))
	return v.Commit
}

func (w *updateWorld) state() update.State {
	w.t.Helper()
	s, err := update.ReadState(w.stateDir)
	require.NoError(w.t, err)
	return s
}

// The story of issue 13 with real binaries: a host refused by the gate updates itself
// to the allowed release and ships with it; a release whose doctor is worse is rolled
// back; a release without this platform's binary, one signed by a key the host does
// not trust, and an old release replayed are refused, and the binary stays.
func TestUpdateEndToEnd(t *testing.T) {
	w := newUpdateWorld(t)
	w.publish(upB, 5)
	w.publish(upC, 6)
	w.setAllowed(upB) // C was allowed when published; the gate no longer allows it
	w.waitTarget(upB)

	require.NoError(t, os.WriteFile(filepath.Join(w.spool, "outbox", "ep-1.tar"), []byte("episode one"), 0o640))
	r := w.host("ship")
	assert.NotEqual(t, 0, r.Code, "commit A is refused by the gate: %s", r.Stderr)
	assert.Contains(t, r.Stderr, "426")

	r = w.host("update", "--check")
	require.Equal(t, 0, r.Code, r.Stderr)
	assert.Contains(t, r.Stdout, "would update")
	assert.Equal(t, upA, w.installed())

	start := time.Now()
	r = w.host("update")
	require.Equal(t, 0, r.Code, "stdout: %s\nstderr: %s", r.Stdout, r.Stderr)
	t.Logf("cis490 update took %s", time.Since(start))
	assert.Contains(t, r.Stdout, "updated "+w.hostBin)
	assert.Equal(t, upB, w.installed())
	s := w.state()
	assert.Equal(t, update.ResultUpdated, s.Result)
	assert.Equal(t, int64(5), s.AppliedSeq)

	r = w.host("ship")
	assert.Equal(t, 0, r.Code, "the new binary ships: %s", r.Stderr)
	r = w.host("health", "ship")
	assert.Equal(t, 0, r.Code, r.Stderr)
	report := w.report(t)
	assert.Equal(t, "ok", report["update"].Status, report["update"].Summary)
	assert.Contains(t, report["update"].Summary, "updated: commit "+upB[:12])

	r = w.host("update")
	require.Equal(t, 0, r.Code, r.Stderr)
	assert.Contains(t, r.Stdout, "up to date")

	{ // rollback when doctor gets worse
		r := w.host("update", "--to", upC)
		assert.Equal(t, 1, r.Code, "stdout: %s\nstderr: %s", r.Stdout, r.Stderr)
		assert.Contains(t, r.Stderr, "rolled back")
		assert.Contains(t, r.Stderr, "commit-allowed")
		assert.Equal(t, upB, w.installed(), "back on B")
		s := w.state()
		assert.Equal(t, update.ResultRolledBack, s.Result)
		require.NotNil(t, s.Bad)
		assert.Equal(t, upC, s.Bad.Commit)
		left, _ := filepath.Glob(filepath.Join(filepath.Dir(w.hostBin), ".cis490.update-*"))
		assert.Empty(t, left)

		r = w.host("health", "ship")
		assert.Equal(t, 0, r.Code, r.Stderr)
		report := w.report(t)
		assert.Equal(t, "warn", report["update"].Status, "the Pi sees it: %s", report["update"].Summary)
	}

	{ // a release without this platform's binary
		w.bins[upD] = w.bins[upA]
		w.setAllowed(upB, upD)
		w.publish(upD, 7, releasetest.Bin{GOARCH: "arm64", Data: []byte("arm64 build")}, releasetest.Bin{GOARCH: "arm", GOARM: "7", Data: []byte("armv7 build")})
		w.waitTarget(upD)
		r := w.host("update")
		assert.Equal(t, 1, r.Code)
		assert.Contains(t, r.Stderr, "this host runs "+runtime.GOOS+"/"+runtime.GOARCH)
		assert.Equal(t, upB, w.installed())
	}

	{ // a release signed by a key the host does not trust
		other := filepath.Join(t.TempDir(), "other.key")
		r := Run(t, w.bins[upA], w.env, nil, "release", "keygen", "--out", other, "--unencrypted")
		require.Equal(t, 0, r.Code, r.Stderr)
		w.writeHostConfig(strings.TrimSpace(r.Stdout))
		r = w.host("update")
		assert.Equal(t, 1, r.Code)
		assert.Contains(t, r.Stderr, "not signed by a key of update.public_keys")
		assert.Equal(t, upB, w.installed())
		assert.Equal(t, update.RefusedSignature, w.state().Refused)
		w.writeHostConfig(w.pub)
	}

	{ // an old release replayed
		w.setAllowed(upA)
		// A release of A, signed earlier (seq 1): the receiver now names it.
		w.publish(upA, 1)
		w.waitTarget(upA)
		r := w.host("update")
		assert.Equal(t, 1, r.Code)
		assert.Contains(t, r.Stderr, "lower than seq 5")
		assert.Equal(t, upB, w.installed())
	}
}

type reportCheck struct {
	Status, Summary string
}

// report is the host's doctor report as the receiver stored it, by check id.
func (w *updateWorld) report(t *testing.T) map[string]reportCheck {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, w.srv.URL+"/v1/host-health/lab-07", nil)
	req.Header.Set("X-Cis490-Host", "lab-07")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	var body struct {
		Checks []struct{ ID, Status, Summary string }
	}
	require.NoError(t, json.NewDecoder(res.Body).Decode(&body))
	out := map[string]reportCheck{}
	for _, c := range body.Checks {
		out[c.ID] = reportCheck{c.Status, c.Summary}
	}
	return out
}

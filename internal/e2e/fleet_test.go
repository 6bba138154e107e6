package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/alerts"
	"github.com/cis490/cis490/internal/fleethealth"
	"github.com/cis490/cis490/internal/protocol"
)

const (
	commitAllowed = "1234567890abcdef1234567890abcdef12345678"
	commitRefused = "abcdef0abcdef0abcdef0abcdef0abcdef0abcd"
	// silentAfter is short so that a host can "stop" within a test; --now jumps the
	// rest of the way.
	silentAfter = 3 * time.Second
)

// fleetReceiver is a real `cis490 serve` with a version gate, and the config file the
// Pi's other commands (fleet-health, alerts) share with it.
type fleetReceiver struct {
	srv              *Server
	env              []string
	dir, data, cfg   string
	addr             string
	tokens, adminTok string
}

func startFleetReceiver(t *testing.T, withTokens bool) *fleetReceiver {
	t.Helper()
	dir := t.TempDir()
	r := &fleetReceiver{env: Env(t), dir: dir, data: filepath.Join(dir, "data"), cfg: filepath.Join(dir, "lab-host.toml")}
	allow := filepath.Join(dir, "allowlist")
	require.NoError(t, os.WriteFile(allow, []byte(commitAllowed+"\n"), 0o600))
	tokensLine, receiverLines := "", ""
	if withTokens {
		r.tokens = filepath.Join(dir, "tokens.toml")
		tokensLine = fmt.Sprintf("tokens_file = %q\n", r.tokens)
		receiverLines = fmt.Sprintf("token_file = %q\n", filepath.Join(dir, "admin.token"))
	}
	require.NoError(t, os.WriteFile(r.cfg, []byte(fmt.Sprintf(`
[receiver]
%s
[serve]
listen = "127.0.0.1:0"
data_dir = %q
%s
[serve.gate]
allowlist_file = %q

[fleet_health]
silent_after = %q
syslog = false
`, receiverLines, r.data, tokensLine, allow, silentAfter)), 0o600))
	if withTokens {
		res := Run(t, bin, r.env, nil, "--config", r.cfg, "token", "new", "--admin", "alice")
		require.Equal(t, 0, res.Code, res.Stderr)
		r.adminTok = strings.TrimSpace(res.Stdout)
		require.NoError(t, os.WriteFile(filepath.Join(dir, "admin.token"), []byte(r.adminTok+"\n"), 0o600))
	}
	r.start(t)
	// The port the kernel chose, kept for a restart; clients learn it from the
	// environment, as CIS490_RECEIVER_URL overrides receiver.url, and so does
	// fleet-health check, which asks the receiver on serve.listen for the Pi's own row
	// (named pi).
	r.addr = r.srv.Addr
	r.env = append(r.env, "CIS490_RECEIVER_URL="+r.srv.URL, "CIS490_SERVE_LISTEN="+r.addr, "CIS490_HOST=pi")
	return r
}

// start runs the receiver, on the port of its first start when restarted.
func (r *fleetReceiver) start(t *testing.T) {
	t.Helper()
	args := []string{"--config", r.cfg}
	if r.addr != "" {
		args = append(args, "--listen", r.addr)
	}
	r.srv = StartServe(t, bin, r.env, "http", args...)
}

func (r *fleetReceiver) cis490(t *testing.T, args ...string) Result {
	t.Helper()
	return Run(t, bin, r.env, nil, append([]string{"--config", r.cfg}, args...)...)
}

// send is a lab host's request in plain HTTP: open mode believes X-Cis490-Host.
func (r *fleetReceiver) send(t *testing.T, method, path, host, commit string, body []byte) int {
	t.Helper()
	req, err := http.NewRequest(method, r.srv.URL+path, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set(protocol.HeaderHost, host)
	if commit != "" {
		req.Header.Set(protocol.HeaderCommit, commit)
	}
	if path == "/v1/episodes" {
		req.Header.Set(protocol.HeaderEpisode, host+"-"+sum(body)[:8]+".tar")
		req.Header.Set(protocol.HeaderSHA256, sum(body))
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, res.Body)
	return res.StatusCode
}

// ships is one run of a healthy `cis490 ship` plus its daily report.
func (r *fleetReceiver) ships(t *testing.T, host, commit string) {
	t.Helper()
	require.Equal(t, http.StatusNoContent, r.send(t, "POST", "/v1/heartbeat", host, commit, nil), host)
	require.Equal(t, http.StatusCreated, r.send(t, "PUT", "/v1/episodes", host, commit, []byte(host+time.Now().String())), host)
}

func (r *fleetReceiver) reports(t *testing.T, host string) {
	t.Helper()
	doc := fmt.Sprintf(`{"schema":"cis490.doctor/v1","host":%q,"status":"ok","checks":[{"id":"config","status":"ok"}]}`, host)
	require.Equal(t, http.StatusNoContent, r.send(t, "PUT", "/v1/host-health/"+host, host, "", []byte(doc)), host)
}

func (r *fleetReceiver) check(t *testing.T, now time.Time) fleethealth.Result {
	t.Helper()
	res := r.cis490(t, "fleet-health", "check", "--json", "--now", now.UTC().Format(time.RFC3339Nano))
	require.Equal(t, 0, res.Code, res.Stderr)
	var out fleethealth.Result
	require.NoError(t, json.Unmarshal([]byte(res.Stdout), &out), res.Stdout)
	return out
}

func symptomsByHost(res fleethealth.Result) map[string][]string {
	out := map[string][]string{}
	for _, h := range res.Hosts {
		out[h.Host] = []string{}
		for _, s := range h.Symptoms {
			out[h.Host] = append(out[h.Host], s.Symptom)
		}
	}
	return out
}

func alertKeys(t *testing.T, jsonl string) []string {
	t.Helper()
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(jsonl), "\n") {
		if l == "" {
			continue
		}
		a, ok := alerts.Parse([]byte(l))
		require.True(t, ok, l)
		out = append(out, a.Status+" "+a.Host+"/"+a.Symptom)
	}
	return out
}

// The whole loop with real binaries: lab hosts talk to a real receiver, the check
// reads what it indexed and stored, and reports exactly the sick hosts.
func TestFleetHealthEndToEnd(t *testing.T) {
	t.Parallel()
	r := startFleetReceiver(t, false)

	// lab-gone ships, reports, and stops.
	r.ships(t, "lab-gone", commitAllowed)
	r.reports(t, "lab-gone")
	gone := time.Now()
	now := gone.Add(silentAfter)

	r.ships(t, "lab-ok", commitAllowed)
	r.reports(t, "lab-ok")
	for range 3 { // the gate refuses its build: 426, three times
		require.Equal(t, http.StatusUpgradeRequired, r.send(t, "POST", "/v1/heartbeat", "lab-old", commitRefused, nil))
	}
	r.reports(t, "lab-old") // host-health is never gated
	r.ships(t, "lab-nostamp", "")
	r.reports(t, "lab-nostamp")
	require.True(t, time.Now().Before(now), "the hosts took over %v to send a few requests: the test cannot tell silent from busy", silentAfter)

	res := r.check(t, now)
	assert.Equal(t, map[string][]string{
		"lab-gone":    {fleethealth.Silent},
		"lab-ok":      {},
		"lab-old":     {fleethealth.FatalOnly},
		"lab-nostamp": {fleethealth.Unstamped},
		"pi":          {}, // the receiver itself: up, with room on its disk
	}, symptomsByHost(res))
	byHost := map[string]fleethealth.Row{}
	for _, h := range res.Hosts {
		byHost[h.Host] = h
	}
	assert.Equal(t, commitAllowed, byHost["lab-ok"].Commit)
	assert.Equal(t, fleethealth.Counts{Requests: 4, OK: 1, Refused: 3, Reports: 1}, byHost["lab-old"].Requests)
	assert.Equal(t, "ok", byHost["lab-ok"].Report.Status)
	ev := byHost["lab-old"].Symptoms[0].Evidence
	assert.Equal(t, commitRefused, ev["latest_commit"])
	assert.Contains(t, ev["latest_error"], "not on the receiver's allow-list")

	tail := r.cis490(t, "alerts", "tail", "--json")
	require.Equal(t, 0, tail.Code, tail.Stderr)
	assert.Equal(t, []string{"firing lab-gone/silent", "firing lab-nostamp/unstamped", "firing lab-old/fatal-only"}, alertKeys(t, tail.Stdout))
	remote := r.cis490(t, "alerts", "tail", "--json", "--remote")
	require.Equal(t, 0, remote.Code, remote.Stderr)
	assert.Equal(t, tail.Stdout, remote.Stdout, "the receiver serves the same lines")

	table := r.cis490(t, "fleet-health", "check", "--dry-run", "--now", now.UTC().Format(time.RFC3339Nano))
	require.Equal(t, 0, table.Code, table.Stderr)
	assert.Regexp(t, `(?m)^lab-old\s+\S+ ago \(host-health 204\)\s+alerting\s+fatal-only since`, table.Stdout)
	assert.Regexp(t, `(?m)^lab-ok\s+\S+ ago \(host-health 204\)\s+ok\s+-\s`, table.Stdout)
	assert.NotContains(t, table.Stdout, "notified", "nothing new to notify")

	// They all get better once the clock has passed the first check.
	require.Eventually(t, func() bool { return time.Now().After(now) }, 2*silentAfter, 10*time.Millisecond)
	r.ships(t, "lab-gone", commitAllowed)
	r.ships(t, "lab-old", commitAllowed) // upgraded
	r.ships(t, "lab-nostamp", commitAllowed)
	r.ships(t, "lab-ok", commitAllowed)
	res = r.check(t, time.Now())
	for host, syms := range symptomsByHost(res) {
		assert.Empty(t, syms, host)
	}
	tail = r.cis490(t, "alerts", "tail", "--json", "--status", "resolved")
	require.Equal(t, 0, tail.Code, tail.Stderr)
	assert.Equal(t, []string{"resolved lab-gone/silent", "resolved lab-nostamp/unstamped", "resolved lab-old/fatal-only"}, alertKeys(t, tail.Stdout))
}

// lineReader hands a process's output lines to a channel.
func lineReader(t *testing.T, r io.Reader) <-chan string {
	t.Helper()
	lines := make(chan string, 100)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	return lines
}

func expectLines(t *testing.T, lines <-chan string, hosts ...string) {
	t.Helper()
	for _, h := range hosts {
		select {
		case l, ok := <-lines:
			require.True(t, ok, "the output ended while waiting for %s", h)
			a, parsed := alerts.Parse([]byte(l))
			require.True(t, parsed, l)
			require.Equal(t, h, a.Host, l)
		case <-time.After(15 * time.Second):
			t.Fatalf("waited for the alert of %s", h)
		}
	}
}

func assertNoMoreLines(t *testing.T, lines <-chan string) {
	t.Helper()
	select {
	case l, ok := <-lines:
		if ok {
			t.Fatalf("a line arrived twice or out of nowhere: %s", l)
		}
	default:
	}
}

func fleetAlert(n int) alerts.Alert {
	at := time.Now().UTC().Add(time.Duration(n) * time.Millisecond)
	host := fmt.Sprintf("lab-%02d", n)
	return alerts.Alert{TS: at, Host: host, Symptom: "silent", Status: alerts.StatusFiring,
		DedupKey: alerts.DedupKey(host, "silent", at), Since: at, Summary: host + " is silent", Evidence: json.RawMessage(`{}`)}
}

// startTail runs `cis490 alerts tail -f …` and returns its output lines.
func startTail(t *testing.T, env []string, args ...string) (*exec.Cmd, <-chan string, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"alerts", "tail", "-f", "--json"}, args...)...)
	cmd.Env = env
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd, lineReader(t, out), &stderr
}

func interrupt(t *testing.T, cmd *exec.Cmd, stderr *bytes.Buffer) {
	t.Helper()
	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		require.NoError(t, err, "alerts tail -f ends with 0 when interrupted; stderr:\n%s", stderr.String())
	case <-time.After(15 * time.Second):
		t.Fatal("alerts tail -f did not stop on SIGINT")
	}
}

func TestAlertsTailFollowsAcrossRotationAndTruncation(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "alerts.jsonl")
	require.NoError(t, alerts.Append(path, fleetAlert(1), fleetAlert(2)))
	cmd, lines, stderr := startTail(t, Env(t), "--file", path, "-n", "1")
	expectLines(t, lines, "lab-02")
	require.NoError(t, alerts.Append(path, fleetAlert(3)))
	expectLines(t, lines, "lab-03")
	// logrotate, create mode: the old file gets a last line after the rename.
	require.NoError(t, os.Rename(path, path+".1"))
	require.NoError(t, alerts.Append(path+".1", fleetAlert(4)))
	require.NoError(t, alerts.Append(path, fleetAlert(5)))
	expectLines(t, lines, "lab-04", "lab-05")
	// logrotate, copytruncate.
	require.NoError(t, os.Truncate(path, 0))
	require.NoError(t, alerts.Append(path, fleetAlert(6), fleetAlert(7)))
	expectLines(t, lines, "lab-06", "lab-07")
	interrupt(t, cmd, stderr)
	assertNoMoreLines(t, lines)
}

// --remote against a real receiver with tokens: the admin reads, a host may not, and
// a follow stream survives a receiver restart without losing or repeating a line.
func TestAlertsTailRemote(t *testing.T) {
	t.Parallel()
	r := startFleetReceiver(t, true)
	path := filepath.Join(r.data, "alerts.jsonl")
	require.NoError(t, alerts.Append(path, fleetAlert(1), fleetAlert(2)))

	res := r.cis490(t, "alerts", "tail", "--remote", "--json", "-n", "1")
	require.Equal(t, 0, res.Code, res.Stderr)
	assert.Equal(t, []string{"firing lab-02/silent"}, alertKeys(t, res.Stdout))

	hostTok := r.cis490(t, "token", "new", "--host", "lab-07")
	require.Equal(t, 0, hostTok.Code, hostTok.Stderr)
	hostTokFile := filepath.Join(r.dir, "lab-07.token")
	require.NoError(t, os.WriteFile(hostTokFile, []byte(hostTok.Stdout), 0o600))
	var refused Result
	require.Eventually(t, func() bool { // the receiver reloads its tokens file within a second
		refused = Run(t, bin, append(r.env, "CIS490_RECEIVER_TOKEN_FILE="+hostTokFile, "CIS490_HOST=lab-07"), nil, "--config", r.cfg, "alerts", "tail", "--remote")
		return strings.Contains(refused.Stderr, "403")
	}, 10*time.Second, 100*time.Millisecond)
	assert.Equal(t, 1, refused.Code)
	assert.Contains(t, refused.Stderr, "alerts are for the admin")

	cmd, lines, stderr := startTail(t, r.env, "--config", r.cfg, "--remote", "-n", "1")
	expectLines(t, lines, "lab-02")
	require.NoError(t, alerts.Append(path, fleetAlert(3)))
	expectLines(t, lines, "lab-03")

	// The receiver restarts: the stream ends with the drain (the receiver stops
	// promptly), lines written meanwhile arrive once it is back.
	stopped := time.Now()
	require.Equal(t, 0, r.srv.Stop(t))
	assert.Less(t, time.Since(stopped), 10*time.Second, "a follow stream must not hold up the shutdown")
	require.NoError(t, alerts.Append(path, fleetAlert(4)))
	r.start(t)
	require.NoError(t, alerts.Append(path, fleetAlert(5)))
	expectLines(t, lines, "lab-04", "lab-05")
	interrupt(t, cmd, stderr)
	assertNoMoreLines(t, lines)
	assert.Contains(t, stderr.String(), "reconnecting")
}

// alerts.jsonl is in the order lines were written, not sorted by ts (a --now in the
// past, a clock stepped back): tail --remote prints every line, as tail does locally,
// and -f prints a line written later with an earlier ts too.
func TestAlertsTailRemoteKeepsLinesOutOfTimeOrder(t *testing.T) {
	t.Parallel()
	r := startFleetReceiver(t, true)
	path := filepath.Join(r.data, "alerts.jsonl")
	early, late := fleetAlert(1), fleetAlert(2)
	early.TS, late.TS = early.TS.Add(-time.Minute), late.TS.Add(time.Minute)
	require.NoError(t, alerts.Append(path, late, early, fleetAlert(3)))

	local := r.cis490(t, "alerts", "tail", "--json")
	require.Equal(t, 0, local.Code, local.Stderr)
	remote := r.cis490(t, "alerts", "tail", "--remote", "--json")
	require.Equal(t, 0, remote.Code, remote.Stderr)
	assert.Equal(t, []string{"firing lab-02/silent", "firing lab-01/silent", "firing lab-03/silent"}, alertKeys(t, remote.Stdout))
	assert.Equal(t, alertKeys(t, local.Stdout), alertKeys(t, remote.Stdout))

	cmd, lines, stderr := startTail(t, r.env, "--config", r.cfg, "--remote", "-n", "3")
	expectLines(t, lines, "lab-02", "lab-01", "lab-03")
	past := fleetAlert(4)
	past.TS = past.TS.Add(-2 * time.Minute)
	require.NoError(t, alerts.Append(path, past))
	expectLines(t, lines, "lab-04")
	interrupt(t, cmd, stderr)
	assertNoMoreLines(t, lines)
}

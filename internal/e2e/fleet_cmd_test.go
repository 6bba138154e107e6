package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/fleethealth"
	"github.com/cis490/cis490/internal/protocol"
)

// fleetPi is a real `cis490 serve` with a tokens file (an admin token for the
// maintainer, host tokens for the roster), a version gate, and the configuration
// `cis490 fleet` shares with it on the Pi and, with --remote, on a laptop.
type fleetPi struct {
	srv            *Server
	env            []string
	dir, data, cfg string
	hostTokens     map[string]string
}

func startFleetPi(t *testing.T, hosts ...string) *fleetPi {
	t.Helper()
	dir := t.TempDir()
	p := &fleetPi{env: append(Env(t), "CIS490_HOST=pi"), dir: dir, data: filepath.Join(dir, "data"), cfg: filepath.Join(dir, "lab-host.toml"),
		hostTokens: map[string]string{}}
	allow := filepath.Join(dir, "allowlist")
	require.NoError(t, os.WriteFile(allow, []byte(commitAllowed+"\n"), 0o600))
	require.NoError(t, os.WriteFile(p.cfg, []byte(fmt.Sprintf(`
[receiver]
token_file = %q

[serve]
listen = "127.0.0.1:0"
data_dir = %q
tokens_file = %q

[serve.gate]
allowlist_file = %q

[fleet_health]
syslog = false
`, filepath.Join(dir, "admin.token"), p.data, filepath.Join(dir, "tokens.toml"), allow)), 0o600))
	res := p.cis490(t, "token", "new", "--admin", "alice")
	require.Equal(t, 0, res.Code, res.Stderr)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "admin.token"), []byte(res.Stdout), 0o600))
	for _, h := range hosts {
		res := p.cis490(t, "token", "new", "--host", h)
		require.Equal(t, 0, res.Code, res.Stderr)
		p.hostTokens[h] = strings.TrimSpace(res.Stdout)
	}
	p.srv = StartServe(t, bin, p.env, "http", "--config", p.cfg)
	// Clients find the receiver where the kernel put it; so does the Pi's own row
	// (serve.listen, for /healthz).
	p.env = append(p.env, "CIS490_RECEIVER_URL="+p.srv.URL, "CIS490_SERVE_LISTEN="+p.srv.Addr)
	return p
}

func (p *fleetPi) cis490(t *testing.T, args ...string) Result {
	t.Helper()
	return Run(t, bin, p.env, nil, append([]string{"--config", p.cfg}, args...)...)
}

// send is a lab host's request with its host token; it returns the status.
func (p *fleetPi) send(t *testing.T, method, path, host, commit string, body []byte) int {
	t.Helper()
	req, err := http.NewRequest(method, p.srv.URL+path, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+p.hostTokens[host])
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

// fleet of three roster hosts: lab-07 ships, reports and runs an allowed build;
// lab-08 runs a build the gate refuses (fatal-only at its third 426); lab-new has a
// token and has not spoken yet. The Pi has its own row.
func fleetOfThree(t *testing.T) *fleetPi {
	t.Helper()
	p := startFleetPi(t, "lab-07", "lab-08", "lab-new")
	require.Eventually(t, func() bool { return tokenAccepted(p.srv.URL, p.hostTokens["lab-new"]) }, 10*time.Second, 50*time.Millisecond)
	require.Equal(t, http.StatusNoContent, p.send(t, "POST", "/v1/heartbeat", "lab-07", commitAllowed, nil))
	require.Equal(t, http.StatusCreated, p.send(t, "PUT", "/v1/episodes", "lab-07", commitAllowed, []byte("lab-07 episode")))
	notAfter := time.Now().Add(20*24*time.Hour + time.Hour).UTC().Format(time.RFC3339)
	doc := fmt.Sprintf(`{"schema":"cis490.doctor/v1","host":"lab-07","status":"ok","checks":[{"id":"client-cert","status":"ok","details":{"not_after":%q}}]}`, notAfter)
	require.Equal(t, http.StatusNoContent, p.send(t, "PUT", "/v1/host-health/lab-07", "lab-07", commitAllowed, []byte(doc)))
	for range 3 {
		require.Equal(t, http.StatusUpgradeRequired, p.send(t, "POST", "/v1/heartbeat", "lab-08", commitRefused, nil))
	}
	return p
}

// assertFleetOfThree checks the table cis490 fleet prints for fleetOfThree.
func assertFleetOfThree(t *testing.T, out string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	require.Len(t, lines, 6, out)
	assert.Regexp(t, `^HOST\s+LAST SEEN\s+STATUS\s+SYMPTOM\s+LAST EPISODE\s+COMMIT\s+DOCTOR\s+CERT\s+ALERTS$`, lines[0])
	assert.Regexp(t, `^lab-08\s+\d+s ago \(heartbeat 426\)\s+alerting\s+fatal-only since \S+ \S+\s+-\s+abcdef0 refused\s+-\s+-\s+-$`, lines[1])
	assert.Regexp(t, `^lab-new\s+-\s+inactive\s+-\s+-\s+-\s+-\s+-\s+-$`, lines[2])
	assert.Regexp(t, `^lab-07\s+\d+s ago \(host-health 204\)\s+ok\s+-\s+\d+s ago\s+1234567 allowed\s+ok \d+s\s+20d\s+-$`, lines[3])
	assert.Regexp(t, `^pi\s+-\s+ok\s+-\s+-\s+-\s+-\s+-\s+-$`, lines[4])
	assert.Equal(t, "4 hosts: 2 ok, 1 alerting, 0 silenced, 1 inactive", lines[5])
}

func assertFleetOfThreeJSON(t *testing.T, out string) fleethealth.Fleet {
	t.Helper()
	var v fleethealth.Fleet
	require.NoError(t, json.Unmarshal([]byte(out), &v), out)
	assert.WithinDuration(t, time.Now(), v.GeneratedAt, time.Minute)
	assert.Equal(t, fleethealth.Summary{Hosts: 4, OK: 2, Alerting: 1, Critical: 1, Inactive: 1}, v.Summary)
	var hosts []string
	for _, h := range v.Hosts {
		hosts = append(hosts, h.Host)
	}
	require.Equal(t, []string{"lab-08", "lab-new", "lab-07", "pi"}, hosts)
	lab08, lab07 := v.Hosts[0], v.Hosts[2]
	assert.Equal(t, fleethealth.FatalOnly, lab08.WorstSymptom)
	require.NotNil(t, lab08.CommitAllowed)
	assert.False(t, *lab08.CommitAllowed)
	require.NotNil(t, lab07.CommitAllowed)
	assert.True(t, *lab07.CommitAllowed)
	assert.False(t, lab07.LastEpisode.IsZero())
	require.NotNil(t, lab07.CertDaysLeft)
	assert.Equal(t, 20, *lab07.CertDaysLeft)
	return v
}

// dataFiles lists what is in dir, with sizes and modification times.
func dataFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	require.NoError(t, filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		out[path] = fmt.Sprintf("%d %s", info.Size(), info.ModTime())
		return nil
	}))
	return out
}

// On the Pi, cis490 fleet reads the data folder the running receiver writes, and its
// /healthz for its own row: the table worst first, its summary, and not a byte
// written or an alert raised, though lab-08 is alerting.
func TestFleetCommandOnThePi(t *testing.T) {
	t.Parallel()
	p := fleetOfThree(t)
	before := dataFiles(t, p.data)

	res := p.cis490(t, "fleet")
	require.Equal(t, 0, res.Code, res.Stderr)
	assertFleetOfThree(t, res.Stdout)

	res = p.cis490(t, "fleet", "--json")
	require.Equal(t, 0, res.Code, res.Stderr)
	assertFleetOfThreeJSON(t, res.Stdout)

	assert.Equal(t, before, dataFiles(t, p.data), "cis490 fleet writes nothing")
	assert.NoFileExists(t, filepath.Join(p.data, "alerts.jsonl"))
	assert.NoFileExists(t, filepath.Join(p.data, "fleet-health.json"))

	res = p.cis490(t, "fleet", "--data-dir", filepath.Join(p.dir, "elsewhere"))
	assert.Equal(t, 2, res.Code, res.Stderr)
	assert.Contains(t, res.Stderr, "no request index in this data folder")
	res = p.cis490(t, "fleet", "--interval", "1s")
	assert.Equal(t, 2, res.Code, res.Stderr)
	assert.Contains(t, res.Stderr, "--interval goes with --watch")
}

// From a laptop: the same table through GET /v1/fleet with the admin token, the
// gate's answer the live one's; a host token is refused (exit 1, the receiver's
// reason).
func TestFleetCommandRemote(t *testing.T) {
	t.Parallel()
	p := fleetOfThree(t)
	laptop := append(append([]string{}, p.env...), "CIS490_HOST=alice-laptop", "CIS490_SERVE_DATA_DIR="+filepath.Join(p.dir, "not-here"))

	res := Run(t, bin, laptop, nil, "--config", p.cfg, "fleet", "--remote")
	require.Equal(t, 0, res.Code, res.Stderr)
	assertFleetOfThree(t, res.Stdout)

	res = Run(t, bin, laptop, nil, "--config", p.cfg, "fleet", "--remote", "--json")
	require.Equal(t, 0, res.Code, res.Stderr)
	assertFleetOfThreeJSON(t, res.Stdout)

	hostToken := filepath.Join(p.dir, "lab-07.token")
	require.NoError(t, os.WriteFile(hostToken, []byte(p.hostTokens["lab-07"]+"\n"), 0o600))
	res = Run(t, bin, append(laptop, "CIS490_RECEIVER_TOKEN_FILE="+hostToken, "CIS490_HOST=lab-07"), nil, "--config", p.cfg, "fleet", "--remote")
	assert.Equal(t, 1, res.Code, res.Stderr)
	assert.Contains(t, res.Stderr, "answered 403: the fleet view is for the admin")
	assert.Empty(t, res.Stdout)
}

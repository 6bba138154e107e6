package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/doctor"
)

// storedReport fetches host's latest report from the receiver, as that host.
func storedReport(t *testing.T, r *drReceiver, host string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, r.URL+"/v1/host-health/"+host, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+r.tokens[host])
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	var report map[string]any
	if res.StatusCode == http.StatusOK {
		require.NoError(t, json.NewDecoder(res.Body).Decode(&report))
	}
	return res.StatusCode, report
}

func (h *drHost) healthShip(t *testing.T, binary string, stdin io.Reader, args ...string) Result {
	t.Helper()
	h.write(t)
	return Run(t, binary, h.env, stdin, append([]string{"--config", h.cfg, "health", "ship"}, args...)...)
}

func TestHealthShipStoresTheReport(t *testing.T) {
	t.Parallel()
	r := startDrReceiver(t, drSetup{hosts: []string{"lab-07"}})
	h := newDrHost(t, "lab-07", r.URL).withToken(t, r.tokens["lab-07"])
	status, _ := storedReport(t, r, "lab-07")
	require.Equal(t, http.StatusNotFound, status)

	res := h.healthShip(t, bin, nil)
	require.Equal(t, 0, res.Code, res.Stderr)
	assert.Contains(t, res.Stderr, "health report delivered")
	status, report := storedReport(t, r, "lab-07")
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, doctor.Schema, report["schema"])
	assert.Equal(t, "lab-07", report["host"])
	assert.NotEmpty(t, report["received_at"], "the receiver stamps its own time")
	checks, _ := report["checks"].([]any)
	assert.Len(t, checks, 12)
}

// The point of host-health being ungated: a host the gate refuses still reports,
// and its report says why it is refused.
func TestHealthShipDeliversWhenTheCommitIsRefused(t *testing.T) {
	t.Parallel()
	refused, err := Build(t.TempDir(), refusedCommit)
	require.NoError(t, err)
	r := startDrReceiver(t, drSetup{hosts: []string{"lab-07"}, allow: []string{allowedCommit}})
	h := newDrHost(t, "lab-07", r.URL).withToken(t, r.tokens["lab-07"])

	res := h.healthShip(t, refused, nil)
	require.Equal(t, 0, res.Code, res.Stderr)
	status, report := storedReport(t, r, "lab-07")
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, "fail", report["status"])
	assert.Equal(t, refusedCommit, report["commit"])
	var commitCheck map[string]any
	for _, c := range report["checks"].([]any) {
		if c.(map[string]any)["id"] == "commit-allowed" {
			commitCheck = c.(map[string]any)
		}
	}
	require.NotNil(t, commitCheck)
	assert.Equal(t, "fail", commitCheck["status"])
	assert.Contains(t, commitCheck["summary"], refusedCommit)
}

func TestHealthShipFromFileAndStdin(t *testing.T) {
	t.Parallel()
	r := startDrReceiver(t, drSetup{hosts: []string{"lab-07"}})
	h := newDrHost(t, "lab-07", r.URL).withToken(t, r.tokens["lab-07"])

	file := filepath.Join(t.TempDir(), "report.json")
	require.NoError(t, os.WriteFile(file, []byte(`{"schema":"cis490.doctor/v1","host":"lab-07","status":"warn","from":"file"}`), 0o600))
	res := h.healthShip(t, bin, nil, file)
	require.Equal(t, 0, res.Code, res.Stderr)
	_, report := storedReport(t, r, "lab-07")
	assert.Equal(t, "file", report["from"])

	res = h.healthShip(t, bin, strings.NewReader(`{"host":"lab-07","status":"ok","from":"stdin"}`), "-")
	require.Equal(t, 0, res.Code, res.Stderr)
	_, report = storedReport(t, r, "lab-07")
	assert.Equal(t, "stdin", report["from"])

	// What `doctor --json` prints is what `health ship -` takes.
	out := Run(t, bin, h.env, nil, "--config", h.cfg, "doctor", "--json")
	res = h.healthShip(t, bin, strings.NewReader(out.Stdout), "-")
	require.Equal(t, 0, res.Code, res.Stderr)
	_, report = storedReport(t, r, "lab-07")
	assert.Equal(t, doctor.Schema, report["schema"])
}

func TestHealthShipRefusesWhatIsNotAReportBeforeSending(t *testing.T) {
	t.Parallel()
	r := startDrReceiver(t, drSetup{hosts: []string{"lab-07"}})
	h := newDrHost(t, "lab-07", r.URL).withToken(t, r.tokens["lab-07"])
	for _, tc := range []struct{ name, input, want string }{
		{"array", `[1, 2]`, "not a JSON object"},
		{"null", `null`, "not a JSON object"},
		{"garbage", `ok, I guess`, "not a JSON object"},
		{"empty", ``, "not a JSON object"},
		{"another host's report", `{"host":"lab-08","status":"ok"}`, `about host "lab-08", but this host is "lab-07"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := h.healthShip(t, bin, strings.NewReader(tc.input), "-")
			assert.Equal(t, 2, res.Code)
			assert.Contains(t, res.Stderr, tc.want)
		})
	}
	res := h.healthShip(t, bin, nil, filepath.Join(t.TempDir(), "missing.json"))
	assert.Equal(t, 2, res.Code)
	assert.Contains(t, res.Stderr, "missing.json")

	status, _ := storedReport(t, r, "lab-07")
	assert.Equal(t, http.StatusNotFound, status)
	assert.Equal(t, 1, count(receiverIndex(t, r.data), "host-health", 0), "nothing was sent but the test's own GET")
}

func TestHealthShipNotDelivered(t *testing.T) {
	t.Parallel()
	t.Run("receiver down", func(t *testing.T) {
		t.Parallel()
		h := newDrHost(t, "lab-07", "http://"+unusedAddr(t))
		res := h.healthShip(t, bin, strings.NewReader(`{"status":"ok"}`), "-")
		assert.Equal(t, 1, res.Code)
		assert.Contains(t, res.Stderr, "health report not delivered")
		assert.Contains(t, res.Stderr, "connection refused")
	})
	t.Run("token refused", func(t *testing.T) {
		t.Parallel()
		r := startDrReceiver(t, drSetup{hosts: []string{"lab-07"}})
		h := newDrHost(t, "lab-07", r.URL).withToken(t, "c490_not-a-token-the-receiver-knows")
		res := h.healthShip(t, bin, strings.NewReader(`{"status":"ok"}`), "-")
		assert.Equal(t, 1, res.Code)
		assert.Contains(t, res.Stderr, "answered 401")
		assert.Contains(t, res.Stderr, "cis490 token new --host lab-07")
	})
}

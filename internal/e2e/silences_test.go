package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/silences"
)

var silenceID = regexp.MustCompile(`^[0-9a-f]{8}\n$`)

func listSilences(t *testing.T, r *fleetReceiver, args ...string) []silences.View {
	t.Helper()
	res := r.cis490(t, append([]string{"alerts", "silences", "--json"}, args...)...)
	require.Equal(t, 0, res.Code, res.Stderr)
	var views []silences.View
	require.NoError(t, json.Unmarshal([]byte(res.Stdout), &views), res.Stdout)
	return views
}

// On the Pi: the commands work on the data folder a running receiver writes.
func TestSilencesLocally(t *testing.T) {
	t.Parallel()
	r := startFleetReceiver(t, false)
	r.reports(t, "lab-07")
	path := filepath.Join(r.data, "silences.jsonl")

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no end", []string{"--host", "lab-07", "--reason", "r"}, "a silence needs an end"},
		{"end in the past", []string{"--host", "lab-07", "--until", "2020-01-01T00:00:00Z", "--reason", "r"}, "is not in the future"},
		{"unknown symptom", []string{"--host", "lab-07", "--symptom", "grumpy", "--for", "1h", "--reason", "r"}, "is not one fleet health knows"},
		{"unknown host", []string{"--host", "lab-7", "--for", "1h", "--reason", "r"}, "host lab-7 is unknown to this receiver"},
	} {
		res := r.cis490(t, append([]string{"alerts", "silence"}, tc.args...)...)
		assert.Equal(t, 2, res.Code, "%s: %s", tc.name, res.Stderr)
		assert.Contains(t, res.Stderr, tc.want, tc.name)
		assert.NoFileExists(t, path, "%s: nothing written", tc.name)
	}

	res := r.cis490(t, "alerts", "silence", "--host", "lab-07", "--symptom", "silent", "--for", "4h", "--reason", "moving racks")
	require.Equal(t, 0, res.Code, res.Stderr)
	require.Regexp(t, silenceID, res.Stdout, "the id alone on stdout")
	id := strings.TrimSpace(res.Stdout)
	assert.Contains(t, res.Stderr, "silenced lab-07/silent until")

	res = r.cis490(t, "alerts", "silences")
	require.Equal(t, 0, res.Code, res.Stderr)
	assert.Regexp(t, id+`\s+lab-07\s+silent\s+active\s+.*local\s+moving racks`, res.Stdout)

	res = r.cis490(t, "alerts", "unsilence", id)
	require.Equal(t, 0, res.Code, res.Stderr)
	assert.Contains(t, res.Stderr, "ended silence "+id)
	views := listSilences(t, r)
	require.Len(t, views, 1)
	assert.Equal(t, silences.StateEnded, views[0].State, "kept, marked ended")

	res = r.cis490(t, "alerts", "unsilence", "ffffffff")
	assert.Equal(t, 2, res.Code, res.Stderr)
	assert.Contains(t, res.Stderr, `no such silence with id "ffffffff"`)

	// The running receiver answers from the same file.
	remote := listSilences(t, r, "--remote")
	require.Len(t, remote, 1)
	assert.Equal(t, views[0].Silence, remote[0].Silence)
}

// From the laptop: the same commands with --remote, through the one transport with
// the admin token, against a receiver with a tokens file.
func TestSilencesRemotely(t *testing.T) {
	t.Parallel()
	r := startFleetReceiver(t, true)
	res := r.cis490(t, "token", "new", "--host", "lab-07")
	require.Equal(t, 0, res.Code, res.Stderr)
	hostToken := strings.TrimSpace(res.Stdout)
	path := filepath.Join(r.data, "silences.jsonl")

	res = r.cis490(t, "alerts", "silence", "--remote", "--host", "lab-99", "--for", "1h", "--reason", "typo")
	assert.Equal(t, 2, res.Code, res.Stderr)
	assert.Contains(t, res.Stderr, "answered 400: host lab-99 is unknown to this receiver")
	res = r.cis490(t, "alerts", "silence", "--remote", "--host", "lab-07", "--for", "9d", "--reason", "too long")
	assert.Equal(t, 2, res.Code, res.Stderr)
	assert.Contains(t, res.Stderr, "fleet_health.max_silence")
	assert.NoFileExists(t, path, "nothing written")

	res = r.cis490(t, "alerts", "silence", "--remote", "--host", "lab-07", "--for", "2h", "--reason", "network work")
	require.Equal(t, 0, res.Code, res.Stderr)
	require.Regexp(t, silenceID, res.Stdout)
	id := strings.TrimSpace(res.Stdout)

	views := listSilences(t, r, "--remote")
	require.Len(t, views, 1)
	assert.Equal(t, id, views[0].ID)
	assert.Equal(t, "lab-07", views[0].Host, "a roster host is known before it ever spoke")
	assert.Equal(t, "alice", views[0].By, "made by the admin whose token it was")
	assert.Equal(t, silences.StateActive, views[0].State)
	set, _, err := silences.Load(path)
	require.NoError(t, err)
	_, ok := set.Match("lab-07", "silent", views[0].Start)
	assert.True(t, ok, "in the receiver's data folder, where fleet health reads it")

	// A host's own token may not silence anything (once the receiver has loaded it:
	// it reloads its tokens file within a second).
	require.Eventually(t, func() bool { return tokenAccepted(r.srv.URL, hostToken) }, 10*time.Second, 50*time.Millisecond)
	hostTokenFile := filepath.Join(r.dir, "host.token")
	require.NoError(t, os.WriteFile(hostTokenFile, []byte(hostToken+"\n"), 0o600))
	env := append(append([]string{}, r.env...), "CIS490_RECEIVER_TOKEN_FILE="+hostTokenFile, "CIS490_HOST=lab-07")
	res = Run(t, bin, env, nil, "--config", r.cfg, "alerts", "unsilence", "--remote", id)
	assert.Equal(t, 1, res.Code, res.Stderr)
	assert.Contains(t, res.Stderr, "answered 403: silences are for the admin")

	res = r.cis490(t, "alerts", "unsilence", "--remote", id)
	require.Equal(t, 0, res.Code, res.Stderr)
	assert.Contains(t, res.Stderr, "ended silence "+id)
	res = r.cis490(t, "alerts", "unsilence", "--remote", id)
	require.Equal(t, 0, res.Code, "ending it again is no error: %s", res.Stderr)
	assert.Contains(t, res.Stderr, "nothing to do")
	assert.Contains(t, res.Stderr, "already ended at")
	res = r.cis490(t, "alerts", "unsilence", "--remote", "ffffffff")
	assert.Equal(t, 2, res.Code, res.Stderr)
	assert.Contains(t, res.Stderr, "answered 404")

	views = listSilences(t, r, "--remote")
	require.Len(t, views, 1)
	assert.Equal(t, silences.StateEnded, views[0].State)
}

// tokenAccepted reports whether the receiver takes token; no require: it runs in
// Eventually's goroutine.
func tokenAccepted(url, token string) bool {
	req, err := http.NewRequest(http.MethodGet, url+"/v1/whoami", nil)
	if err != nil {
		return false
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	res.Body.Close()
	return res.StatusCode == http.StatusOK
}

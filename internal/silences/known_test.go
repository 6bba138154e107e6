package silences

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/tokens"
)

func TestKnownHosts(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	require.NoError(t, os.MkdirAll(filepath.Join(data, "host-health"), 0o750))
	require.NoError(t, os.WriteFile(filepath.Join(data, "host-health", "lab-reported.json"), []byte(`{"status":"ok"}`), 0o640))
	require.NoError(t, os.Mkdir(filepath.Join(data, "host-health", "lab-folder.json"), 0o750))
	require.NoError(t, os.WriteFile(filepath.Join(data, "fleet-health.json"),
		[]byte(`{"version":1,"hosts":{"lab-seen":{"first_seen":"2026-11-28T17:00:00Z"}},"fired":{}}`), 0o640))
	tokensFile := filepath.Join(dir, "tokens.toml")
	_, err := tokens.Append(tokensFile, tokens.Identity{Host: "lab-roster"}, t0)
	require.NoError(t, err)
	_, err = tokens.Append(tokensFile, tokens.Identity{Admin: "alice"}, t0)
	require.NoError(t, err)

	withTokens := Known{DataDir: data, TokensFile: tokensFile, Self: "Pi"}
	open := Known{DataDir: data}
	for _, tc := range []struct {
		name  string
		known Known
		host  string
		err   string
	}{
		{"the receiver itself", withTokens, "pi", ""},
		{"a roster host", withTokens, "LAB-ROSTER", ""},
		{"a host with a report", withTokens, "lab-reported", ""},
		{"a host fleet health tracks", withTokens, "lab-seen", ""},
		{"an admin is no host", withTokens, "alice", "host alice is unknown to this receiver (no live host token in " + tokensFile},
		{"a folder is no report", open, "lab-folder", "no doctor report in " + filepath.Join(data, "host-health")},
		{"a typo", open, "lab-sen", "host lab-sen is unknown to this receiver (no doctor report in " +
			filepath.Join(data, "host-health") + ", fleet health has not seen it): check the name"},
		{"open mode has no roster", open, "lab-roster", "unknown"},
		{"not a host name", open, "lab_07", `host "lab_07" is not an RFC 1123 host name`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.known.Check(tc.host, t0)
			if tc.err == "" {
				assert.NoError(t, err)
				return
			}
			assert.ErrorIs(t, err, ErrInvalid)
			assert.ErrorContains(t, err, tc.err)
		})
	}
}

func TestKnownHostsSurvivesADamagedStateButNotAnUnreadableTokensFile(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(data, "fleet-health.json"), []byte(`{"hosts":`), 0o640))
	err := Known{DataDir: data}.Check("lab-07", t0)
	assert.ErrorIs(t, err, ErrInvalid, "a damaged state only means fleet health saw nobody")

	err = Known{DataDir: data, TokensFile: filepath.Join(data, "missing.toml")}.Check("lab-07", t0)
	require.Error(t, err)
	assert.NotErrorIs(t, err, ErrInvalid, "not the input's fault")
	assert.ErrorContains(t, err, "tokens file")
}

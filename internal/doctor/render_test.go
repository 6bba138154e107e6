package doctor

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func sample() Report {
	return Report{
		Schema: Schema, Host: "lab-07", Version: "v1.0.0", Commit: "abc1234",
		GeneratedAt: time.Date(2026, 11, 28, 18, 0, 0, 0, time.UTC), Status: Fail,
		Checks: []Check{
			{ID: "config", Status: OK, Summary: "loaded /etc/cis490/lab-host.toml", Details: map[string]any{}},
			{ID: "token", Status: Fail, Summary: "the receiver refused the token", Hint: "check receiver.token_file", DurationMS: 1.5, Details: map[string]any{"status": 401}},
			{ID: "spool", Status: Warn, Summary: "1 in rejected/", Hint: "read the .reason file", Details: map[string]any{}},
			{ID: "timers", Status: Skip, Summary: "no systemd", Details: map[string]any{}},
		},
	}
}

func TestWriteHuman(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	require.NoError(t, WriteHuman(&b, sample()))
	assert.Equal(t, `✓ config  loaded /etc/cis490/lab-host.toml
✗ token   the receiver refused the token
          → check receiver.token_file
! spool   1 in rejected/
          → read the .reason file
- timers  no systemd

lab-07: fail (1 failed, 1 warning, 1 ok, 1 skipped)
`, b.String())
}

func TestWriteJSONIsTheV1Document(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	require.NoError(t, WriteJSON(&b, sample()))
	var doc map[string]any
	require.NoError(t, json.Unmarshal(b.Bytes(), &doc))
	assert.Equal(t, "cis490.doctor/v1", doc["schema"])
	for _, key := range []string{"host", "version", "commit", "generated_at", "status", "checks"} {
		assert.Contains(t, doc, key)
	}
	check := doc["checks"].([]any)[1].(map[string]any)
	for _, key := range []string{"id", "status", "summary", "hint", "duration_ms", "details"} {
		assert.Contains(t, check, key)
	}
	assert.Equal(t, "2026-11-28T18:00:00Z", doc["generated_at"])
}

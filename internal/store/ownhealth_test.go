package store

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The Pi files its own doctor report beside a running receiver: whole or not at all,
// and without sweeping the receiver's tmp/ as Open would.
func TestPutOwnHealth(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 28, 18, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		host   string
		report string
		err    error
		errMsg string
	}{
		{"a report", "pi", `{"status":"warn","host":"pi"}`, nil, ""},
		{"not an object", "pi", `[1,2]`, ErrNotObject, ""},
		{"not a host name", "Pi_1", `{}`, ErrBadName, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			inFlight := filepath.Join(dir, "tmp", "upload-123")
			require.NoError(t, os.MkdirAll(filepath.Dir(inFlight), 0o750))
			require.NoError(t, os.WriteFile(inFlight, []byte("half an episode"), 0o600))

			err := PutOwnHealth(dir, tc.host, []byte(tc.report), at)
			assert.FileExists(t, inFlight, "the receiver's uploads in flight are left alone")
			entries, _ := os.ReadDir(filepath.Join(dir, "tmp"))
			assert.Len(t, entries, 1, "no temp file is left behind")
			if tc.err != nil {
				require.ErrorIs(t, err, tc.err)
				assert.NoFileExists(t, filepath.Join(dir, "host-health", tc.host+".json"))
				return
			}
			require.NoError(t, err)
			got, err := os.ReadFile(filepath.Join(dir, "host-health", tc.host+".json"))
			require.NoError(t, err)
			assert.JSONEq(t, `{"status":"warn","host":"pi","received_at":"2026-11-28T18:00:00Z"}`, string(got))
		})
	}
}

func TestPutOwnHealthNeedsTheDataFolder(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "never-served")
	err := PutOwnHealth(missing, "pi", []byte(`{}`), time.Now())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "serve.data_dir")
	assert.NoDirExists(t, missing, "nothing is created where no receiver ever ran")
}

package store

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPutHostHealth(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := newStore(t, dir, Options{})
	at := time.Date(2025, 6, 7, 8, 9, 10, 0, time.FixedZone("CEST", 2*3600))

	_, err := s.HostHealth("lab-07")
	assert.ErrorIs(t, err, fs.ErrNotExist)

	// The client's own received_at is replaced by the receiver's.
	report := []byte(`{"status": "ok", "checks": [{"name": "disk"}], "received_at": "1999-01-01T00:00:00Z"}`)
	require.NoError(t, s.PutHostHealth("lab-07", report, at))
	require.NoError(t, s.PutHostHealth("lab-08", []byte(`{"status":"fail"}`), at))
	require.NoError(t, s.PutHostHealth("lab-07", []byte(`{"status":"warn"}`), at.Add(time.Minute)))

	got, err := s.HostHealth("lab-07")
	require.NoError(t, err)
	assert.JSONEq(t, `{"status":"warn","received_at":"2025-06-07T06:10:10Z"}`, string(got))

	// Strays in host-health/ are not hosts.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "host-health", "README"), nil, 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "host-health", "LAB-09.json"), []byte(`{}`), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "host-health", "lab-10.json"), []byte(`{broken`), 0o600))
	all, err := s.AllHostHealth()
	require.NoError(t, err)
	require.Len(t, all, 2)
	assert.JSONEq(t, string(got), string(all["lab-07"]))
	assert.JSONEq(t, `{"status":"fail","received_at":"2025-06-07T06:09:10Z"}`, string(all["lab-08"]))
	entries, err := os.ReadDir(filepath.Join(dir, "tmp"))
	require.NoError(t, err)
	assert.Empty(t, entries)
}

func TestPutHostHealthRejectsNonObjects(t *testing.T) {
	t.Parallel()
	for _, body := range []string{``, `null`, `[]`, `[{"status":"ok"}]`, `"ok"`, `42`, `true`, `{"a":`, `not json`, `{} {}`} {
		t.Run(body, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			s := newStore(t, dir, Options{})
			assert.ErrorIs(t, s.PutHostHealth("lab-07", []byte(body), time.Now()), ErrNotObject)
			assert.Equal(t, emptyStore, tree(t, dir))
			all, err := s.AllHostHealth()
			require.NoError(t, err)
			assert.Empty(t, all)
		})
	}
}

func TestAllHostHealthIsValidJSON(t *testing.T) {
	t.Parallel()
	s := newStore(t, t.TempDir(), Options{})
	require.NoError(t, s.PutHostHealth("lab-07", []byte(`{"n":1}`), time.Now()))
	all, err := s.AllHostHealth()
	require.NoError(t, err)
	_, err = json.Marshal(all)
	assert.NoError(t, err)
}

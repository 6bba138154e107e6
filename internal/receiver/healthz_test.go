package receiver_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/buildinfo"
	"github.com/cis490/cis490/internal/config"
	"github.com/cis490/cis490/internal/gate"
	"github.com/cis490/cis490/internal/index"
	"github.com/cis490/cis490/internal/protocol"
	"github.com/cis490/cis490/internal/receiver"
	"github.com/cis490/cis490/internal/store"
	"github.com/cis490/cis490/internal/testutil"
)

// gateReceiver is a real receiver over real gate sources on a loopback port, with the
// gate's clock in the test's hands.
func gateReceiver(t *testing.T, sources []gate.Source, now func() time.Time) (*httptest.Server, *gate.Gate) {
	t.Helper()
	data := filepath.Join(t.TempDir(), "data")
	logs := &testutil.SyncBuffer{}
	log := zerolog.New(logs)
	st, err := store.Open(data, store.Options{Logger: log})
	require.NoError(t, err)
	idx, err := index.OpenWriter(filepath.Join(data, "index"))
	require.NoError(t, err)
	t.Cleanup(func() { idx.Close() })
	g := gate.New(sources, gate.Options{Logger: log, Now: now})
	srv := receiver.New(receiver.Options{Config: config.Default().Serve, Store: st, Index: idx, Gate: g, Logger: log})
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return ts, g
}

func getHealth(t *testing.T, url string) (int, string, protocol.Health) {
	t.Helper()
	res, err := http.Get(url + "/healthz")
	require.NoError(t, err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	var h protocol.Health
	require.NoError(t, json.Unmarshal(body, &h), "the body is JSON: %s", body)
	assert.Equal(t, "application/json", res.Header.Get("Content-Type"))
	return res.StatusCode, string(body), h
}

func TestHealthzReportsEachGateSource(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 28, 18, 0, 0, 0, time.UTC)
	clock := t0
	now := func() time.Time { return clock }
	dir := t.TempDir()
	list := filepath.Join(dir, "allowlist")
	require.NoError(t, os.WriteFile(list, []byte("abcdef1234567890\n"), 0o600))
	notARepo := filepath.Join(dir, "not-a-repo")
	require.NoError(t, os.Mkdir(notARepo, 0o700))
	ts, g := gateReceiver(t, []gate.Source{gate.NewFileSource(list), gate.NewGitSource(notARepo, "main", 10)}, func() time.Time { return now() })

	// Both tried at t0: the file loads, git fails (no repository there).
	_ = g.Refresh(t.Context())
	// At t0+5m the file is gone too: it keeps its list, and fails from then on.
	require.NoError(t, os.Remove(list))
	clock = t0.Add(5 * time.Minute)
	_ = g.Refresh(t.Context())

	status, body, h := getHealth(t, ts.URL)
	require.Equal(t, http.StatusOK, status, "a failing source is news, not an outage: /healthz stays 200")
	b := buildinfo.Get()
	assert.Equal(t, protocol.Health{
		Status: protocol.HealthOK, Version: b.Version, Commit: b.Commit,
		Gate: []protocol.GateSource{
			{Name: protocol.GateSourceAllowlistFile, Loaded: true, LastOK: t0, FailingSince: t0.Add(5 * time.Minute)},
			{Name: protocol.GateSourceGit, Loaded: false, FailingSince: t0},
		},
	}, h)
	for _, secret := range []string{dir, "allowlist\"", "not-a-repo", "no such file", "fatal"} {
		assert.NotContains(t, body, secret, "unauthenticated: no path, no error text")
	}
}

func TestHealthzWithoutGateSources(t *testing.T) {
	t.Parallel()
	ts, _ := gateReceiver(t, nil, nil)
	status, body, h := getHealth(t, ts.URL)
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, protocol.HealthOK, h.Status)
	assert.Empty(t, h.Gate)
	assert.Contains(t, body, `"gate":[]`, "an open gate is an empty list, not null")
}

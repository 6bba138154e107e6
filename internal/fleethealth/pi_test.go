package fleethealth

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/config"
	"github.com/cis490/cis490/internal/localprobe"
	"github.com/cis490/cis490/internal/protocol"
	"github.com/cis490/cis490/internal/testutil"
)

const piMiB = 1 << 20

// piConfig is the Pi's configuration with its data folder in dir and a receiver
// listening on listen.
func piConfig(dir, listen string, minFree int64) config.Config {
	cfg := config.Default()
	cfg.Host = "pi"
	cfg.Serve.DataDir = dir
	cfg.Serve.Listen = listen
	cfg.Serve.MinFreeBytes = config.ByteSize(minFree)
	return cfg
}

// piHealthz serves h as /healthz on a loopback port and returns serve.listen for it.
func piHealthz(t *testing.T, h protocol.Health) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{ReadHeaderTimeout: time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(h)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// closedPort is a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

func findingOf(fs []Finding, symptom string) *Finding {
	for i := range fs {
		if fs[i].Symptom == symptom {
			return &fs[i]
		}
	}
	return nil
}

// disk-low from a real file system that fills up: a 16 MiB tmpfs as the data folder.
func TestPiDiskLowFromARealDisk(t *testing.T) {
	t.Parallel()
	dir := testutil.Tmpfs(t, 16*piMiB)
	listen := piHealthz(t, protocol.Health{Status: protocol.HealthOK, Gate: []protocol.GateSource{}})
	fh := config.Default().FleetHealth
	now := t0

	for _, tc := range []struct {
		name    string
		minFree int64
		fill    bool
		low     bool
		says    string
	}{
		{"plenty of room", 2 * piMiB, false, false, ""},
		{"under twice min_free_bytes", 10 * piMiB, false, true, "under twice serve.min_free_bytes (10.0 MiB)"},
		{"under min_free_bytes", 2 * piMiB, true, true, "every upload is refused 507"},
		{"no floor at all", 0, true, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.fill {
				filler := testutil.FillDisk(t, dir)
				t.Cleanup(func() { _ = os.Remove(filler) })
			}
			rf := GatherReceiverFacts(t.Context(), piConfig(dir, listen, tc.minFree))
			require.NoError(t, rf.FreeErr)
			require.NoError(t, rf.HealthErr)
			assert.LessOrEqual(t, rf.FreeBytes, uint64(16*piMiB))
			f := findingOf(piFindings(rf, time.Time{}, now, fh), DiskLow)
			if !tc.low {
				assert.Nil(t, f, "%d bytes free", rf.FreeBytes)
				return
			}
			require.NotNil(t, f, "%d bytes free", rf.FreeBytes)
			assert.Equal(t, now, f.Since, "free space is only known as of now")
			assert.Contains(t, f.Summary, tc.says)
			assert.Contains(t, f.Summary, "lower serve.min_free_bytes")
			assert.Equal(t, rf.FreeBytes, f.Evidence["free_bytes"])
			assert.Equal(t, uint64(tc.minFree), f.Evidence["min_free_bytes"])
			assert.Nil(t, f.Evidence["last_507"])
		})
	}
}

func TestPiDiskLowFromA507(t *testing.T) {
	t.Parallel()
	fh := config.Default().FleetHealth // fatal_window 1h
	plenty := &ReceiverFacts{Host: "pi", DataDir: "/data", FreeBytes: 10 * piMiB, MinFreeBytes: piMiB,
		Health: &protocol.Health{Status: protocol.HealthOK}}
	low := *plenty
	low.FreeBytes = piMiB + 1
	for _, tc := range []struct {
		name  string
		rf    *ReceiverFacts
		at507 time.Time
		since time.Time // zero: no disk-low
	}{
		{"none", plenty, time.Time{}, time.Time{}},
		{"a 507 ten minutes ago", plenty, t0.Add(-10 * time.Minute), t0.Add(-10 * time.Minute)},
		{"a 507 two hours ago", plenty, t0.Add(-2 * time.Hour), time.Time{}},
		{"a 507 after now (evaluating the past)", plenty, t0.Add(time.Minute), time.Time{}},
		{"low and a 507: the 507 dates it", &low, t0.Add(-10 * time.Minute), t0.Add(-10 * time.Minute)},
		{"low, the 507 long ago", &low, t0.Add(-2 * time.Hour), t0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := findingOf(piFindings(tc.rf, tc.at507, t0, fh), DiskLow)
			if tc.since.IsZero() {
				assert.Nil(t, f)
				return
			}
			require.NotNil(t, f)
			assert.Equal(t, tc.since, f.Since)
			if tc.since != t0 {
				assert.Equal(t, tc.at507, f.Evidence["last_507"])
				assert.Contains(t, f.Summary, "refused 507")
			}
		})
	}
}

func TestPiDiskLowNeedsAReading(t *testing.T) {
	t.Parallel()
	rf := GatherReceiverFacts(t.Context(), piConfig(filepath.Join(t.TempDir(), "missing"), closedPort(t), piMiB))
	require.Error(t, rf.FreeErr)
	assert.Nil(t, findingOf(piFindings(rf, time.Time{}, t0, config.Default().FleetHealth), DiskLow),
		"an unreadable disk is not a full one")
}

func TestPiGateStale(t *testing.T) {
	t.Parallel()
	fh := config.Default().FleetHealth // gate_stale_after 15m
	healthy := protocol.GateSource{Name: protocol.GateSourceGit, Loaded: true, LastOK: t0.Add(-time.Minute)}
	for _, tc := range []struct {
		name   string
		health *protocol.Health
		since  time.Time // zero: not stale
		says   []string
	}{
		{"no sources: an open gate is not stale", &protocol.Health{Status: protocol.HealthOK, Gate: []protocol.GateSource{}}, time.Time{}, nil},
		{"all fine", &protocol.Health{Status: protocol.HealthOK, Gate: []protocol.GateSource{healthy}}, time.Time{}, nil},
		{"failing for 10m", &protocol.Health{Status: protocol.HealthOK, Gate: []protocol.GateSource{
			{Name: protocol.GateSourceAllowlistFile, Loaded: true, LastOK: t0.Add(-11 * time.Minute), FailingSince: t0.Add(-10 * time.Minute)}, healthy,
		}}, time.Time{}, nil},
		{"failing for 20m", &protocol.Health{Status: protocol.HealthOK, Gate: []protocol.GateSource{
			{Name: protocol.GateSourceAllowlistFile, Loaded: true, LastOK: t0.Add(-21 * time.Minute), FailingSince: t0.Add(-20 * time.Minute)}, healthy,
		}}, t0.Add(-5 * time.Minute), []string{"allowlist_file has failed to refresh since 2026-11-28 17:40Z", "keeps its last good list", "journalctl -u cis490-receiver"}},
		{"never loaded", &protocol.Health{Status: protocol.HealthOK, Gate: []protocol.GateSource{
			{Name: protocol.GateSourceGit, FailingSince: t0.Add(-time.Minute)},
		}}, t0.Add(-time.Minute), []string{"git never loaded", "lets every commit through"}},
		{"draining: not judged", &protocol.Health{Status: protocol.HealthDraining}, time.Time{}, nil},
		{"no answer: not judged", nil, time.Time{}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rf := &ReceiverFacts{Host: "pi", Health: tc.health}
			f := findingOf(piFindings(rf, time.Time{}, t0, fh), GateStale)
			if tc.since.IsZero() {
				assert.Nil(t, f)
				return
			}
			require.NotNil(t, f)
			assert.Equal(t, tc.since, f.Since, "threshold: failing since plus gate_stale_after, or since it first failed to load")
			for _, s := range tc.says {
				assert.Contains(t, f.Summary, s)
			}
			assert.Equal(t, "15m", f.Evidence["gate_stale_after"])
			assert.Len(t, f.Evidence["sources"], 1, "only the stale ones")
		})
	}
}

func TestPiReceiverDown(t *testing.T) {
	t.Parallel()
	fh := config.Default().FleetHealth
	t.Run("closed port", func(t *testing.T) {
		t.Parallel()
		rf := GatherReceiverFacts(t.Context(), piConfig(t.TempDir(), closedPort(t), 0))
		require.Error(t, rf.HealthErr)
		fs := piFindings(rf, time.Time{}, t0, fh)
		f := findingOf(fs, ReceiverDown)
		require.NotNil(t, f)
		assert.Equal(t, t0, f.Since)
		assert.Contains(t, f.Summary, "the receiver on pi does not answer /healthz")
		assert.Contains(t, f.Summary, "systemctl status cis490-receiver")
		assert.Equal(t, rf.HealthErr.Error(), f.Evidence["error"])
		assert.Nil(t, findingOf(fs, GateStale), "nothing is known of the gate")
	})
	t.Run("answering", func(t *testing.T) {
		t.Parallel()
		listen := piHealthz(t, protocol.Health{Status: protocol.HealthOK, Gate: []protocol.GateSource{}})
		rf := GatherReceiverFacts(t.Context(), piConfig(t.TempDir(), listen, 0))
		require.NoError(t, rf.HealthErr)
		assert.Equal(t, "pi", rf.Host)
		assert.Empty(t, piFindings(rf, time.Time{}, t0, fh))
	})
	t.Run("up behind mTLS", func(t *testing.T) {
		t.Parallel()
		rf := &ReceiverFacts{Host: "pi", HealthErr: fmt.Errorf("https://127.0.0.1:8490: %w", localprobe.ErrClientCertRequired)}
		assert.Nil(t, findingOf(piFindings(rf, time.Time{}, t0, fh), ReceiverDown), "it answered the handshake with our certificate")
	})
}

package doctor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/buildinfo"
	"github.com/cis490/cis490/internal/config"
	"github.com/cis490/cis490/internal/localprobe"
	"github.com/cis490/cis490/internal/protocol"
	"github.com/cis490/cis490/internal/testpki"
	"github.com/cis490/cis490/internal/testutil"
	"github.com/cis490/cis490/internal/tokens"
)

func TestPickRole(t *testing.T) {
	t.Parallel()
	pi := map[string]bool{"serve": true, "fleet_health": true}
	both := map[string]bool{"serve": true, "receiver": true}
	lab := map[string]bool{"receiver": true, "ship": true}
	for _, tc := range []struct {
		flag     string
		sections map[string]bool
		want     Role
	}{
		{"auto", pi, RoleReceiver},
		{"", pi, RoleReceiver},
		{"auto", both, RoleLabHost},
		{"auto", lab, RoleLabHost},
		{"auto", map[string]bool{}, RoleLabHost},
		{"receiver", lab, RoleReceiver},
		{"lab-host", pi, RoleLabHost},
	} {
		t.Run(fmt.Sprintf("%s %v", tc.flag, tc.sections), func(t *testing.T) {
			t.Parallel()
			got, err := PickRole(tc.flag, tc.sections)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
	_, err := PickRole("pi", pi)
	assert.ErrorContains(t, err, "use auto, lab-host or receiver")
}

func TestReceiverRoleWithABrokenConfiguration(t *testing.T) {
	t.Parallel()
	r := RunAs(context.Background(), RoleReceiver, Options{
		ConfigErr:  errors.New("config /etc/cis490/lab-host.toml: unknown key serve.lisen"),
		Build:      buildinfo.Info{Version: "v1.2.3", Commit: "0123456789abcdef0123456789abcdef01234567"},
		SystemdDir: "/nonexistent/systemd",
	})
	ids := make([]string, len(r.Checks))
	for i, c := range r.Checks {
		ids[i] = c.ID
	}
	assert.Equal(t, []string{"config", "host-name", "receiver-service", "receiver-healthz", "data-dir", "data-disk", "storage", "gate-sources",
		"server-cert", "client-ca", "tokens-file", "fleet-health-timer", "version"}, ids, "the ids and their order are a contract")
	byID := checksByID(r)
	assert.Equal(t, Fail, byID["config"].Status)
	for _, id := range []string{"host-name", "receiver-healthz", "data-dir", "data-disk", "storage", "gate-sources", "tokens-file", "fleet-health-timer"} {
		assert.Equal(t, Skip, byID[id].Status, id)
	}
	assert.Equal(t, OK, byID["version"].Status)
}

func TestCheckReceiverService(t *testing.T) {
	t.Parallel()
	c := checkReceiverService(context.Background(), "/nonexistent/run/systemd/system", fakeSystemctl(nil))
	assert.Equal(t, Skip, c.Status)
	for _, tc := range []struct {
		state  string
		status Status
		says   string
	}{
		{"active", OK, "cis490-receiver.service is active"},
		{"failed", Fail, "cis490-receiver.service is failed"},
		{"", Fail, "not installed"},
	} {
		t.Run(tc.state, func(t *testing.T) {
			t.Parallel()
			states := map[string]string{}
			if tc.state != "" {
				states["is-active cis490-receiver.service"] = tc.state
			}
			c := checkReceiverService(context.Background(), t.TempDir(), fakeSystemctl(states))
			assert.Equal(t, tc.status, c.Status, c.Summary)
			assert.Contains(t, c.Summary, tc.says)
		})
	}
}

func healthIs(h *protocol.Health, err error) func() (*protocol.Health, error) {
	return func() (*protocol.Health, error) { return h, err }
}

func TestCheckHealthz(t *testing.T) {
	t.Parallel()
	cfg := config.Default()
	cfg.Serve.Listen = "0.0.0.0:8490"
	build := buildinfo.Info{Version: "v1.2.0", Commit: "0123456789abcdef0123456789abcdef01234567"}
	for _, tc := range []struct {
		name   string
		health func() (*protocol.Health, error)
		status Status
		says   string
	}{
		{"answers", healthIs(&protocol.Health{Status: "ok", Version: build.Version, Commit: build.Commit}, nil), OK, "http://127.0.0.1:8490 answered: ok"},
		{"an older binary", healthIs(&protocol.Health{Status: "ok", Version: "v1.1.0", Commit: "89abcdef"}, nil), Warn, "this cis490 is v1.2.0"},
		{"draining", healthIs(&protocol.Health{Status: protocol.HealthDraining}, nil), Warn, "shutting down"},
		{"down", healthIs(nil, errors.New("http://127.0.0.1:8490: connection refused")), Fail, "connection refused"},
		{"behind mTLS", healthIs(nil, fmt.Errorf("x: %w", localprobe.ErrClientCertRequired)), Warn, "wants a client certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := checkHealthz(cfg, tc.health, build)
			assert.Equal(t, tc.status, c.Status, c.Summary)
			assert.Contains(t, c.Summary, tc.says)
			if c.Status != OK {
				assert.NotEmpty(t, c.Hint)
			}
		})
	}
}

func TestCheckDataDir(t *testing.T) {
	t.Parallel()
	good := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(good, "tmp"), 0o750))
	broken := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(broken, "tmp"), nil, 0o600)) // a file where tmp/ should be
	for _, tc := range []struct {
		name, dir string
		status    Status
		says      string
	}{
		{"writable", good, OK, "is writable"},
		{"never served", filepath.Join(good, "missing"), Fail, "has `cis490 serve` ever run"},
		{"tmp is not a folder", broken, Fail, "cannot create a file in"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := checkDataDir(tc.dir)
			assert.Equal(t, tc.status, c.Status, c.Summary)
			assert.Contains(t, c.Summary, tc.says)
		})
	}
	entries, err := os.ReadDir(filepath.Join(good, "tmp"))
	require.NoError(t, err)
	assert.Empty(t, entries, "the probe file is gone")
}

// Free space of a real 16 MiB file system against min_free_bytes.
func TestCheckDataDisk(t *testing.T) {
	t.Parallel()
	dir := testutil.Tmpfs(t, 16<<20)
	for _, tc := range []struct {
		minFree int64
		status  Status
	}{
		{2 << 20, OK}, {10 << 20, Warn}, {20 << 20, Fail}, {0, OK},
	} {
		t.Run(fmt.Sprint(tc.minFree), func(t *testing.T) {
			t.Parallel()
			sc := config.Default().Serve
			sc.DataDir, sc.MinFreeBytes = dir, config.ByteSize(tc.minFree)
			c := checkDataDisk(sc)
			assert.Equal(t, tc.status, c.Status, c.Summary)
			assert.Equal(t, uint64(tc.minFree), c.Details["min_free_bytes"])
			if c.Status != OK {
				assert.Contains(t, c.Hint, "lower serve.min_free_bytes")
			}
		})
	}
}

func TestCheckGateSources(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 28, 18, 0, 0, 0, time.UTC)
	cfg := config.Default() // gate_stale_after 15m
	fine := protocol.GateSource{Name: protocol.GateSourceGit, Loaded: true, LastOK: now.Add(-time.Minute)}
	for _, tc := range []struct {
		name   string
		health func() (*protocol.Health, error)
		status Status
		says   string
	}{
		{"open gate", healthIs(&protocol.Health{Status: "ok", Gate: []protocol.GateSource{}}, nil), OK, "the version gate is open"},
		{"fresh", healthIs(&protocol.Health{Status: "ok", Gate: []protocol.GateSource{fine}}, nil), OK, "git refreshed 1m ago"},
		{"failing a little", healthIs(&protocol.Health{Status: "ok", Gate: []protocol.GateSource{fine,
			{Name: protocol.GateSourceAllowlistFile, Loaded: true, LastOK: now.Add(-6 * time.Minute), FailingSince: now.Add(-5 * time.Minute)}}}, nil),
			Warn, "allowlist_file has failed to refresh for 5m"},
		{"stale", healthIs(&protocol.Health{Status: "ok", Gate: []protocol.GateSource{fine,
			{Name: protocol.GateSourceAllowlistFile, Loaded: true, LastOK: now.Add(-time.Hour), FailingSince: now.Add(-20 * time.Minute)}}}, nil),
			Fail, "over fleet_health.gate_stale_after"},
		{"never loaded", healthIs(&protocol.Health{Status: "ok", Gate: []protocol.GateSource{{Name: protocol.GateSourceGit, FailingSince: now}}}, nil),
			Fail, "git never loaded"},
		{"no answer", healthIs(nil, errors.New("down")), Skip, "see receiver-healthz"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := checkGateSources(cfg, tc.health, now)
			assert.Equal(t, tc.status, c.Status, c.Summary)
			assert.Contains(t, c.Summary, tc.says)
			if c.Status == Warn || c.Status == Fail {
				assert.Contains(t, c.Hint, "journalctl -u cis490-receiver")
			}
		})
	}
}

func TestCheckServerCert(t *testing.T) {
	t.Parallel()
	ca := testpki.NewCA(t, "fleet")
	now := time.Now()
	// Certificates carry whole seconds: an hour over keeps the day count exact.
	valid := ca.ClientExpiring("pi", now.Add(90*24*time.Hour))
	soon := ca.ClientExpiring("pi-soon", now.Add(5*24*time.Hour+time.Hour))
	gone := ca.ClientExpiring("pi-gone", now.Add(-time.Hour))
	for _, tc := range []struct {
		name      string
		cert, key string
		status    Status
		says      string
	}{
		{"no TLS", "", "", Skip, "no TLS"},
		{"valid", valid.CertFile, valid.KeyFile, OK, "valid until"},
		{"expires in 5 days", soon.CertFile, soon.KeyFile, Warn, "expires in 5 days"},
		{"expired", gone.CertFile, gone.KeyFile, Fail, "expired on"},
		{"another certificate's key", valid.CertFile, soon.KeyFile, Fail, "not a certificate and its key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := checkServerCert(config.TLS{CertFile: tc.cert, KeyFile: tc.key}, now)
			assert.Equal(t, tc.status, c.Status, c.Summary)
			assert.Contains(t, c.Summary, tc.says)
		})
	}
}

func TestCheckClientCA(t *testing.T) {
	t.Parallel()
	now := time.Now()
	one := testpki.NewCA(t, "fleet")
	other := testpki.NewCA(t, "fleet-2027")
	// A bundle: a CA and, as if it were one, a certificate about to end.
	soon := one.ClientExpiring("old-ca", now.Add(3*24*time.Hour+time.Hour))
	bundle := filepath.Join(t.TempDir(), "bundle.pem")
	var data []byte
	for _, f := range []string{one.CertPEM, other.CertPEM, soon.CertFile} {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		data = append(data, b...)
	}
	require.NoError(t, os.WriteFile(bundle, data, 0o600))
	noPEM := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(noPEM, []byte("not a certificate"), 0o600))
	for _, tc := range []struct {
		name, file string
		status     Status
		says       string
	}{
		{"no mTLS", "", Skip, "no mTLS"},
		{"one CA", one.CertPEM, OK, "1 CA certificate(s)"},
		{"one of three expires soon", bundle, Warn, "CA old-ca expires in 3 days"},
		{"no certificate in it", noPEM, Fail, "no PEM certificate"},
		{"missing", filepath.Join(t.TempDir(), "nope.pem"), Fail, "cannot read"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := checkClientCA(tc.file, now)
			assert.Equal(t, tc.status, c.Status, c.Summary)
			assert.Contains(t, c.Summary, tc.says)
		})
	}
}

func TestCheckTokensFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := filepath.Join(dir, "tokens.toml")
	_, err := tokens.Append(good, tokens.Identity{Host: "lab-07"}, time.Now())
	require.NoError(t, err)
	empty := filepath.Join(dir, "empty.toml")
	require.NoError(t, os.WriteFile(empty, nil, 0o600))
	garbage := filepath.Join(dir, "garbage.toml")
	require.NoError(t, os.WriteFile(garbage, []byte("[[token]\nsha256 = "), 0o600))
	for _, tc := range []struct {
		name, file string
		status     Status
		says       string
	}{
		{"open mode", "", Skip, "open mode"},
		{"one token", good, OK, "holds 1 token(s)"},
		{"no tokens", empty, Warn, "has no tokens"},
		{"garbage", garbage, Fail, "garbage.toml"},
		{"missing", filepath.Join(dir, "missing.toml"), Fail, "missing.toml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sc := config.Default().Serve
			sc.TokensFile = tc.file
			c := checkTokensFile(sc)
			assert.Equal(t, tc.status, c.Status, c.Summary)
			assert.Contains(t, c.Summary, tc.says)
		})
	}
}

func TestCheckFleetHealthRuns(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 28, 18, 0, 0, 0, time.UTC)
	noSystemd := "/nonexistent/run/systemd/system"
	// stateAged is a data folder whose fleet-health.json was saved age ago; age < 0: none.
	stateAged := func(t *testing.T, age time.Duration) string {
		dir := t.TempDir()
		if age >= 0 {
			p := filepath.Join(dir, "fleet-health.json")
			require.NoError(t, os.WriteFile(p, []byte("{}\n"), 0o640))
			require.NoError(t, os.Chtimes(p, now.Add(-age), now.Add(-age)))
		}
		return dir
	}
	show := "show cis490-fleet-health.service --timestamp=utc -p ExecMainExitTimestamp -p ExecMainStatus"
	for _, tc := range []struct {
		name    string
		age     time.Duration
		systemd map[string]string // nil: no systemd
		status  Status
		says    string
	}{
		{"no systemd, never ran", -1, nil, Fail, "has never run here"},
		{"no systemd, ran 2m ago", 2 * time.Minute, nil, OK, "last ran 2m ago"},
		{"no systemd, ran 20m ago", 20 * time.Minute, nil, Fail, "last ran 20m ago"},
		{"timer stopped", 2 * time.Minute, map[string]string{"is-active cis490-fleet-health.timer": "inactive"}, Fail, "timer is inactive"},
		{"last run failed", 2 * time.Hour, map[string]string{"is-active cis490-fleet-health.timer": "active",
			show: "ExecMainExitTimestamp=Sat 2026-11-28 17:58:00 UTC\nExecMainStatus=2"}, Fail, "exited with status 2"},
		{"systemd ran it, no state yet", -1, map[string]string{"is-active cis490-fleet-health.timer": "active",
			show: "ExecMainExitTimestamp=Sat 2026-11-28 17:57:00 UTC\nExecMainStatus=0"}, OK, "last ran 3m ago"},
		{"never ran under systemd, by hand a minute ago", time.Minute, map[string]string{"is-active cis490-fleet-health.timer": "active",
			show: "ExecMainExitTimestamp=\nExecMainStatus=0"}, OK, "last ran 1m ago"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sd := noSystemd
			if tc.systemd != nil {
				sd = t.TempDir()
			}
			c := checkFleetHealthRuns(context.Background(), stateAged(t, tc.age), sd, fakeSystemctl(tc.systemd), now)
			assert.Equal(t, tc.status, c.Status, c.Summary)
			assert.Contains(t, c.Summary, tc.says)
			if c.Status == Fail {
				assert.NotEmpty(t, c.Hint)
			}
		})
	}
}

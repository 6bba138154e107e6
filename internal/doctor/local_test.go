package doctor

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/buildinfo"
	"github.com/cis490/cis490/internal/config"
)

// A configuration that does not load still gives a full report: the config check
// fails with the error, the checks that need the configuration are skipped, and the
// rest still run.
func TestRunWithABrokenConfiguration(t *testing.T) {
	t.Parallel()
	r := Run(context.Background(), Options{
		ConfigErr:  errors.New("config /etc/cis490/lab-host.toml: unknown key receiver.ulr"),
		Build:      buildinfo.Info{Version: "v1.2.3", Commit: "0123456789abcdef0123456789abcdef01234567"},
		SystemdDir: "/nonexistent/systemd",
	})
	assert.Equal(t, Schema, r.Schema)
	assert.Equal(t, Fail, r.Status)
	assert.Equal(t, config.Default().Host, r.Host)
	assert.Equal(t, "v1.2.3", r.Version)
	assert.Equal(t, "0123456789abcdef0123456789abcdef01234567", r.Commit)
	ids := make([]string, len(r.Checks))
	for i, c := range r.Checks {
		ids[i] = c.ID
	}
	assert.Equal(t, []string{"config", "host-name", "receiver-reachable", "token", "commit-allowed", "client-cert",
		"clock-skew", "spool", "disk", "timers", "update", "version"}, ids, "the ids and their order are a contract")
	byID := checksByID(r)
	assert.Equal(t, Fail, byID["config"].Status)
	assert.Contains(t, byID["config"].Summary, "unknown key receiver.ulr")
	assert.Contains(t, byID["config"].Hint, "lab-host.toml")
	for _, id := range []string{"host-name", "receiver-reachable", "token", "spool", "disk"} {
		assert.Equal(t, Skip, byID[id].Status, id)
	}
	assert.Equal(t, OK, byID["version"].Status)
	assert.Equal(t, Skip, byID["timers"].Status)
}

func checksByID(r Report) map[string]Check {
	m := map[string]Check{}
	for _, c := range r.Checks {
		m[c.ID] = c
	}
	return m
}

func TestCheckHostName(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		host   string
		status Status
		hint   string
	}{
		{"lab-07", OK, ""},
		{"localhost", Warn, "set host ="},
		{"lab_07", Fail, "set host ="},
	} {
		t.Run(tc.host, func(t *testing.T) {
			c := checkHostName(config.Config{Host: tc.host})
			assert.Equal(t, tc.status, c.Status, c.Summary)
			assert.Contains(t, c.Hint, tc.hint)
		})
	}
}

func TestCheckVersion(t *testing.T) {
	t.Parallel()
	c := checkVersion(buildinfo.Info{Version: "v1.0.0", Commit: "abcdef1234567"})
	assert.Equal(t, OK, c.Status)
	assert.Contains(t, c.Summary, "abcdef1234567")

	c = checkVersion(buildinfo.Info{Version: "dev"})
	require.Equal(t, Warn, c.Status)
	assert.Contains(t, c.Summary, "no commit stamp")
	assert.Contains(t, c.Hint, "release build")
}

func TestCheckConfig(t *testing.T) {
	t.Parallel()
	c := checkConfig(config.Config{File: "/etc/cis490/lab-host.toml"}, nil)
	assert.Equal(t, OK, c.Status)
	assert.Contains(t, c.Summary, "/etc/cis490/lab-host.toml")
	c = checkConfig(config.Config{}, nil)
	assert.Equal(t, OK, c.Status)
	assert.Contains(t, c.Summary, "defaults")
}

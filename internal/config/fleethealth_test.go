package config

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFleetHealthKeys(t *testing.T) {
	isolate(t)
	cfg, err := Load(New(), writeConfig(t, `
[fleet_health]
syslog_socket = "/run/test-syslog.sock"
push_timeout = "3s"
alertmanager_url = "http://127.0.0.1:9093"
webhook_url = "https://hooks.example/cis490"
`))
	require.NoError(t, err)
	fh := cfg.FleetHealth
	assert.Equal(t, "/run/test-syslog.sock", fh.SyslogSocket)
	assert.Equal(t, 3*time.Second, fh.PushTimeout)
	assert.Equal(t, "http://127.0.0.1:9093", fh.AlertmanagerURL)
	assert.Equal(t, "https://hooks.example/cis490", fh.WebhookURL)
	assert.Equal(t, time.Hour, fh.RepeatInterval, "untouched keys keep their default")

	t.Setenv("CIS490_FLEET_HEALTH_SYSLOG_SOCKET", "/dev/log")
	cfg, err = Load(New(), "")
	require.NoError(t, err)
	assert.Equal(t, "/dev/log", cfg.FleetHealth.SyslogSocket)
	assert.Equal(t, 10*time.Second, cfg.FleetHealth.PushTimeout)
}

func TestFleetHealthKeyErrors(t *testing.T) {
	isolate(t)
	for _, tc := range []struct{ body, want string }{
		{"[fleet_health]\npush_timeout = \"0s\"\n", "fleet_health.push_timeout"},
		{"[fleet_health]\nalertmanager_url = \"localhost:9093\"\n", "fleet_health.alertmanager_url"},
		{"[fleet_health]\nwebhook_url = \"ftp://hooks.example\"\n", "fleet_health.webhook_url"},
	} {
		_, err := Load(New(), writeConfig(t, tc.body))
		require.Error(t, err, tc.body)
		assert.Contains(t, err.Error(), tc.want)
	}
}

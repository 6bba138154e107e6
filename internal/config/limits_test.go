package config

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestServeLimitsDefaultsAndKeys(t *testing.T) {
	isolate(t)
	d := Default().Serve
	assert.Equal(t, 16, d.MaxUploads)
	assert.Equal(t, 4, d.MaxUploadsPerHost)
	assert.Equal(t, 1024, d.MaxConnections)
	assert.Equal(t, 80*time.Second, d.DrainTimeout, "under the unit's TimeoutStopSec=90s")

	path := writeConfig(t, `
[serve]
max_uploads = 8
max_uploads_per_host = 2
max_connections = 256
drain_timeout = "30s"
`)
	t.Setenv("CIS490_SERVE_MAX_CONNECTIONS", "512")
	cfg, err := Load(New(), path)
	require.NoError(t, err)
	assert.Equal(t, 8, cfg.Serve.MaxUploads)
	assert.Equal(t, 2, cfg.Serve.MaxUploadsPerHost)
	assert.Equal(t, 512, cfg.Serve.MaxConnections, "the variable wins over the file")
	assert.Equal(t, 30*time.Second, cfg.Serve.DrainTimeout)

	_, err = Load(New(), writeConfig(t, "[serve]\ndrain_timeout = 30\n"))
	require.Error(t, err, "a duration needs its unit")
	assert.Contains(t, err.Error(), "serve.drain_timeout")
}

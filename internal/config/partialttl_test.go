package config

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestServePartialTTL(t *testing.T) {
	isolate(t)
	assert.Equal(t, 24*time.Hour, Default().Serve.PartialTTL)

	cfg, err := Load(New(), writeConfig(t, "[serve]\npartial_ttl = \"6h\"\n"))
	require.NoError(t, err)
	assert.Equal(t, 6*time.Hour, cfg.Serve.PartialTTL)

	t.Setenv("CIS490_SERVE_PARTIAL_TTL", "90m")
	cfg, err = Load(New(), writeConfig(t, "[serve]\npartial_ttl = \"6h\"\n"))
	require.NoError(t, err)
	assert.Equal(t, 90*time.Minute, cfg.Serve.PartialTTL, "the variable wins over the file")

	for _, bad := range []string{`"0s"`, `"-1h"`, `24`} {
		t.Setenv("CIS490_SERVE_PARTIAL_TTL", "")
		_, err := Load(New(), writeConfig(t, "[serve]\npartial_ttl = "+bad+"\n"))
		require.Error(t, err, bad)
		assert.Contains(t, err.Error(), "serve.partial_ttl", bad)
	}
}

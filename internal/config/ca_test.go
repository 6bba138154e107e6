package config

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCAKeys(t *testing.T) {
	isolate(t)
	d := Default().Serve.CA
	assert.Equal(t, 720*time.Hour, d.Lifetime, "30 days")
	assert.Equal(t, BootstrapWhenNoneValid, d.Bootstrap)
	assert.Empty(t, d.ServerNames)

	path := writeConfig(t, `
[serve.ca]
lifetime = "14d"
bootstrap = "never"
server_names = "pi.lab, 192.168.1.10"
`)
	t.Setenv("CIS490_SERVE_CA_BOOTSTRAP", "always")
	cfg, err := Load(New(), path)
	require.NoError(t, err)
	assert.Equal(t, 14*24*time.Hour, cfg.Serve.CA.Lifetime)
	assert.Equal(t, BootstrapAlways, cfg.Serve.CA.Bootstrap, "the variable wins over the file")
	names, err := SplitNames(cfg.Serve.CA.ServerNames)
	require.NoError(t, err)
	assert.Equal(t, []string{"pi.lab", "192.168.1.10"}, names)
}

func TestCAKeysBadValues(t *testing.T) {
	isolate(t)
	_, err := Load(New(), writeConfig(t, `
[serve.ca]
lifetime = "30m"
bootstrap = "sometimes"
server_names = "pi_lab"
`))
	require.Error(t, err)
	msg := err.Error()
	assert.Contains(t, msg, `bad value for serve.ca.bootstrap: "sometimes" (use when-none-valid, always or never)`)
	assert.Contains(t, msg, "bad value for serve.ca.lifetime: 30m0s (at least 1h")
	assert.Contains(t, msg, `bad value for serve.ca.server_names: "pi_lab" is neither a host name nor an IP address`)
	assert.Less(t, strings.Index(msg, "serve.ca.bootstrap"), strings.Index(msg, "serve.ca.lifetime"), "sorted by key")

	_, err = Load(New(), writeConfig(t, "[serve.ca]\nlifetime = \"100000h\"\n"))
	assert.ErrorContains(t, err, "at most 87600h")
}

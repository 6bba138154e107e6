package config

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), FileName)
	require.NoError(t, os.WriteFile(path, []byte(body), 0o600))
	return path
}

// isolate keeps the machine's own /etc or XDG config out of the test.
func isolate(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv(EnvConfig, "")
}

func TestLoadFileAndDefaults(t *testing.T) {
	isolate(t)
	path := writeConfig(t, `
host = "LAB-07"
[serve]
listen = "127.0.0.1:9999"
max_report_bytes = "2MiB"
[serve.gate]
refresh = "30s"
unstamped = "reject"
[ship]
keep_sent = "14d"
`)
	cfg, err := Load(New(), path)
	require.NoError(t, err)
	assert.Equal(t, path, cfg.File)
	assert.Equal(t, "lab-07", cfg.Host)
	assert.Equal(t, "127.0.0.1:9999", cfg.Serve.ListenAddr())
	assert.Equal(t, 2*MiB, cfg.Serve.MaxReportBytes)
	assert.Equal(t, 30*time.Second, cfg.Serve.Gate.Refresh)
	assert.Equal(t, UnstampedReject, cfg.Serve.Gate.Unstamped)
	assert.Equal(t, 14*24*time.Hour, cfg.Ship.KeepSent)
	assert.Equal(t, 100, cfg.Serve.Gate.GitDepth, "untouched keys keep their default")
	assert.Equal(t, 30*time.Minute, cfg.FleetHealth.SilentAfter)
}

func TestNoFileIsFine(t *testing.T) {
	isolate(t)
	if _, err := os.Stat("/etc/cis490/" + FileName); err == nil {
		t.Skip("this machine has /etc/cis490/lab-host.toml")
	}
	cfg, err := Load(New(), "")
	require.NoError(t, err)
	assert.Equal(t, "", cfg.File)
	assert.Equal(t, "127.0.0.1:8490", cfg.Serve.ListenAddr(), "open mode listens on loopback only")
}

func TestEnvOverridesFile(t *testing.T) {
	isolate(t)
	path := writeConfig(t, "[receiver]\nurl = \"https://file.example\"\n")
	t.Setenv("CIS490_RECEIVER_URL", "https://env.example:8490")
	t.Setenv("CIS490_FLEET_HEALTH_SILENT_AFTER", "45m")
	t.Setenv("CIS490_SERVE_TLS_CERT_FILE", "/c.pem")
	t.Setenv("CIS490_SERVE_TLS_KEY_FILE", "/k.pem")
	cfg, err := Load(New(), path)
	require.NoError(t, err)
	assert.Equal(t, "https://env.example:8490", cfg.Receiver.URL)
	assert.Equal(t, 45*time.Minute, cfg.FleetHealth.SilentAfter)
	assert.Equal(t, ":8490", cfg.Serve.ListenAddr(), "with TLS the receiver listens on every interface")
}

func TestEnvConfigPath(t *testing.T) {
	isolate(t)
	path := writeConfig(t, "host = \"from-env-path\"\n")
	t.Setenv(EnvConfig, path)
	cfg, err := Load(New(), "")
	require.NoError(t, err)
	assert.Equal(t, "from-env-path", cfg.Host)
}

func TestXDGSearchPath(t *testing.T) {
	isolate(t)
	if _, err := os.Stat("/etc/cis490/" + FileName); err == nil {
		t.Skip("this machine has /etc/cis490/lab-host.toml, which comes first")
	}
	xdg := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", xdg)
	require.NoError(t, os.MkdirAll(filepath.Join(xdg, "cis490"), 0o700))
	path := filepath.Join(xdg, "cis490", FileName)
	require.NoError(t, os.WriteFile(path, []byte("host = \"xdg-host\"\n"), 0o600))
	cfg, err := Load(New(), "")
	require.NoError(t, err)
	assert.Equal(t, path, cfg.File)
	assert.Equal(t, "xdg-host", cfg.Host)
}

func TestLoadErrors(t *testing.T) {
	isolate(t)
	for _, tc := range []struct {
		name, body string
		want       []string
	}{
		{"unknown key", "[serve]\nlisten = \"x:1\"\nlistne = \"y\"\n", []string{"unknown key serve.listne"}},
		{"unknown section", "[srve]\nlisten = \"x\"\n", []string{"srve.listen"}},
		{"bad duration", "[serve.gate]\nrefresh = \"soon\"\n", []string{"serve.gate.refresh", "invalid duration"}},
		{"bad size", "[serve]\nmax_episode_bytes = \"lots\"\n", []string{"serve.max_episode_bytes", "invalid size"}},
		{"bad int", "[serve.gate]\ngit_depth = \"deep\"\n", []string{"serve.gate.git_depth"}},
		{"bad enum", "[serve.gate]\nunstamped = \"maybe\"\n", []string{"serve.gate.unstamped", "allow or reject"}},
		{"bad host", "host = \"lab_07\"\n", []string{"host", "RFC 1123"}},
		{"bad url", "[receiver]\nurl = \"ftp://x\"\n", []string{"receiver.url"}},
		{"bad log level", "[log]\nlevel = \"loud\"\n", []string{"log.level"}},
		{"half tls", "[serve.tls]\ncert_file = \"/c\"\n", []string{"serve.tls.key_file"}},
		{"not toml", "this is = = not toml", []string{"config"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeConfig(t, tc.body)
			_, err := Load(New(), path)
			require.Error(t, err)
			for _, w := range append(tc.want, path) {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestBadEnvValueNamesTheVariable(t *testing.T) {
	isolate(t)
	t.Setenv("CIS490_DOCTOR_TIMEOUT", "fast")
	_, err := Load(New(), "")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "$CIS490_DOCTOR_TIMEOUT")
	assert.Contains(t, err.Error(), "doctor.timeout")
}

func TestMissingExplicitFile(t *testing.T) {
	isolate(t)
	_, err := Load(New(), "/nonexistent/lab-host.toml")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "/nonexistent/lab-host.toml")
	t.Setenv(EnvConfig, "/nonexistent/env.toml")
	_, err = Load(New(), "")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "$CIS490_CONFIG")
}

func TestParseByteSizeAndDuration(t *testing.T) {
	for in, want := range map[string]ByteSize{"0": 0, "1024": 1024, "1KiB": KiB, "2 MiB": 2 * MiB, "1GB": 1e9, "4G": 4 * GiB, "1.5KiB": 1536} {
		got, err := ParseByteSize(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, bad := range []string{"", "-1", "MiB", "1XB"} {
		_, err := ParseByteSize(bad)
		assert.Error(t, err, bad)
	}
	for in, want := range map[string]time.Duration{"30m": 30 * time.Minute, "14d": 14 * 24 * time.Hour, "1d12h": 36 * time.Hour} {
		got, err := ParseDuration(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, bad := range []string{"", "d", "xd", "1dx", "soon"} {
		_, err := ParseDuration(bad)
		assert.Error(t, err, bad)
	}
}

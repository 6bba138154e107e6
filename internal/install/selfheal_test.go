package install

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/ca"
	"github.com/cis490/cis490/internal/config"
	"github.com/cis490/cis490/internal/release/releasetest"
)

func writeConfig(t *testing.T, root, text string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Join(root, ConfigDir), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, ConfigPath), []byte(text), 0o644))
}

func publicKey(t *testing.T) string { return releasetest.NewKey(t).Public }

// SPEC §6: one install lab-host gives a host all four mechanisms. The two that need
// configuration are enabled as soon as it is there, and said otherwise.
func TestInstallLabHostEnablesEachSelfHealingTimerItsConfigurationAsksFor(t *testing.T) {
	t.Parallel()
	key := publicKey(t)
	for _, tc := range []struct {
		name, config string
		want         []string
		notes        []string
	}{
		{"neither", "", []string{"cis490-ship.timer", "cis490-doctor-check.timer"},
			[]string{"cis490-cert-fetch.timer not enabled: set receiver.cert_file and key_file", "cis490-autoupdate.timer not enabled: set update.public_keys"}},
		{"both", "[receiver]\ncert_file = \"/etc/cis490/client.pem\"\nkey_file = \"/etc/cis490/client.pem\"\n[update]\npublic_keys = \"" + key + "\"\n",
			[]string{"cis490-ship.timer", "cis490-doctor-check.timer", "cis490-cert-fetch.timer", "cis490-autoupdate.timer"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			if tc.config != "" {
				writeConfig(t, root, tc.config)
			}
			sc := newFakeSystemctl()
			_, out := run(t, Options{Role: LabHost, Root: root, Binary: fakeBinary(t, "bin"), Systemctl: sc.run})
			var enabled []string
			for _, c := range sc.calls() {
				if u, ok := strings.CutPrefix(c, "enable --now "); ok {
					enabled = append(enabled, u)
				}
			}
			assert.Equal(t, tc.want, enabled)
			for _, n := range tc.notes {
				assert.Contains(t, out, n)
			}
			for _, u := range []string{"cis490-cert-fetch.service", "cis490-cert-fetch.timer", "cis490-autoupdate.service", "cis490-autoupdate.timer"} {
				assert.FileExists(t, filepath.Join(root, UnitDir, u), "the units are there either way")
			}
		})
	}
}

func TestInstallLabHostUpdateKey(t *testing.T) {
	t.Parallel()
	key := publicKey(t)

	t.Run("new configuration", func(t *testing.T) {
		t.Parallel()
		root := t.TempDir()
		sc := newFakeSystemctl()
		run(t, Options{Role: LabHost, Root: root, Binary: fakeBinary(t, "bin"), Systemctl: sc.run, UpdateKey: key})
		b, err := os.ReadFile(filepath.Join(root, ConfigPath))
		require.NoError(t, err)
		assert.Contains(t, string(b), "\npublic_keys = \""+key+"\"\n")
		assert.Contains(t, sc.calls(), "enable --now cis490-autoupdate.timer")
	})
	t.Run("existing configuration without it", func(t *testing.T) {
		t.Parallel()
		root := t.TempDir()
		writeConfig(t, root, "host = \"lab-07\"\n")
		_, err := Run(t.Context(), Options{Role: LabHost, Root: root, Binary: fakeBinary(t, "bin"), UpdateKey: key, Out: &strings.Builder{}})
		var ue *UsageError
		require.ErrorAs(t, err, &ue)
		assert.Contains(t, err.Error(), "install never edits a configuration: add it under [update]")
		b, _ := os.ReadFile(filepath.Join(root, ConfigPath))
		assert.Equal(t, "host = \"lab-07\"\n", string(b), "changes nothing")
		assert.NoFileExists(t, filepath.Join(root, "usr/bin/cis490"), "nothing was installed")
	})
	t.Run("existing configuration with it", func(t *testing.T) {
		t.Parallel()
		root := t.TempDir()
		writeConfig(t, root, "[update]\npublic_keys = \""+publicKey(t)+", "+key+"\"\n")
		run(t, Options{Role: LabHost, Root: root, Binary: fakeBinary(t, "bin"), UpdateKey: key})
	})
	t.Run("not a key", func(t *testing.T) {
		t.Parallel()
		root := t.TempDir()
		_, err := Run(t.Context(), Options{Role: LabHost, Root: root, Binary: fakeBinary(t, "bin"), UpdateKey: "RWQnot", Out: &strings.Builder{}})
		var ue *UsageError
		require.ErrorAs(t, err, &ue)
		assert.NoFileExists(t, filepath.Join(root, ConfigPath))
	})
}

func TestInstallReceiverCA(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	opts := Options{Role: Receiver, Root: root, Binary: fakeBinary(t, "bin"), CA: true, CANames: []string{"pi.lab"}}
	_, out := run(t, opts)
	dir := filepath.Join(root, StateDir, "ca")
	assert.Contains(t, out, "created       /var/lib/cis490/ca  (the lab's CA")
	for _, f := range []string{ca.CertFile, ca.KeyFile, ca.ServerFile} {
		assert.FileExists(t, filepath.Join(dir, f))
	}
	b, err := os.ReadFile(filepath.Join(root, ConfigPath))
	require.NoError(t, err)
	assert.Contains(t, string(b), "\ncert_file = \"/var/lib/cis490/ca/server.pem\"\n")
	assert.Contains(t, string(b), "\nclient_ca_file = \"/var/lib/cis490/ca/ca.pem\"\n")
	key, err := os.ReadFile(filepath.Join(dir, ca.KeyFile))
	require.NoError(t, err)

	sum, out := run(t, opts)
	assert.Zero(t, sum.Changed, out)
	assert.Contains(t, out, "a CA exists; install never replaces one")
	again, err := os.ReadFile(filepath.Join(dir, ca.KeyFile))
	require.NoError(t, err)
	assert.Equal(t, key, again, "the CA is never replaced")

	// An existing configuration is not edited: the lines to add are a note.
	root2 := t.TempDir()
	writeConfig(t, root2, "host = \"pi\"\n")
	_, out = run(t, Options{Role: Receiver, Root: root2, Binary: fakeBinary(t, "bin"), CA: true, CANames: []string{"pi.lab"}})
	assert.Contains(t, out, `to serve the CA's certificates, set under [serve.tls]`)
	assert.FileExists(t, filepath.Join(root2, StateDir, "ca", ca.CertFile))
}

// doctor's timers check expects exactly what install enables for a configuration.
func TestLabHostTimersFollowTheConfiguration(t *testing.T) {
	t.Parallel()
	cfg := config.Default()
	assert.Equal(t, []string{"cis490-ship.timer", "cis490-doctor-check.timer"}, LabHost.Timers(cfg))
	cfg.Receiver.CertFile, cfg.Receiver.KeyFile = "/etc/cis490/client.pem", "/etc/cis490/client.pem"
	cfg.Update.PublicKeys = publicKey(t)
	assert.Equal(t, []string{"cis490-ship.timer", "cis490-doctor-check.timer", "cis490-cert-fetch.timer", "cis490-autoupdate.timer"}, LabHost.Timers(cfg))
}

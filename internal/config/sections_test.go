package config

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSections(t *testing.T) {
	for _, tc := range []struct {
		name, toml string
		env        map[string]string
		want       map[string]bool
	}{
		{"no file", "", nil, map[string]bool{}},
		{"headers alone, as the skeleton writes them", "[receiver]\n[serve]\n[serve.tls]\n#listen = \":8490\"\n", nil, map[string]bool{}},
		{"the Pi", "host = \"pi\"\n[serve]\nlisten = \":8490\"\n[serve.gate]\nrefresh = \"2m\"\n[fleet_health]\nsyslog = false\n", nil,
			map[string]bool{"serve": true, "fleet_health": true}},
		{"a sub-table alone", "[serve.tls]\ncert_file = \"/etc/cis490/pi.pem\"\nkey_file = \"/etc/cis490/pi.key\"\n", nil, map[string]bool{"serve": true}},
		{"a lab host", "[receiver]\nurl = \"https://pi:8490\"\n[ship]\nretries = 2\n", nil, map[string]bool{"receiver": true, "ship": true}},
		{"set in the environment", "", map[string]string{"CIS490_SERVE_DATA_DIR": "/srv/cis490"}, map[string]bool{"serve": true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			path := ""
			if tc.toml != "" {
				path = filepath.Join(t.TempDir(), FileName)
				require.NoError(t, os.WriteFile(path, []byte(tc.toml), 0o600))
			}
			t.Setenv(EnvConfig, "")
			t.Setenv("XDG_CONFIG_HOME", t.TempDir()) // no config of the machine's is found
			v := New()
			_, err := Load(v, path)
			require.NoError(t, err)
			assert.Equal(t, tc.want, Sections(v))
		})
	}
}

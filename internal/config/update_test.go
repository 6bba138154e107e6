package config

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/release"
)

func TestUpdateKeys(t *testing.T) {
	isolate(t)
	dir := t.TempDir()
	var pubs []string
	for _, name := range []string{"a.key", "b.key", "c.key"} {
		pub, _, err := release.Keygen(filepath.Join(dir, name), "")
		require.NoError(t, err)
		pubs = append(pubs, pub.String())
	}
	d := Default()
	assert.Empty(t, d.Update.PublicKeys, "no key: autoupdate is off")
	assert.NotEmpty(t, d.Update.StateDir)

	path := writeConfig(t, "[update]\npublic_keys = \""+pubs[0]+", "+pubs[1]+"\"\nstate_dir = \"/srv/up\"\n[serve.update]\npublic_keys = \""+pubs[2]+"\"\n")
	cfg, err := Load(New(), path)
	require.NoError(t, err)
	keys, err := cfg.Update.Keys()
	require.NoError(t, err)
	assert.Len(t, keys, 2)
	assert.Equal(t, "/srv/up", cfg.Update.StateDir)
	keys, err = cfg.Serve.Update.Keys()
	require.NoError(t, err)
	assert.Len(t, keys, 1)

	t.Setenv("CIS490_UPDATE_PUBLIC_KEYS", pubs[2]+" "+pubs[0]+"\n"+pubs[1])
	cfg, err = Load(New(), path)
	require.NoError(t, err)
	keys, _ = cfg.Update.Keys()
	assert.Len(t, keys, 3, "the variable wins, spaces and newlines separate too")
}

func TestUpdateKeysBadValues(t *testing.T) {
	isolate(t)
	_, err := Load(New(), writeConfig(t, "[update]\npublic_keys = \"RWQnope\"\nstate_dir = \"\"\n[serve.update]\npublic_keys = \"hello\"\n"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), `bad value for serve.update.public_keys: public key 1 ("hello")`)
	assert.Contains(t, err.Error(), `bad value for update.public_keys: public key 1 ("RWQnope")`)
	assert.Contains(t, err.Error(), "bad value for update.state_dir: empty")
}

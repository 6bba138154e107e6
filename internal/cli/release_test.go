package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/release"
	"github.com/cis490/cis490/internal/release/releasetest"
)

// runMain runs cis490 with args and the configuration text conf (in a temp file).
func runRelease(t *testing.T, conf string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "lab-host.toml")
	require.NoError(t, os.WriteFile(cfg, []byte(conf), 0o600))
	var out, errb bytes.Buffer
	code = Main(context.Background(), append([]string{"--config", cfg}, args...), Streams{In: bytes.NewReader(nil), Out: &out, Err: &errb})
	return code, out.String(), errb.String()
}

func TestReleaseKeygenSignPublishList(t *testing.T) {
	t.Setenv(envReleasePassword, "")
	dir := t.TempDir()
	key := filepath.Join(dir, "release.key")
	pwFile := filepath.Join(dir, "pw")
	require.NoError(t, os.WriteFile(pwFile, []byte("hunter2\n"), 0o600))

	code, _, errs := runRelease(t, "", "release", "keygen", "--out", key)
	assert.Equal(t, ExitUsage, code, "no password, no terminal")
	assert.Contains(t, errs, "--password-file")
	assert.NoFileExists(t, key)

	code, out, errs := runRelease(t, "", "release", "keygen", "--out", key, "--unencrypted")
	require.Equal(t, ExitOK, code, errs)
	pub := strings.TrimSpace(out)
	_, err := release.ParseKeys([]string{pub})
	require.NoError(t, err, "stdout is the public key alone")

	code, _, errs = runRelease(t, "", "release", "keygen", "--out", key, "--unencrypted")
	assert.Equal(t, ExitFailure, code)
	assert.Contains(t, errs, "already exists")

	commit := releasetest.Commit("ab")
	dist := releasetest.Dist(t, commit, "2.0.0", releasetest.Bin{GOARCH: "arm64", Data: []byte("arm64")}, releasetest.Bin{GOARCH: "arm", GOARM: "7", Data: []byte("armv7")})
	code, out, errs = runRelease(t, "", "release", "sign", dist, "--key", key, "--seq", "12")
	require.Equal(t, ExitOK, code, errs)
	assert.Contains(t, out, "seq 12")
	assert.Contains(t, out, "linux/arm/v7")

	data := t.TempDir()
	conf := "[serve]\ndata_dir = \"" + data + "\"\n[serve.update]\npublic_keys = \"" + pub + "\"\n"
	code, out, errs = runRelease(t, conf, "release", "publish", dist)
	require.Equal(t, ExitOK, code, errs)
	assert.Contains(t, out, "published release "+commit)
	code, out, _ = runRelease(t, conf, "release", "publish", dist)
	require.Equal(t, ExitOK, code)
	assert.Contains(t, out, "already published")

	code, out, errs = runRelease(t, conf, "release", "list")
	require.Equal(t, ExitOK, code, errs)
	assert.Contains(t, out, commit[:12])
	assert.Contains(t, out, "target")

	other := releasetest.NewKey(t)
	code, _, errs = runRelease(t, "[serve]\ndata_dir = \""+t.TempDir()+"\"\n[serve.update]\npublic_keys = \""+other.Public+"\"\n", "release", "publish", dist)
	assert.Equal(t, ExitFailure, code)
	assert.Contains(t, errs, "signature does not verify")
}

func TestReleaseSignWithAnEncryptedKey(t *testing.T) {
	kdf := release.KDF
	release.KDF.Ops, release.KDF.Mem = 1<<15, 1<<24 // the real cost takes a gigabyte and seconds
	t.Cleanup(func() { release.KDF = kdf })
	dir := t.TempDir()
	key := filepath.Join(dir, "release.key")
	t.Setenv(envReleasePassword, "from-the-environment")
	code, _, errs := runRelease(t, "", "release", "keygen", "--out", key)
	require.Equal(t, ExitOK, code, errs)
	enc, err := release.Encrypted(key)
	require.NoError(t, err)
	require.True(t, enc)

	dist := releasetest.Dist(t, releasetest.Commit("cd"), "2.0.0", releasetest.Bin{GOARCH: "arm64", Data: []byte("arm64")})
	t.Setenv(envReleasePassword, "wrong")
	code, _, errs = runRelease(t, "", "release", "sign", dist, "--key", key)
	assert.Equal(t, ExitFailure, code)
	assert.Contains(t, errs, "wrong password")
	assert.NoFileExists(t, filepath.Join(dist, release.ManifestName))

	pw := filepath.Join(dir, "pw")
	require.NoError(t, os.WriteFile(pw, []byte("from-the-environment\n"), 0o600))
	code, _, errs = runRelease(t, "", "release", "sign", dist, "--key", key, "--password-file", pw)
	require.Equal(t, ExitOK, code, errs)
	assert.FileExists(t, filepath.Join(dist, release.SignatureName))
}

func TestUpdateWithoutKeysIsAConfigurationError(t *testing.T) {
	code, _, errs := runRelease(t, "[update]\nstate_dir = \""+t.TempDir()+"\"\n", "update")
	assert.Equal(t, ExitUsage, code)
	assert.Contains(t, errs, "update.public_keys is empty")
	code, _, errs = runRelease(t, "", "update", "--to", "abc")
	assert.Equal(t, ExitUsage, code)
	assert.Contains(t, errs, "40 hex digits")
}

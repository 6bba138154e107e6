package release

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const testCommit = "0123456789abcdef0123456789abcdef01234567"

// fakeDist lays out what goreleaser writes (metadata.json, artifacts.json and one
// folder a target) with small files standing in for the binaries.
func fakeDist(t *testing.T, commit string) string {
	t.Helper()
	dir := t.TempDir()
	meta := map[string]any{"project_name": "cis490", "version": "1.2.3", "commit": commit}
	var artifacts []map[string]any
	for _, tg := range []struct{ folder, arch, arm string }{
		{"cis490_linux_amd64_v1", "amd64", ""}, {"cis490_linux_arm64_v8.0", "arm64", ""}, {"cis490_linux_arm_7", "arm", "7"},
	} {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, tg.folder), 0o755))
		body := fmt.Sprintf("binary for %s%s\n%s", tg.arch, tg.arm, strings.Repeat("x", 3000))
		require.NoError(t, os.WriteFile(filepath.Join(dir, tg.folder, "cis490"), []byte(body), 0o755))
		a := map[string]any{"name": "cis490", "path": "dist/release/" + tg.folder + "/cis490", "type": "Binary", "goos": "linux", "goarch": tg.arch}
		if tg.arm != "" {
			a["goarm"] = tg.arm
		}
		artifacts = append(artifacts, a)
	}
	artifacts = append(artifacts, map[string]any{"name": "x.deb", "path": "dist/release/x.deb", "type": "Linux Package", "goos": "linux", "goarch": "amd64"})
	writeJSONFile(t, filepath.Join(dir, "metadata.json"), meta)
	writeJSONFile(t, filepath.Join(dir, "artifacts.json"), artifacts)
	return dir
}

func writeJSONFile(t *testing.T, path string, v any) {
	t.Helper()
	data, err := json.Marshal(v)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, data, 0o644))
}

// newKey makes an unencrypted key pair in a temp folder.
func newKey(t *testing.T) (SecretKey, Keys, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "release.key")
	pub, _, err := Keygen(path, "")
	require.NoError(t, err)
	key, err := LoadSecretKey(path, "")
	require.NoError(t, err)
	return key, Keys{pub}, path
}

// signedDist is a fake dist signed with a new key, with seq.
func signedDist(t *testing.T, seq int64) (string, Keys, SecretKey) {
	t.Helper()
	dir := fakeDist(t, testCommit)
	key, keys, _ := newKey(t)
	d, err := Discover(dir)
	require.NoError(t, err)
	_, err = SignDist(d, key, seq, time.Unix(1_800_000_000, 0))
	require.NoError(t, err)
	return dir, keys, key
}

// TestMain makes encrypted keys cheap: the sensitive scrypt limits take a gigabyte
// and seconds (minutes under -race) for each encryption and decryption.
func TestMain(m *testing.M) {
	KDF.Ops, KDF.Mem = 1<<15, 1<<24
	os.Exit(m.Run())
}

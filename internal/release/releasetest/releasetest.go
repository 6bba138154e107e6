// Package releasetest lays out releases for tests: goreleaser's output folder around
// the binaries a test gives, a signing key, and a signed upload.
package releasetest

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/release"
)

// Bin is one binary of a fake goreleaser output: its platform and its content, or
// Path to copy it from.
type Bin struct {
	GOARCH, GOARM string
	Data          []byte
	Path          string
}

// Dist writes what goreleaser writes to dist/release/ (metadata.json, artifacts.json,
// one folder a target) for commit and version, and returns the folder.
func Dist(t testing.TB, commit, version string, bins ...Bin) string {
	t.Helper()
	dir := t.TempDir()
	meta := map[string]any{"project_name": "cis490", "version": version, "commit": commit}
	var artifacts []map[string]any
	for _, b := range bins {
		folder := "cis490_linux_" + b.GOARCH
		if b.GOARM != "" {
			folder += "_" + b.GOARM
		}
		require.NoError(t, os.MkdirAll(filepath.Join(dir, folder), 0o755))
		data := b.Data
		if b.Path != "" {
			var err error
			data, err = os.ReadFile(b.Path)
			require.NoError(t, err)
		}
		require.NoError(t, os.WriteFile(filepath.Join(dir, folder, "cis490"), data, 0o755))
		a := map[string]any{"name": "cis490", "path": "dist/release/" + folder + "/cis490", "type": "Binary", "goos": "linux", "goarch": b.GOARCH}
		if b.GOARM != "" {
			a["goarm"] = b.GOARM
		}
		artifacts = append(artifacts, a)
	}
	writeJSON(t, filepath.Join(dir, "metadata.json"), meta)
	writeJSON(t, filepath.Join(dir, "artifacts.json"), artifacts)
	return dir
}

func writeJSON(t testing.TB, path string, v any) {
	t.Helper()
	data, err := json.Marshal(v)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, data, 0o644))
}

// Key is a signing key made for a test, unencrypted.
type Key struct {
	Secret release.SecretKey
	Public string // the base64 line, as update.public_keys takes it
	Path   string // the secret key file
}

// NewKey makes a key pair in a temp folder.
func NewKey(t testing.TB) Key {
	t.Helper()
	path := filepath.Join(t.TempDir(), "release.key")
	pub, _, err := release.Keygen(path, "")
	require.NoError(t, err)
	sec, err := release.LoadSecretKey(path, "")
	require.NoError(t, err)
	return Key{Secret: sec, Public: pub.String(), Path: path}
}

// Sign signs the dist folder with seq.
func (k Key) Sign(t testing.TB, dir string, seq int64) release.Manifest {
	t.Helper()
	d, err := release.Discover(dir)
	require.NoError(t, err)
	m, err := release.SignDist(d, k.Secret, seq, time.Now())
	require.NoError(t, err)
	return m
}

// Upload is the tar stream `release publish` sends for the signed dir.
func Upload(t testing.TB, dir string) []byte {
	t.Helper()
	u, err := release.LoadUpload(dir)
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, u.Write(&buf))
	return buf.Bytes()
}

// Commit is a 40-hex commit made of c.
func Commit(c string) string { return strings.Repeat(c, 40/len(c)) }

package release

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// minisignTool is the `minisign` program (Debian's package minisign): skipped when it
// is missing, except under CI, which installs it.
func minisignTool(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("minisign")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("minisign is not installed; CI installs it (apt-get install minisign)")
		}
		t.Skip("minisign is not installed (apt-get install minisign)")
	}
	return path
}

func runTool(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(minisignTool(t), args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Our signature, by our encrypted key, verifies with `minisign -V`; `minisign -S`
// decrypts our encrypted secret key and signs, and we verify that.
func TestMinisignToolReadsOurKeysAndSignatures(t *testing.T) {
	minisignTool(t)
	dir := fakeDist(t, testCommit)
	keyPath := filepath.Join(t.TempDir(), "release.key")
	pub, pubPath, err := Keygen(keyPath, "s3cret")
	require.NoError(t, err)
	key, err := LoadSecretKey(keyPath, "s3cret")
	require.NoError(t, err)
	d, err := Discover(dir)
	require.NoError(t, err)
	_, err = SignDist(d, key, 3, time.Now())
	require.NoError(t, err)
	manifest := filepath.Join(dir, ManifestName)

	out, err := runTool(t, "", "-V", "-p", pubPath, "-m", manifest, "-x", filepath.Join(dir, SignatureName))
	require.NoError(t, err, out)
	assert.Contains(t, out, "seq 3", "the trusted comment")
	out, err = runTool(t, "", "-V", "-P", pub.String(), "-m", filepath.Join(dir, "artifacts.json"), "-x", filepath.Join(dir, SignatureName))
	require.Error(t, err, "a signature of another file: %s", out)

	theirs := filepath.Join(t.TempDir(), "theirs.minisig")
	out, err = runTool(t, "s3cret\n", "-S", "-s", keyPath, "-m", manifest, "-x", theirs)
	require.NoError(t, err, out)
	raw, _ := os.ReadFile(manifest)
	sig, _ := os.ReadFile(theirs)
	_, err = Verify(raw, sig, Keys{pub})
	require.NoError(t, err)

	_, err = runTool(t, "wrong\n", "-S", "-s", keyPath, "-m", manifest, "-x", theirs+"2")
	require.Error(t, err, "the password is checked")
}

// A key pair made by `minisign -G`: we sign with its secret key, `minisign -V`
// verifies, and we verify `minisign -S`'s signature with its public key.
func TestWeReadTheMinisignToolsKeys(t *testing.T) {
	minisignTool(t)
	tmp := t.TempDir()
	sec, pubFile := filepath.Join(tmp, "m.key"), filepath.Join(tmp, "m.pub")
	out, err := runTool(t, "", "-G", "-W", "-s", sec, "-p", pubFile)
	require.NoError(t, err, out)
	pubText, err := os.ReadFile(pubFile)
	require.NoError(t, err)
	keys, err := ParseKeys([]string{strings.Split(strings.TrimSpace(string(pubText)), "\n")[1]})
	require.NoError(t, err)

	msg := filepath.Join(tmp, ManifestName)
	require.NoError(t, os.WriteFile(msg, []byte(`{"hello":"world"}`), 0o644))
	out, err = runTool(t, "", "-S", "-s", sec, "-m", msg)
	require.NoError(t, err, out)
	sig, _ := os.ReadFile(msg + ".minisig")
	err = verifySignature([]byte(`{"hello":"world"}`), sig, keys)
	require.NoError(t, err)

	key, err := LoadSecretKey(sec, "")
	require.NoError(t, err)
	ours := Sign(key, []byte(`{"hello":"world"}`), Manifest{Commit: testCommit, Seq: 1}, time.Now())
	require.NoError(t, os.WriteFile(msg+".minisig", ours, 0o644))
	out, err = runTool(t, "", "-V", "-p", pubFile, "-m", msg)
	require.NoError(t, err, out)
}

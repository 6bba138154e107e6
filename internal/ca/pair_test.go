package ca_test

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/ca"
)

// pairPEM is a fresh certificate chain and key for lab-07 from c.
func pairPEM(t *testing.T, c *ca.CA) (chain, key []byte, serial string) {
	t.Helper()
	k := p256(t)
	got, err := c.Issue(ca.Request{Host: "lab-07", CSR: csrPEM(t, k, nil)})
	require.NoError(t, err)
	key, err = encodeKeyForTest(k)
	require.NoError(t, err)
	return got.Chain, key, got.Serial
}

func serialAt(t *testing.T, certFile, keyFile string) string {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	require.NoError(t, err, "%s and %s are a pair", certFile, keyFile)
	return ca.SerialString(pair.Leaf.SerialNumber)
}

func TestWritePairInOneFile(t *testing.T) {
	t.Parallel()
	c := newCA(t, newClock(time.Now()), ca.Options{Bootstrap: ca.BootstrapAlways})
	dir := t.TempDir()
	path := filepath.Join(dir, "client.pem")
	for range 2 {
		chain, key, serial := pairPEM(t, c)
		require.NoError(t, ca.WritePair(path, path, chain, key))
		assert.Equal(t, serial, serialAt(t, path, path))
	}
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	assert.Equal(t, []string{"client.pem"}, names(t, dir), "no temporary file left")

	chain, key, _ := pairPEM(t, c)
	before := serialAt(t, path, path)
	staged, err := ca.StagePair(path, path, chain, key)
	require.NoError(t, err)
	assert.NotEqual(t, before, serialAt(t, staged.CertFile, staged.KeyFile), "the staged pair can be tried")
	assert.Equal(t, before, serialAt(t, path, path), "not in place before Commit")
	staged.Discard()
	assert.Equal(t, before, serialAt(t, path, path))
	assert.Equal(t, []string{"client.pem"}, names(t, dir))
}

func TestWritePairInTwoFiles(t *testing.T) {
	t.Parallel()
	c := newCA(t, newClock(time.Now()), ca.Options{Bootstrap: ca.BootstrapAlways})
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "client.pem"), filepath.Join(dir, "keys", "client-key.pem")
	require.NoError(t, os.MkdirAll(filepath.Dir(key), 0o700))
	// The operator's pair, plain files, from before cert renew.
	oldChain, oldKey, oldSerial := pairPEM(t, c)
	require.NoError(t, os.WriteFile(cert, oldChain, 0o644))
	require.NoError(t, os.WriteFile(key, oldKey, 0o600))

	chain, newKey, serial := pairPEM(t, c)
	staged, err := ca.StagePair(cert, key, chain, newKey)
	require.NoError(t, err)
	assert.Equal(t, serial, serialAt(t, staged.CertFile, staged.KeyFile))
	assert.Equal(t, oldSerial, serialAt(t, cert, key), "not in place before Commit")
	require.NoError(t, staged.Commit())
	assert.Equal(t, serial, serialAt(t, cert, key))
	target, err := os.Readlink(cert)
	require.NoError(t, err)
	assert.Equal(t, ".client.pem.pairs/current/cert.pem", target)
	target, err = os.Readlink(key)
	require.NoError(t, err)
	assert.Equal(t, "../.client.pem.pairs/current/key.pem", target)
	fi, err := os.Stat(key)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	for range 3 {
		chain, newKey, serial = pairPEM(t, c)
		require.NoError(t, ca.WritePair(cert, key, chain, newKey))
		assert.Equal(t, serial, serialAt(t, cert, key))
	}
	staged, err = ca.StagePair(cert, key, chain, newKey)
	require.NoError(t, err)
	staged.Discard()
	pairs := names(t, filepath.Join(dir, ".client.pem.pairs"))
	assert.Len(t, pairs, 2, "current and the one pair it names: %v", pairs)
	assert.Contains(t, pairs, "current")
}

func TestWritePairFromNothing(t *testing.T) {
	t.Parallel()
	c := newCA(t, newClock(time.Now()), ca.Options{Bootstrap: ca.BootstrapAlways})
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem")
	chain, newKey, serial := pairPEM(t, c)
	require.NoError(t, ca.WritePair(cert, key, chain, newKey))
	assert.Equal(t, serial, serialAt(t, cert, key))
}

func names(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var out []string
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".lock") {
			out = append(out, e.Name())
		}
	}
	return out
}

package ca_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/ca"
)

func TestInitMakesACAAndItsServerCertificate(t *testing.T) {
	t.Parallel()
	now := time.Now()
	dir := filepath.Join(t.TempDir(), "data", "ca")
	got, err := ca.Init(dir, ca.InitOptions{Host: "pi", ServerNames: []string{"pi.lab", "192.168.1.10"}, Now: func() time.Time { return now }})
	require.NoError(t, err)

	fi, err := os.Stat(filepath.Join(dir, ca.KeyFile))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "the CA key is 0600")
	fi, err = os.Stat(filepath.Join(dir, ca.ServerFile))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "the server file holds a key: 0600")

	c, err := ca.Open(dir, ca.Options{})
	require.NoError(t, err)
	cert := c.Certificate()
	assert.True(t, cert.IsCA)
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	require.True(t, ok, "%T", cert.PublicKey)
	assert.Equal(t, elliptic.P256(), pub.Curve)
	assert.WithinDuration(t, now.Add(10*365*24*time.Hour), cert.NotAfter, time.Second, "valid 10 years")

	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, ca.ServerFile), filepath.Join(dir, ca.ServerFile))
	require.NoError(t, err, "one file holds the server's chain and key")
	assert.Equal(t, []string{"pi.lab"}, pair.Leaf.DNSNames)
	require.Len(t, pair.Leaf.IPAddresses, 1)
	assert.Equal(t, "192.168.1.10", pair.Leaf.IPAddresses[0].String())
	assert.Equal(t, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, pair.Leaf.ExtKeyUsage)
	_, err = pair.Leaf.Verify(x509.VerifyOptions{Roots: pool(cert), DNSName: "pi.lab", CurrentTime: now})
	assert.NoError(t, err)
	assert.Len(t, pair.Certificate, 2, "the chain holds the CA's certificate too")
	assert.Equal(t, []string{"192.168.1.10", "pi.lab"}, got.ServerNames)

	ledger, err := ca.ReadLedger(dir)
	require.NoError(t, err)
	require.Len(t, ledger.Issued, 1)
	assert.Equal(t, ca.ByServer, ledger.Issued[0].By)
	assert.Equal(t, ca.SerialString(pair.Leaf.SerialNumber), ledger.Issued[0].Serial)

	entries, err := os.ReadDir(filepath.Dir(dir))
	require.NoError(t, err)
	assert.Len(t, entries, 1, "nothing beside ca/: the init folder was renamed into place")
}

func TestInitNeverReplacesACA(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "ca")
	_, err := ca.Init(dir, ca.InitOptions{ServerNames: []string{"localhost"}})
	require.NoError(t, err)
	before := snapshot(t, dir)

	_, err = ca.Init(dir, ca.InitOptions{ServerNames: []string{"other"}})
	require.ErrorIs(t, err, ca.ErrExists)
	assert.Contains(t, err.Error(), "nothing changed")
	assert.Equal(t, before, snapshot(t, dir))

	// A folder holding anything at all counts: a key alone is someone's CA half restored.
	partial := filepath.Join(t.TempDir(), "ca")
	require.NoError(t, os.MkdirAll(partial, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(partial, ca.KeyFile), []byte("precious"), 0o600))
	_, err = ca.Init(partial, ca.InitOptions{ServerNames: []string{"localhost"}})
	require.ErrorIs(t, err, ca.ErrExists)
	raw, err := os.ReadFile(filepath.Join(partial, ca.KeyFile))
	require.NoError(t, err)
	assert.Equal(t, "precious", string(raw))
}

func TestOpenWithoutACA(t *testing.T) {
	t.Parallel()
	_, err := ca.Open(filepath.Join(t.TempDir(), "ca"), ca.Options{})
	assert.True(t, errors.Is(err, fs.ErrNotExist), "%v", err)
}

func TestOpenRefusesAKeyOfAnotherCA(t *testing.T) {
	t.Parallel()
	a, b := filepath.Join(t.TempDir(), "ca"), filepath.Join(t.TempDir(), "ca")
	for _, d := range []string{a, b} {
		_, err := ca.Init(d, ca.InitOptions{ServerNames: []string{"localhost"}})
		require.NoError(t, err)
	}
	key, err := os.ReadFile(filepath.Join(b, ca.KeyFile))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(a, ca.KeyFile), key, 0o600))
	_, err = ca.Open(a, ca.Options{})
	assert.ErrorContains(t, err, "is not the key of")
}

func TestParseSerial(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"0a1b": "a1b", "0A:1B": "a1b", "0xA1B": "a1b", "a1b": "a1b",
	} {
		got, ok := ca.ParseSerial(in)
		assert.True(t, ok, in)
		assert.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "xyz", "0", "-1"} {
		_, ok := ca.ParseSerial(in)
		assert.False(t, ok, in)
	}
}

func pool(certs ...*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}

// snapshot is every file below dir and its content.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		out[p] = string(b)
		return err
	}))
	return out
}

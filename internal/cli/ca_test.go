package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/ca"
)

// runMain runs the command line with an empty configuration file, so that no
// configuration of the machine's is read.
func runMain(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "lab-host.toml")
	require.NoError(t, os.WriteFile(cfg, []byte("host = \"pi\"\n"), 0o600))
	return runMainWith(t, cfg, args...)
}

func runMainWith(t *testing.T, cfg string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Main(context.Background(), append([]string{"--config", cfg}, args...), Streams{In: bytes.NewReader(nil), Out: &out, Err: &errb})
	return code, out.String(), errb.String()
}

func TestCAInit(t *testing.T) {
	t.Parallel()
	data := filepath.Join(t.TempDir(), "data")
	code, out, stderr := runMain(t, "ca", "init", "--data-dir", data, "--name", "pi.lab", "--name", "192.168.1.10,localhost")
	require.Equal(t, 0, code, stderr)
	dir := filepath.Join(data, "ca")
	assert.Contains(t, out, "made the lab's CA in "+dir)
	assert.Contains(t, out, "issued the receiver's certificate for 192.168.1.10, localhost, pi.lab")
	server := filepath.Join(dir, "server.pem")
	assert.Contains(t, out, "cert_file = \""+server+"\"\n  key_file = \""+server+"\"\n  client_ca_file = \""+filepath.Join(dir, "ca.pem")+"\"")
	assert.Contains(t, out, "`cis490 cert renew`")
	c, err := ca.Open(dir, ca.Options{})
	require.NoError(t, err)
	assert.Equal(t, "cis490 lab CA (pi)", c.Certificate().Subject.CommonName)
	key, err := os.ReadFile(filepath.Join(dir, ca.KeyFile))
	require.NoError(t, err)

	code, out, stderr = runMain(t, "ca", "init", "--data-dir", data)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, out, "kept the CA already in "+dir+": a CA is never replaced (nothing changed)")
	assert.Contains(t, out, "client_ca_file", "the next steps again")
	again, err := os.ReadFile(filepath.Join(dir, ca.KeyFile))
	require.NoError(t, err)
	assert.Equal(t, key, again)
}

func TestCAInitBadName(t *testing.T) {
	t.Parallel()
	data := filepath.Join(t.TempDir(), "data")
	code, _, stderr := runMain(t, "ca", "init", "--data-dir", data, "--name", "pi_lab")
	assert.Equal(t, ExitUsage, code)
	assert.Contains(t, stderr, `--name: "pi_lab" is neither a host name nor an IP address`)
	_, err := os.Stat(data)
	assert.True(t, os.IsNotExist(err), "bad input changes nothing")
}

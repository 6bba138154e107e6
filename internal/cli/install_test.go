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

	"github.com/cis490/cis490/internal/install"
)

func TestInstallNeedsRoot(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	opts := &installOptions{
		streams: Streams{Out: &out, Err: &out},
		role:    install.LabHost,
		geteuid: func() int { return 1000 },
		binary:  func() (string, error) { t.Fatal("must stop before reading the binary"); return "", nil },
	}
	err := runInstall(context.Background(), opts)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "run it as root (sudo cis490 install lab-host), or pass --root DIR")
	assert.Empty(t, out.String(), "nothing attempted")
}

// runCLI runs the whole command line, as main does.
func runCLI(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(context.Background(), args, Streams{In: strings.NewReader(stdin), Out: &out, Err: &errb})
	return code, out.String(), errb.String()
}

func TestInstallCommandLine(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	code, out, errs := runCLI(t, "c490_from_stdin\n", "install", "lab-host", "--root", root, "--token-file", "-")
	require.Equal(t, ExitOK, code, errs)
	assert.Contains(t, out, "cis490 install lab-host under "+root)
	tok, err := os.ReadFile(filepath.Join(root, "etc/cis490/token"))
	require.NoError(t, err)
	assert.Equal(t, "c490_from_stdin\n", string(tok))
	self, err := os.Executable()
	require.NoError(t, err)
	want, err := os.ReadFile(self)
	require.NoError(t, err)
	got, err := os.ReadFile(filepath.Join(root, "usr/bin/cis490"))
	require.NoError(t, err)
	assert.True(t, bytes.Equal(want, got), "the running binary is installed")

	tokenFile := filepath.Join(t.TempDir(), "lab-07.token")
	require.NoError(t, os.WriteFile(tokenFile, []byte("c490_from_stdin"), 0o600))
	code, out, errs = runCLI(t, "", "install", "lab-host", "--root", root, "--token-file", tokenFile)
	require.Equal(t, ExitOK, code, errs)
	assert.Contains(t, out, "nothing to change")
}

func TestInstallUsageErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, stdin string
		args        []string
		err         string
	}{
		{"two tokens", "a b\n", []string{"--token-file", "-"}, "--token-file standard input: more than one word"},
		{"missing token file", "", []string{"--token-file", "/nonexistent/token"}, "--token-file: open /nonexistent/token"},
		{"unknown group", "", []string{"--spool-group", "no-such-group-cis490"}, "groupadd --system no-such-group-cis490"},
		{"--config", "", []string{"--config", "/etc/other.toml"}, "--config does not apply to install"},
		{"arguments", "", []string{"extra"}, "unknown command"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			args := append([]string{"install", "lab-host", "--root", root}, tc.args...)
			code, _, errs := runCLI(t, tc.stdin, args...)
			assert.Equal(t, ExitUsage, code)
			assert.Contains(t, errs, tc.err)
			entries, err := os.ReadDir(root)
			require.NoError(t, err)
			assert.Empty(t, entries, "nothing written")
		})
	}
}

func TestInstallBrokenConfigIsAUsageError(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(root, "etc/cis490"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "etc/cis490/lab-host.toml"), []byte("[receiver]\nurll = \"x\"\n"), 0o644))
	code, _, errs := runCLI(t, "", "install", "receiver", "--root", root)
	assert.Equal(t, ExitUsage, code)
	assert.Contains(t, errs, "receiver.urll")
}

package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// `token new` needs exactly one of --host and --admin; anything else is a usage
// error (exit 2) that says what to pass, not cobra's flag-group message (exit 1).
func TestTokenNewNeedsExactlyOneOfHostAndAdmin(t *testing.T) {
	t.Parallel()
	const want = "cis490: token new: pass exactly one of --host NAME (a lab host's token) or --admin WHO (a maintainer's token)\n" +
		"Run 'cis490 token new --help' for usage.\n"
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"neither", nil},
		{"both", []string{"--host", "lab-07", "--admin", "alice"}},
		{"empty host", []string{"--host", ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			file := filepath.Join(t.TempDir(), "tokens")
			code, out, errb := runTokenNewMain(t, append([]string{"--tokens-file", file}, tc.args...)...)
			assert.Equal(t, ExitUsage, code)
			assert.Equal(t, want, errb)
			assert.Empty(t, out, "no token is printed")
			assert.NoFileExists(t, file, "nothing is minted")
		})
	}

	file := filepath.Join(t.TempDir(), "tokens")
	code, out, errb := runTokenNewMain(t, "--tokens-file", file, "--admin", "alice")
	require.Equal(t, ExitOK, code, errb)
	assert.NotEmpty(t, out)
	assert.FileExists(t, file)
}

// runTokenNewMain runs `cis490 token new ARGS` with an empty configuration file, so that
// no configuration of the machine's is read.
func runTokenNewMain(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "lab-host.toml")
	require.NoError(t, os.WriteFile(cfg, nil, 0o600))
	var out, errb bytes.Buffer
	code = Main(context.Background(), append([]string{"--config", cfg, "token", "new"}, args...),
		Streams{In: bytes.NewReader(nil), Out: &out, Err: &errb})
	return code, out.String(), errb.String()
}

// A host name that only becomes ASCII when lowercased (KELVIN SIGN) is refused, not
// minted as the ASCII host it resembles.
func TestTokenNewRefusesUnicodeHostNames(t *testing.T) {
	t.Parallel()
	for _, host := range []string{"lab-\u212a", "LAB-\u0130"} {
		file := filepath.Join(t.TempDir(), "tokens")
		code, out, errb := runTokenNewMain(t, "--tokens-file", file, "--host", host)
		assert.Equal(t, ExitUsage, code, host)
		assert.Contains(t, errb, "is not an RFC 1123 host name")
		assert.Empty(t, out)
		assert.NoFileExists(t, file)
	}
}

package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/tokens"
)

// runTokenMain runs `cis490 token ARGS` with an empty configuration file, so that no
// configuration of the machine's is read.
func runTokenMain(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "lab-host.toml")
	require.NoError(t, os.WriteFile(cfg, nil, 0o600))
	var out, errb bytes.Buffer
	code = Main(context.Background(), append([]string{"--config", cfg, "token"}, args...),
		Streams{In: bytes.NewReader(nil), Out: &out, Err: &errb})
	return code, out.String(), errb.String()
}

// tokensFixture is a tokens file with a host token from before ids and creation
// times, a rotated one past its grace, a live one and an admin's.
func tokensFixture(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tokens.toml")
	data := `# the operator's note
[[token]]
sha256 = "` + tokens.Hash("lab-01 old") + `"
host = "lab-01"

[[token]]
id = "aaaa0007"
sha256 = "` + tokens.Hash("lab-07 rotated") + `"
host = "lab-07"
created = 2020-01-01T09:00:00Z
expires = 2020-02-01T09:00:00Z

[[token]]
id = "bbbb0007"
sha256 = "` + tokens.Hash("lab-07 live") + `"
host = "lab-07"
created = 2020-02-01T08:00:00Z

[[token]]
id = "ad000001"
sha256 = "` + tokens.Hash("alice") + `"
admin = "alice"
created = 2020-01-01T09:00:00Z
expires = 2099-01-01T00:00:00Z
`
	require.NoError(t, os.WriteFile(path, []byte(data), 0o600))
	return path
}

func readTokensFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(b)
}

func TestTokenList(t *testing.T) {
	t.Parallel()
	path := tokensFixture(t)
	lab01 := tokens.Hash("lab-01 old")[:8]

	code, out, errb := runTokenMain(t, "list", "--tokens-file", path)
	require.Equal(t, ExitOK, code, errb)
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	require.Len(t, lines, 5, out)
	assert.Regexp(t, `^ID\s+WHO\s+CREATED\s+EXPIRES$`, lines[0])
	assert.Regexp(t, `^`+lab01+`\s+host lab-01\s+unknown\s+never$`, lines[1])
	assert.Regexp(t, `^aaaa0007\s+host lab-07\s+2020-01-01T09:00:00Z\s+2020-02-01T09:00:00Z \(expired\)$`, lines[2])
	assert.Regexp(t, `^bbbb0007\s+host lab-07\s+2020-02-01T08:00:00Z\s+never$`, lines[3])
	assert.Regexp(t, `^ad000001\s+admin alice\s+2020-01-01T09:00:00Z\s+2099-01-01T00:00:00Z$`, lines[4])
	assert.NotContains(t, out, tokens.Hash("lab-07 live"), "never a hash")

	code, out, errb = runTokenMain(t, "list", "--json", "--tokens-file", path)
	require.Equal(t, ExitOK, code, errb)
	assert.NotContains(t, out, "sha256")
	var doc struct {
		Tokens []map[string]any `json:"tokens"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &doc))
	assert.Equal(t, []map[string]any{
		{"id": lab01, "host": "lab-01", "expired": false},
		{"id": "aaaa0007", "host": "lab-07", "created": "2020-01-01T09:00:00Z", "expires": "2020-02-01T09:00:00Z", "expired": true},
		{"id": "bbbb0007", "host": "lab-07", "created": "2020-02-01T08:00:00Z", "expired": false},
		{"id": "ad000001", "admin": "alice", "created": "2020-01-01T09:00:00Z", "expires": "2099-01-01T00:00:00Z", "expired": false},
	}, doc.Tokens)
}

func TestTokenListEmpty(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "tokens.toml")
	require.NoError(t, os.WriteFile(path, []byte("# nothing yet\n"), 0o600))
	code, out, errb := runTokenMain(t, "list", "--tokens-file", path)
	require.Equal(t, ExitOK, code, errb)
	assert.Empty(t, out)
	assert.Contains(t, errb, "no tokens in "+path)
	code, out, errb = runTokenMain(t, "list", "--json", "--tokens-file", path)
	require.Equal(t, ExitOK, code, errb)
	assert.JSONEq(t, `{"tokens": []}`, out)
}

func TestTokenRevoke(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		args    []string
		want    string // on stderr
		removed []string
	}{
		{"host", []string{"--host", "LAB-07"}, "revoked 2 tokens of host lab-07 (aaaa0007, bbbb0007)", []string{"lab-07 rotated", "lab-07 live"}},
		{"admin", []string{"--admin", "alice"}, "revoked 1 token of admin alice (ad000001)", []string{"alice"}},
		{"id", []string{"--id", "bbbb0007"}, `revoked 1 token with id "bbbb0007" (host lab-07)`, []string{"lab-07 live"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := tokensFixture(t)
			code, out, errb := runTokenMain(t, append([]string{"revoke", "--tokens-file", path}, tc.args...)...)
			require.Equal(t, ExitOK, code, errb)
			assert.Empty(t, out)
			assert.Contains(t, errb, tc.want)
			assert.Contains(t, errb, "within a second")
			set, err := tokens.Load(path)
			require.NoError(t, err)
			assert.Equal(t, 4-len(tc.removed), set.Len())
			far := time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)
			for _, tok := range tc.removed {
				_, ok := set.Lookup(tok, far)
				assert.False(t, ok, tok)
			}
			assert.Contains(t, readTokensFile(t, path), "# the operator's note")
		})
	}
}

func TestTokenRotate(t *testing.T) {
	t.Parallel()
	t.Run("grace", func(t *testing.T) {
		t.Parallel()
		path := tokensFixture(t)
		before := time.Now()
		code, out, errb := runTokenMain(t, "rotate", "--tokens-file", path, "--host", "lab-07", "--grace", "2h")
		require.Equal(t, ExitOK, code, errb)
		token := strings.TrimSuffix(out, "\n")
		require.True(t, strings.HasPrefix(token, "c490_"), "the token alone on stdout: %q", out)
		assert.NotContains(t, token, "\n")
		assert.Contains(t, errb, "minted token "+tokens.Hash(token)[:8]+" for host lab-07")
		assert.Contains(t, errb, "bbbb0007 now expires at")
		assert.NotContains(t, errb, "aaaa0007", "an expired token is not rotated again")
		assert.NotContains(t, errb, token)

		set, err := tokens.Load(path)
		require.NoError(t, err)
		_, ok := set.Lookup("lab-07 live", before.Add(time.Hour))
		assert.True(t, ok, "the old token works during the grace")
		_, ok = set.Lookup("lab-07 live", before.Add(2*time.Hour+2*time.Second))
		assert.False(t, ok, "and not after it")
		_, ok = set.Lookup(token, before.Add(48*time.Hour))
		assert.True(t, ok)
	})
	t.Run("no grace", func(t *testing.T) {
		t.Parallel()
		path := tokensFixture(t)
		code, out, errb := runTokenMain(t, "rotate", "--tokens-file", path, "--host", "lab-07", "--grace", "0")
		require.Equal(t, ExitOK, code, errb)
		assert.Contains(t, errb, "revoked the old token of host lab-07 (bbbb0007)")
		set, err := tokens.Load(path)
		require.NoError(t, err)
		_, ok := set.Lookup("lab-07 live", time.Now())
		assert.False(t, ok)
		_, ok = set.Lookup(strings.TrimSpace(out), time.Now())
		assert.True(t, ok)
	})
}

// Usage errors, nothing to act on and a broken file: the exit code says which, the
// message what to do, and the file is left as it was.
func TestTokenManageErrors(t *testing.T) {
	t.Parallel()
	broken := "[[token]]\nsha256 = \"" + tokens.Hash("x") + "\"\nhots = \"lab-07\"\n"
	for _, tc := range []struct {
		name   string
		broken bool
		args   []string
		code   int
		want   string
	}{
		{"revoke nothing selected", false, []string{"revoke"}, ExitUsage, "token revoke: pass exactly one of --host NAME, --admin WHO or --id ID"},
		{"revoke two selected", false, []string{"revoke", "--host", "lab-07", "--id", "bbbb0007"}, ExitUsage, "pass exactly one of"},
		{"revoke empty host", false, []string{"revoke", "--host", ""}, ExitUsage, "pass exactly one of"},
		{"revoke argument", false, []string{"revoke", "lab-07"}, ExitUsage, "unknown command"},
		{"revoke grace", false, []string{"revoke", "--host", "lab-07", "--grace", "1h"}, ExitUsage, "unknown flag: --grace"},
		{"revoke bad host", false, []string{"revoke", "--host", "lab_07"}, ExitUsage, `--host "lab_07" is not an RFC 1123 host name`},
		{"revoke no match", false, []string{"revoke", "--host", "lab-09"}, ExitUsage, "no token of host lab-09 in"},
		{"revoke partial id", false, []string{"revoke", "--id", "bbbb"}, ExitUsage, `no token with id "bbbb"`},
		{"revoke broken file", true, []string{"revoke", "--host", "lab-07"}, ExitFailure, `unknown key "token.hots"`},
		{"rotate no host", false, []string{"rotate"}, ExitUsage, "token rotate: pass --host NAME"},
		{"rotate admin", false, []string{"rotate", "--admin", "alice"}, ExitUsage, "unknown flag: --admin"},
		{"rotate negative grace", false, []string{"rotate", "--host", "lab-07", "--grace", "-1h"}, ExitUsage, "--grace -1h0m0s is negative"},
		{"rotate bad grace", false, []string{"rotate", "--host", "lab-07", "--grace", "a day"}, ExitUsage, `invalid argument "a day" for "--grace"`},
		{"rotate bad host", false, []string{"rotate", "--host", "lab-\u212a"}, ExitUsage, "is not an RFC 1123 host name"},
		{"rotate no live token", false, []string{"rotate", "--host", "lab-09"}, ExitUsage, "no live token of host lab-09"},
		{"rotate admin name", false, []string{"rotate", "--host", "alice"}, ExitUsage, "no live token of host alice"},
		{"rotate broken file", true, []string{"rotate", "--host", "lab-07"}, ExitFailure, `unknown key "token.hots"`},
		{"list argument", false, []string{"list", "lab-07"}, ExitUsage, "unknown command"},
		{"list host", false, []string{"list", "--host", "lab-07"}, ExitUsage, "unknown flag: --host"},
		{"list broken file", true, []string{"list"}, ExitFailure, `unknown key "token.hots"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := tokensFixture(t)
			if tc.broken {
				require.NoError(t, os.WriteFile(path, []byte(broken), 0o600))
			}
			before := readTokensFile(t, path)
			code, out, errb := runTokenMain(t, append(tc.args, "--tokens-file", path)...)
			assert.Equal(t, tc.code, code, errb)
			assert.Contains(t, errb, tc.want)
			if tc.code != ExitUsage { // only a command line cobra cannot parse points to --help (root_test.go)
				assert.NotContains(t, errb, "--help' for usage.")
			}
			assert.NotContains(t, errb, "no token matched:", "the message says what was looked for, once")
			assert.Empty(t, out, "no token is printed")
			assert.Equal(t, before, readTokensFile(t, path), "the file is left as it was")
		})
	}
}

func TestTokenManageWithoutATokensFile(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"list"}, {"revoke", "--host", "lab-07"}, {"rotate", "--host", "lab-07"}} {
		t.Run(args[0]+" unconfigured", func(t *testing.T) {
			t.Parallel()
			code, out, errb := runTokenMain(t, args...)
			assert.Equal(t, ExitUsage, code, errb)
			assert.Contains(t, errb, "no tokens file: set serve.tokens_file in lab-host.toml or pass --tokens-file")
			assert.Empty(t, out)
		})
		t.Run(args[0]+" missing", func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "tokens.toml")
			code, out, errb := runTokenMain(t, append(args, "--tokens-file", path)...)
			assert.Equal(t, ExitFailure, code, errb)
			assert.Contains(t, errb, "no tokens file at "+path+": mint the first token with `cis490 token new`")
			assert.Empty(t, out)
			assert.NoFileExists(t, path)
			assert.NoFileExists(t, path+".lock")
		})
	}
}

// The exit codes reach the man pages through each command's help.
func TestTokenHelpDocumentsExitCodes(t *testing.T) {
	t.Parallel()
	for _, sub := range []string{"new", "list", "revoke", "rotate"} {
		code, out, errb := runTokenMain(t, sub, "--help")
		require.Equal(t, ExitOK, code, errb)
		assert.Contains(t, out, "Exit codes: 0 ", sub)
		assert.Contains(t, out, "2 usage error", sub)
	}
}

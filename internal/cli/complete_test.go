package cli

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/alerts"
	"github.com/cis490/cis490/internal/doctor"
	"github.com/cis490/cis490/internal/fleethealth"
	"github.com/cis490/cis490/internal/tokens"
)

// complete asks the real command tree what the shell would offer, through cobra's
// hidden __complete command (what the generated scripts run), with an empty
// configuration unless args bring a --config of their own.
func complete(t *testing.T, args ...string) (values []string, directive cobra.ShellCompDirective) {
	t.Helper()
	if !strings.Contains(strings.Join(args, " "), "--config") {
		cfg := filepath.Join(t.TempDir(), "lab-host.toml")
		require.NoError(t, os.WriteFile(cfg, nil, 0o600))
		args = append([]string{"--config", cfg}, args...)
	}
	code, out, errs := runCLI(t, "", append([]string{cobra.ShellCompRequestCmd}, args...)...)
	require.Equal(t, ExitOK, code, errs)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	require.NotEmpty(t, lines)
	last := lines[len(lines)-1]
	require.True(t, strings.HasPrefix(last, ":"), "the directive ends the output: %q", out)
	d, err := strconv.Atoi(last[1:])
	require.NoError(t, err)
	return lines[:len(lines)-1], cobra.ShellCompDirective(d)
}

const noFiles = cobra.ShellCompDirectiveNoFileComp

func TestCompleteFixedValues(t *testing.T) {
	t.Parallel()
	roles := make([]string, len(doctor.Roles))
	for i, r := range doctor.Roles {
		roles[i] = string(r)
	}
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"alerts", "tail", "--symptom", ""}, fleethealth.Symptoms},
		{[]string{"alerts", "silence", "--symptom", ""}, fleethealth.Symptoms},
		{[]string{"alerts", "tail", "--symptom", "report-"}, []string{"report-failing", "report-warning", "report-stale"}},
		{[]string{"alerts", "tail", "--status", ""}, alerts.Statuses},
		{[]string{"alerts", "tail", "--color", ""}, colorModes},
		{[]string{"alerts", "tail", "--color", "a"}, []string{"auto", "always"}},
		{[]string{"ship", "--log-level", ""}, logLevels},
		{[]string{"alerts", "tail", "--log-format", ""}, logFormats},
		{[]string{"doctor", "--role", ""}, roles},
		{[]string{"health", "ship", "--role", ""}, roles},
	} {
		got, d := complete(t, tc.args...)
		assert.Equal(t, tc.want, got, tc.args)
		assert.Equal(t, noFiles, d, tc.args)
	}
}

// Every value offered is one the command takes.
func TestCompletedValuesAreAccepted(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "alerts.jsonl") // no alerts yet: exit 0
	for _, flag := range []string{"--symptom", "--status", "--color", "--log-level", "--log-format"} {
		values, _ := complete(t, "alerts", "tail", flag, "")
		require.NotEmpty(t, values, flag)
		for _, v := range values {
			code, _, errs := runCLI(t, "", "alerts", "tail", "--file", missing, flag, v)
			assert.Equal(t, ExitOK, code, "%s %s: %s", flag, v, errs)
		}
		code, _, _ := runCLI(t, "", "alerts", "tail", "--file", missing, flag, "bogus")
		assert.Equal(t, ExitUsage, code, "%s bogus is refused: the test can tell", flag)
	}
}

// rosterFixture is a configuration whose tokens file holds two live host tokens (one
// host twice), an expired one and an admin's.
func rosterFixture(t *testing.T) (cfg, tokensFile string) {
	t.Helper()
	dir := t.TempDir()
	tokensFile = filepath.Join(dir, "tokens.toml")
	data := `[[token]]
id = "aaaa0001"
sha256 = "` + tokens.Hash("lab-07 a") + `"
host = "lab-07"

[[token]]
id = "aaaa0002"
sha256 = "` + tokens.Hash("lab-01") + `"
host = "lab-01"

[[token]]
id = "aaaa0003"
sha256 = "` + tokens.Hash("lab-07 b") + `"
host = "lab-07"

[[token]]
id = "aaaa0004"
sha256 = "` + tokens.Hash("lab-09 old") + `"
host = "lab-09"
expires = 2020-01-01T00:00:00Z

[[token]]
id = "aaaa0005"
sha256 = "` + tokens.Hash("alice") + `"
admin = "alice"
`
	require.NoError(t, os.WriteFile(tokensFile, []byte(data), 0o600))
	cfg = filepath.Join(dir, "lab-host.toml")
	require.NoError(t, os.WriteFile(cfg, []byte("[serve]\ntokens_file = \""+tokensFile+"\"\n"), 0o600))
	return cfg, tokensFile
}

func TestCompleteHostsFromTheRoster(t *testing.T) {
	t.Parallel()
	cfg, file := rosterFixture(t)
	roster := []string{"lab-01", "lab-07"} // sorted, once each, not the expired lab-09 nor admin alice
	for _, args := range [][]string{
		{"alerts", "tail", "--host", ""},
		{"alerts", "silence", "--host", ""},
		{"token", "revoke", "--host", ""},
		{"token", "rotate", "--host", ""},
	} {
		got, d := complete(t, append([]string{"--config", cfg}, args...)...)
		assert.Equal(t, roster, got, args)
		assert.Equal(t, noFiles, d)
	}
	got, _ := complete(t, "--config", cfg, "alerts", "tail", "--host", "lab-0")
	assert.Equal(t, roster, got)
	got, _ = complete(t, "--config", cfg, "alerts", "tail", "--host", "lab-07")
	assert.Equal(t, []string{"lab-07"}, got)

	// token's own --tokens-file on the line is the file read.
	got, _ = complete(t, "token", "revoke", "--tokens-file", file, "--host", "")
	assert.Equal(t, roster, got)
	got, _ = complete(t, "token", "revoke", "--tokens-file", file, "--admin", "")
	assert.Equal(t, []string{"alice"}, got)
	got, _ = complete(t, "token", "revoke", "--tokens-file", file, "--id", "")
	assert.Equal(t, []string{"aaaa0001\thost lab-07", "aaaa0002\thost lab-01", "aaaa0003\thost lab-07",
		"aaaa0004\thost lab-09, expired", "aaaa0005\tadmin alice"}, got)

	// A new token's host is not in the roster yet: nothing to offer.
	got, d := complete(t, "--config", cfg, "token", "new", "--host", "")
	assert.Empty(t, got)
	assert.Equal(t, noFiles, d)
}

// No tokens file, one that cannot be read or a configuration that does not load:
// no completions, no error, nothing on standard error a shell would print.
func TestCompleteHostsSilentlyOffersNothing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.toml")
	require.NoError(t, os.WriteFile(garbage, []byte("not [toml"), 0o600))
	missingTokens := filepath.Join(dir, "missing.toml")
	require.NoError(t, os.WriteFile(missingTokens, []byte("[serve]\ntokens_file = \""+filepath.Join(dir, "nope")+"\"\n"), 0o600))
	brokenTokens := filepath.Join(dir, "broken.toml")
	require.NoError(t, os.WriteFile(brokenTokens, []byte("[serve]\ntokens_file = \""+garbage+"\"\n"), 0o600))
	badConfig := filepath.Join(dir, "bad.toml")
	require.NoError(t, os.WriteFile(badConfig, []byte("[serve]\ntokens_fil = \"x\"\n"), 0o600))
	for _, cfg := range []string{"", missingTokens, brokenTokens, badConfig} {
		if cfg == "" {
			cfg = filepath.Join(dir, "empty.toml")
			require.NoError(t, os.WriteFile(cfg, nil, 0o600))
		}
		code, out, errs := runCLI(t, "", cobra.ShellCompRequestCmd, "--config", cfg, "alerts", "tail", "--host", "")
		assert.Equal(t, ExitOK, code, cfg)
		assert.Equal(t, ":4\n", out, cfg)
		assert.Equal(t, "Completion ended with directive: ShellCompDirectiveNoFileComp\n", errs, cfg)
	}
}

// Each flag of these names, anywhere in the tree, completes its values; a new
// command's --status must say which values its statuses are (statusValues).
func TestEveryValueFlagCompletes(t *testing.T) {
	t.Parallel()
	root := NewRoot(Streams{})
	for _, f := range []string{"log-level", "log-format"} {
		_, ok := root.GetFlagCompletionFunc(f)
		assert.True(t, ok, f)
	}
	walkCommands(root, func(c *cobra.Command) {
		for _, f := range []string{"symptom", "status", "color", "role", "host", "admin", "id"} {
			if c.Flags().Lookup(f) == nil {
				continue
			}
			_, ok := c.GetFlagCompletionFunc(f)
			assert.True(t, ok, "%s --%s has no completion", c.CommandPath(), f)
		}
	})
}

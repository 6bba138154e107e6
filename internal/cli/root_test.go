package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const usageHint = "' for usage."

// A mistyped command at any depth is refused with cobra's suggestion, exit 2, on
// standard error: cobra alone prints a group's help and exits 0 for it.
func TestUnknownCommandIsRefusedWithASuggestion(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ group, typed, want string }{
		{"fleet-health", "chek", "check"},
		{"token", "revok", "revoke"},
		{"alerts", "tial", "tail"},
		{"install", "lab-hots", "lab-host"},
		{"health", "shp", "ship"},
		{"", "shp", "ship"},
	} {
		t.Run(tc.group+" "+tc.typed, func(t *testing.T) {
			t.Parallel()
			args := append(strings.Fields(tc.group), tc.typed)
			code, out, errs := runCLI(t, "", args...)
			assert.Equal(t, ExitUsage, code, errs)
			assert.Empty(t, out, "nothing on standard output: no help page as if all went well")
			path := strings.TrimSpace("cis490 " + tc.group)
			assert.Equal(t, "cis490: unknown command \""+tc.typed+"\" for \""+path+"\"\n\n"+
				"Did you mean this?\n\t"+tc.want+"\n\n"+
				"Run '"+path+" --help' for usage.\n", errs)
		})
	}
}

// Every group of the tree refuses a word that names none of its commands, and
// suggests each command from its name with the last letter missing.
func TestEveryGroupRefusesUnknownCommands(t *testing.T) {
	t.Parallel()
	var groups []*cobra.Command
	walkCommands(NewRoot(Streams{}), func(c *cobra.Command) {
		if c.HasAvailableSubCommands() {
			groups = append(groups, c)
		}
	})
	require.NotEmpty(t, groups)
	for _, g := range groups {
		path := strings.Fields(g.CommandPath())[1:]
		code, out, errs := runCLI(t, "", append(path, "qqqqqq")...)
		assert.Equal(t, ExitUsage, code, g.CommandPath())
		assert.Empty(t, out)
		assert.Contains(t, errs, `unknown command "qqqqqq" for "`+g.CommandPath()+`"`)
		assert.NotContains(t, errs, "Did you mean")
		for _, sub := range g.Commands() {
			if !sub.IsAvailableCommand() || len(sub.Name()) < 3 {
				continue
			}
			typo := sub.Name()[:len(sub.Name())-1]
			if c, _, err := g.Find([]string{typo}); err == nil && c != g {
				continue // silences without its s is silence
			}
			code, _, errs := runCLI(t, "", append(path, typo)...)
			assert.Equal(t, ExitUsage, code, g.CommandPath()+" "+typo)
			assert.Contains(t, errs, "Did you mean this?\n", g.CommandPath()+" "+typo)
			assert.Contains(t, errs, "\t"+sub.Name()+"\n", g.CommandPath()+" "+typo)
		}
	}
}

// A group alone prints its help, on standard output, and exits 0.
func TestGroupAlonePrintsItsHelp(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{nil, {"token"}, {"fleet-health"}, {"alerts"}} {
		code, out, errs := runCLI(t, "", args...)
		assert.Equal(t, ExitOK, code, errs)
		assert.Contains(t, out, "Available Commands:", args)
		assert.Empty(t, errs)
	}
}

// Every command that runs says what arguments it takes: none of them takes five, and
// each refuses them before it does anything.
func TestLeafCommandsRefuseExtraArguments(t *testing.T) {
	t.Parallel()
	walkCommands(NewRoot(Streams{}), func(c *cobra.Command) {
		if c.HasSubCommands() || !c.Runnable() {
			return
		}
		assert.NotNil(t, c.Args, "%s: Args unset lets cobra take any argument", c.CommandPath())
		args := append(strings.Fields(c.CommandPath())[1:], "a1", "a2", "a3", "a4", "a5")
		code, out, errs := runCLI(t, "", args...)
		assert.Equal(t, ExitUsage, code, "%s: %s", c.CommandPath(), errs)
		assert.Empty(t, out, c.CommandPath())
		assert.Contains(t, errs, "Run '"+c.CommandPath()+" --help' for usage.\n", c.CommandPath())
	})
}

// A configuration error is the error alone: the command's --help would not fix it.
// A command line cobra cannot parse still points to --help.
func TestConfigErrorsEndWithoutAUsageHint(t *testing.T) {
	t.Parallel()
	cfg := filepath.Join(t.TempDir(), "lab-host.toml")
	require.NoError(t, os.WriteFile(cfg, []byte("[ship]\nretries = \"abc\"\n"), 0o600))
	for _, args := range [][]string{{"ship"}, {"fleet"}, {"alerts", "tail"}, {"token", "list"}} {
		code, out, errs := runCLI(t, "", append(args, "--config", cfg)...)
		assert.Equal(t, ExitUsage, code, errs)
		assert.Empty(t, out)
		assert.Contains(t, errs, "ship.retries")
		assert.NotContains(t, errs, usageHint, args)
		assert.Equal(t, 1, strings.Count(errs, "\n"), "one line: %q", errs)
	}

	code, _, errs := runCLI(t, "", "ship", "--bogus")
	assert.Equal(t, ExitUsage, code)
	assert.Equal(t, "cis490: unknown flag: --bogus\nRun 'cis490 ship --help' for usage.\n", errs)
	code, _, errs = runCLI(t, "", "fleet", "--interval", "soon")
	assert.Equal(t, ExitUsage, code)
	assert.Contains(t, errs, "Run 'cis490 fleet --help' for usage.\n")
}

// The issue's own case, through the environment (so not in parallel).
func TestConfigErrorFromTheEnvironmentIsAlone(t *testing.T) {
	t.Setenv("CIS490_SHIP_RETRIES", "abc")
	cfg := filepath.Join(t.TempDir(), "lab-host.toml")
	require.NoError(t, os.WriteFile(cfg, nil, 0o600))
	code, out, errs := runCLI(t, "", "ship", "--config", cfg)
	assert.Equal(t, ExitUsage, code)
	assert.Empty(t, out)
	assert.Equal(t, "cis490: $CIS490_SHIP_RETRIES: bad value for ship.retries: \"abc\" is not a whole number\n", errs)
}

// cobra's required-flag and flag-group checks run after PersistentPreRun, with
// untyped errors: they are still usage errors.
func TestCobraFlagChecksAreUsageErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		setup func(*cobra.Command)
		args  []string
	}{
		{func(c *cobra.Command) { _ = c.MarkFlagRequired("a") }, []string{"--b", "1"}},
		{func(c *cobra.Command) { c.MarkFlagsOneRequired("a", "b") }, nil},
		{func(c *cobra.Command) { c.MarkFlagsMutuallyExclusive("a", "b") }, []string{"--a", "1", "--b", "1"}},
		{func(c *cobra.Command) { c.MarkFlagsRequiredTogether("a", "b") }, []string{"--a", "1"}},
	} {
		c := &cobra.Command{Use: "x", RunE: func(*cobra.Command, []string) error { return nil }, SilenceErrors: true, SilenceUsage: true}
		c.Flags().String("a", "", "")
		c.Flags().String("b", "", "")
		tc.setup(c)
		c.SetArgs(tc.args)
		err := c.Execute()
		require.Error(t, err, tc.args)
		assert.True(t, isFlagCheck(err), err.Error())
	}
	assert.False(t, isFlagCheck(errors.New("config /etc/cis490/lab-host.toml: bad value for ship.retries")))
}

// Under systemd, cis490's last words are an error in the journal, not info: each line
// starts with "<3>" when standard error is the journal's stream (issue 11 bug 4), and
// with nothing anywhere else.
func TestLastWordsCarryTheErrorPriorityInTheJournal(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	require.NoError(t, err)
	defer f.Close()
	fi, err := f.Stat()
	require.NoError(t, err)
	st := fi.Sys().(*syscall.Stat_t)
	t.Setenv("CIS490_SHIP_RETRIES", "abc")
	cfg := filepath.Join(t.TempDir(), "lab-host.toml")
	require.NoError(t, os.WriteFile(cfg, nil, 0o600))

	t.Setenv("JOURNAL_STREAM", fmt.Sprintf("%d:%d", st.Dev, st.Ino))
	code := Main(context.Background(), []string{"ship", "--config", cfg}, Streams{In: strings.NewReader(""), Out: io.Discard, Err: f})
	assert.Equal(t, ExitUsage, code)
	b, err := os.ReadFile(f.Name())
	require.NoError(t, err)
	assert.Equal(t, "<3>cis490: $CIS490_SHIP_RETRIES: bad value for ship.retries: \"abc\" is not a whole number\n", string(b))

	_, _, errs := runCLI(t, "", "ship", "--config", cfg) // a buffer is never the journal
	assert.True(t, strings.HasPrefix(errs, "cis490: "), errs)
}

// `cis490 help chek` is as wrong as `cis490 chek`: exit 2, not cobra's exit 0.
func TestHelpOfAnUnknownTopicIsAUsageError(t *testing.T) {
	for _, args := range [][]string{{"help", "chek"}, {"help", "fleet-health", "chek"}} {
		code, _, errs := runCLI(t, "", args...)
		assert.Equal(t, ExitUsage, code, args)
		assert.Contains(t, errs, "unknown help topic", args)
	}
	code, out, _ := runCLI(t, "", "help", "token", "list")
	assert.Equal(t, ExitOK, code)
	assert.Contains(t, out, "cis490 token list")
}

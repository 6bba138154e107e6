package cli

import (
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cis490/cis490/internal/alerts"
	"github.com/cis490/cis490/internal/fleethealth"
	"github.com/cis490/cis490/internal/logging"
	"github.com/cis490/cis490/internal/tokens"
)

// The values of flags that are a known set, for shell completion. Each must be what
// the command accepts (complete_test.go runs the command with every one).
var (
	colorModes = []string{"auto", "always", "never"}
	logLevels  = []string{"debug", "info", "warn", "error"}
	logFormats = []string{logging.FormatAuto, logging.FormatConsole, logging.FormatJSON}
	// statusValues are each command's --status values: a status means something
	// else to each command that filters by one.
	statusValues = map[string][]string{
		"cis490 alerts tail": alerts.Statuses,
	}
	// newIdentity are the commands whose --host or --admin names one that has no
	// token yet: the tokens file has nothing to offer them (nor has the folder).
	newIdentity = map[string]bool{
		"cis490 token new": true,
	}
)

// registerCompletions gives flag values their shell completions across the whole
// tree (cobra's RegisterFlagCompletionFunc): by flag name, so that a command added
// later with a --symptom or a --host gets them too. A flag that already has one
// (doctor's --role) keeps it.
func registerCompletions(a *app, root *cobra.Command) {
	register := func(c *cobra.Command, flag string, f cobra.CompletionFunc) {
		if c.Flags().Lookup(flag) == nil && c.PersistentFlags().Lookup(flag) == nil {
			return
		}
		if _, ok := c.GetFlagCompletionFunc(flag); ok {
			return
		}
		if err := c.RegisterFlagCompletionFunc(flag, f); err != nil {
			panic(err) // the flag was just found and had no completion
		}
	}
	register(root, "log-level", fixedCompletions(logLevels))
	register(root, "log-format", fixedCompletions(logFormats))
	walkCommands(root, func(c *cobra.Command) {
		register(c, "symptom", fixedCompletions(fleethealth.Symptoms))
		register(c, "color", fixedCompletions(colorModes))
		if vals, ok := statusValues[c.CommandPath()]; ok {
			register(c, "status", fixedCompletions(vals))
		}
		if newIdentity[c.CommandPath()] {
			register(c, "host", cobra.NoFileCompletions)
			register(c, "admin", cobra.NoFileCompletions)
		}
		register(c, "host", a.completeFromTokens(rosterHosts))
		register(c, "admin", a.completeFromTokens(tokenAdmins))
		register(c, "id", a.completeFromTokens(entryIDs))
		for _, dir := range []string{"data-dir", "spool-dir", "root", "out"} {
			if c.Flags().Lookup(dir) != nil {
				if err := c.MarkFlagDirname(dir); err != nil {
					panic(err)
				}
			}
		}
	})
}

// fixedCompletions offers the values that start with what is typed, and no files.
func fixedCompletions(values []string) cobra.CompletionFunc {
	return func(_ *cobra.Command, _ []string, typed string) ([]cobra.Completion, cobra.ShellCompDirective) {
		var out []cobra.Completion
		for _, v := range values {
			if strings.HasPrefix(v, strings.ToLower(typed)) {
				out = append(out, v)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// completeFromTokens offers what pick finds in the tokens file the command would use
// (serve.tokens_file, from the configuration, the environment or --tokens-file on
// the line being completed). No configuration, no tokens file or one that cannot be
// read offers nothing, silently: a completion has nowhere to say why.
func (a *app) completeFromTokens(pick func(*tokens.Set, time.Time) []cobra.Completion) cobra.CompletionFunc {
	return func(cmd *cobra.Command, _ []string, typed string) ([]cobra.Completion, cobra.ShellCompDirective) {
		a.running = cmd // load binds this command's flags (cobra parsed them for completion)
		cfg, _, err := a.load()
		if err != nil || cfg.Serve.TokensFile == "" {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		set, err := tokens.Load(cfg.Serve.TokensFile)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []cobra.Completion
		for _, c := range pick(set, time.Now()) {
			if strings.HasPrefix(c, typed) {
				out = append(out, c)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// rosterHosts are the hosts with a live host token: the fleet's roster.
func rosterHosts(set *tokens.Set, now time.Time) []cobra.Completion {
	var out []cobra.Completion
	for _, h := range set.Hosts(now) {
		out = append(out, h.Host)
	}
	return out
}

// tokenAdmins are the admins with a live token, in file order, once each.
func tokenAdmins(set *tokens.Set, now time.Time) []cobra.Completion {
	var out []cobra.Completion
	seen := map[string]bool{}
	for _, e := range set.Entries() {
		if e.IsAdmin() && e.Live(now) && !seen[e.Admin] {
			seen[e.Admin] = true
			out = append(out, e.Admin)
		}
	}
	return out
}

// entryIDs are every entry's id, described by whom it acts as (as token list shows).
func entryIDs(set *tokens.Set, now time.Time) []cobra.Completion {
	var out []cobra.Completion
	for _, e := range set.Entries() {
		desc := e.Identity.String()
		if !e.Live(now) {
			desc += ", expired"
		}
		out = append(out, cobra.CompletionWithDesc(e.ID, desc))
	}
	return out
}

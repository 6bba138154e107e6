// Package cli is the command tree: each command parses its flags into an options
// struct and calls a run function; the work itself lives in the domain packages.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
	"github.com/spf13/viper"

	"github.com/cis490/cis490/internal/config"
	"github.com/cis490/cis490/internal/logging"
)

// Streams are the standard streams a command uses; tests pass buffers.
type Streams struct {
	In       io.Reader
	Out, Err io.Writer
}

// Exit codes shared by every command.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitUsage   = 2
)

// exitError carries a command's chosen exit code up to Main.
type exitError struct {
	code int
	err  error
	// hint adds "Run 'cis490 CMD --help' for usage." after the message.
	hint bool
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageErr(err error) error { return &exitError{code: ExitUsage, err: err} }

// app is what every command of one tree shares: the streams, one Viper instance and
// the global flags.
type app struct {
	streams    Streams
	v          *viper.Viper
	configPath string
	bindings   []binding
	// running is the command being executed, set before its RunE (cobra's
	// PersistentPreRun): nil while cobra still parses the command line.
	running *cobra.Command
}

// binding ties a command's flag to a configuration key.
type binding struct {
	cmd       *cobra.Command
	flag, key string
}

// load binds the running command's flags, reads the configuration and builds the
// logger; a failure is a usage error.
func (a *app) load() (config.Config, zerolog.Logger, error) {
	for _, b := range a.bindings {
		if b.cmd != a.running && b.cmd.HasParent() {
			continue // another command's flag for the same key must not shadow this one's
		}
		f := b.cmd.Flags().Lookup(b.flag)
		if f == nil {
			f = b.cmd.PersistentFlags().Lookup(b.flag)
		}
		if err := a.v.BindPFlag(b.key, f); err != nil {
			panic(fmt.Sprintf("bind --%s to %s: %v", b.flag, b.key, err))
		}
	}
	cfg, err := config.Load(a.v, a.configPath)
	if err != nil {
		return cfg, zerolog.Nop(), usageErr(err)
	}
	log, err := logging.New(a.streams.Err, cfg.Log.Level, cfg.Log.Format)
	if err != nil {
		return cfg, log, usageErr(err)
	}
	return cfg, log, nil
}

// bind makes a flag override the configuration key it names when cmd runs. Binding
// waits for load: Viper keeps one flag per key, and several commands have a flag for
// the same key (serve and token new both have --tokens-file).
func (a *app) bind(cmd *cobra.Command, flag, key string) {
	if cmd.Flags().Lookup(flag) == nil && cmd.PersistentFlags().Lookup(flag) == nil {
		panic(fmt.Sprintf("bind --%s to %s: no such flag on %s", flag, key, cmd.Name()))
	}
	a.bindings = append(a.bindings, binding{cmd: cmd, flag: flag, key: key})
}

// NewRoot builds a fresh command tree (cobra keeps flag state, so one per run or test).
func NewRoot(streams Streams) *cobra.Command {
	root, _ := newRoot(streams)
	return root
}

func newRoot(streams Streams) (*cobra.Command, *app) {
	a := &app{streams: streams, v: config.New()}
	root := &cobra.Command{
		Use:   "cis490",
		Short: "Keep a lab fleet healthy and its episodes flowing to the receiver",
		Long: `cis490 is one binary for every role of the lab fleet: the receiver on the Pi
(serve, fleet-health, ca, storage), the shipper, self-check and self-healing on each lab
host (ship, doctor, health ship, cert renew, update) and the maintainer's tools
(alerts, fleet, install, token, cert, release).

Configuration comes from lab-host.toml: --config PATH, else $CIS490_CONFIG, else
/etc/cis490/lab-host.toml, else $XDG_CONFIG_HOME/cis490/lab-host.toml; without a file
the defaults apply. Any key can be set as CIS490_<SECTION>_<KEY>; lab-host.toml(5)
lists them all.

A command group alone (cis490 token) prints its commands. An unknown command, or an
argument a command does not take, is a usage error.

Exit codes: 0 success, 1 failure, 2 usage or configuration error.`,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.Err)
	pf := root.PersistentFlags()
	pf.StringVar(&a.configPath, "config", "", "configuration file (default: search $CIS490_CONFIG, /etc/cis490, $XDG_CONFIG_HOME/cis490)")
	pf.String("log-level", "info", "log level: debug, info, warn, error")
	pf.String("log-format", "auto", "log format: auto (human on a terminal), console or json")
	a.bind(root, "log-level", "log.level")
	a.bind(root, "log-format", "log.format")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageErr(err) })
	root.PersistentPreRun = func(cmd *cobra.Command, _ []string) { a.running = cmd }

	root.AddCommand(
		newServeCmd(a),
		newShipCmd(a),
		newDoctorCmd(a),
		newHealthCmd(a),
		newFleetHealthCmd(a),
		newFleetCmd(a),
		newAlertsCmd(a),
		newTokenCmd(a),
		newCACmd(a), newCertCmd(a),
		newVersionCmd(a),
		newInstallCmd(a),
		newReleaseCmd(a), newUpdateCmd(a),
		newStorageCmd(a),
		newGenCmd(a),
	)
	root.SetHelpCommand(newHelpCmd())
	// After every command is added: what follows walks the whole tree.
	root.InitDefaultCompletionCmd()
	refuseUnknownCommands(root)
	registerCompletions(a, root)
	return root, a
}

// newHelpCmd is cobra's help command, except that an unknown topic (`cis490 help
// chek`) is a usage error, exit 2, as the same words without "help" are; cobra's own
// prints "Unknown help topic" and exits 0.
func newHelpCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "help [command]",
		Short: "Help about any command",
		Long:  "Help provides help for any command in the application: cis490 help [path to command].",
		ValidArgsFunction: func(c *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			cmd, _, err := c.Root().Find(args)
			if err != nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			var names []cobra.Completion
			for _, sub := range cmd.Commands() {
				if sub.IsAvailableCommand() && strings.HasPrefix(sub.Name(), toComplete) {
					names = append(names, cobra.CompletionWithDesc(sub.Name(), sub.Short))
				}
			}
			return names, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(c *cobra.Command, args []string) error {
			cmd, rest, err := c.Root().Find(args)
			if err != nil || len(rest) > 0 {
				return usageErr(fmt.Errorf("unknown help topic %q: 'cis490 --help' lists the commands", strings.Join(args, " ")))
			}
			cmd.InitDefaultHelpFlag()
			return cmd.Help()
		},
	}
}

// refuseUnknownCommands makes every command group (a command with subcommands and
// nothing of its own to run) refuse an argument that names none of them, as cobra
// does only for the root: `cis490 token revok` is an unknown command with a
// suggestion, exit 2, where cobra would print the group's help and exit 0. A group
// given nothing prints its help, as before.
func refuseUnknownCommands(root *cobra.Command) {
	walkCommands(root, func(c *cobra.Command) {
		if !c.HasSubCommands() || c.Runnable() {
			return
		}
		c.Args = unknownCommand
		c.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
	})
}

// unknownCommand is a group's Args: no argument, or an error in cobra's words with
// cobra's suggestions (SuggestionsFor: a prefix, or within SuggestionsMinimumDistance
// edits, cobra's default of 2 unless the command sets one).
func unknownCommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2
	}
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 && !cmd.DisableSuggestions {
		msg += "\n\nDid you mean this?\n\t" + strings.Join(s, "\n\t")
	}
	return usageErr(errors.New(msg))
}

// Main runs the command line and returns the process exit code.
//
// An error found while cobra parses the command line (an unknown command or flag, a
// bad flag value, an argument too many: before the command runs) is a usage error,
// followed by where the usage is. An error of the running command keeps its own exit
// code and is printed alone: a configuration error says what to fix, and the
// command's --help would not.
func Main(ctx context.Context, args []string, streams Streams) int {
	root, a := newRoot(streams)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return ExitOK
	}
	parsing := a.running == nil
	code, hint := ExitFailure, false
	var ee *exitError
	switch {
	case errors.As(err, &ee):
		code, hint = ee.code, ee.hint || parsing
	case parsing || isFlagCheck(err):
		code, hint = ExitUsage, true
	}
	if msg := strings.TrimRight(err.Error(), "\n"); msg != "" {
		// Under systemd each line is a journal entry of its own: each says it is an error.
		prefix := logging.Prefix(streams.Err, zerolog.ErrorLevel)
		fmt.Fprintf(streams.Err, "%scis490: %s\n", prefix, strings.ReplaceAll(msg, "\n", "\n"+prefix))
		if hint && strings.Contains(msg, "\n") {
			fmt.Fprintln(streams.Err)
		}
	}
	if hint && cmd != nil {
		fmt.Fprintf(streams.Err, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return code
}

// isFlagCheck recognises the errors of cobra's required-flag and flag-group checks,
// which are not typed and come after PersistentPreRun.
func isFlagCheck(err error) bool {
	msg := err.Error()
	for _, p := range []string{"required flag(s) ", "if any flags in the group ", "at least one of the flags in the group "} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

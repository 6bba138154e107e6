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
	// running is the command being executed, set before its RunE.
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
	a := &app{streams: streams, v: config.New()}
	root := &cobra.Command{
		Use:   "cis490",
		Short: "Keep a lab fleet healthy and its episodes flowing to the receiver",
		Long: `cis490 is one binary for every role of the lab fleet: the receiver on the Pi
(serve, fleet-health), the shipper and self-check on each lab host (ship, doctor,
health ship) and the maintainer's tools (alerts, install, token).

Configuration comes from lab-host.toml: --config PATH, else $CIS490_CONFIG, else
/etc/cis490/lab-host.toml, else $XDG_CONFIG_HOME/cis490/lab-host.toml; without a file
the defaults apply. Any key can be set as CIS490_<SECTION>_<KEY>.

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
		newVersionCmd(a),
		newInstallCmd(a),
		newGenCmd(a),
	)
	return root
}

// Main runs the command line and returns the process exit code.
func Main(ctx context.Context, args []string, streams Streams) int {
	root := NewRoot(streams)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return ExitOK
	}
	code := ExitFailure
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
	} else if cmd != nil && isUsage(err) {
		code = ExitUsage
	}
	if msg := err.Error(); msg != "" {
		fmt.Fprintf(streams.Err, "cis490: %s\n", msg)
	}
	if code == ExitUsage && cmd != nil {
		fmt.Fprintf(streams.Err, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return code
}

// isUsage recognises cobra's own argument errors, which are not typed.
func isUsage(err error) bool {
	var ue *exitError
	if errors.As(err, &ue) {
		return ue.code == ExitUsage
	}
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "accepts ", "requires ", "invalid argument", "flag needs"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}

package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/cis490/cis490/internal/config"
	"github.com/cis490/cis490/internal/doctor"
)

type doctorOptions struct {
	streams Streams
	json    bool
	strict  bool
}

func newDoctorCmd(a *app) *cobra.Command {
	opts := &doctorOptions{streams: a.streams}
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check this lab host and say what to fix",
		Long: `Check everything this lab host needs to ship episodes: the configuration, the host
name, the receiver (reachable over TLS, accepting the token, allowing this build's
commit), the client certificate, the clock against the receiver's, the spool folders
and what is queued or rejected in them, free disk space, the cis490 timers, and this
build's version and commit.

The checks run concurrently and all finish within doctor.timeout (10s): a check still
running then is reported failed. Each problem comes with a hint naming the command or
file that fixes it. --json prints the cis490.doctor/v1 document that
'cis490 health ship' sends to the receiver.

Exit codes: 0 no check failed, 1 a check failed (with --strict: or warned),
2 usage or configuration error (the report is still printed, its config check failed).`,
		Example: "  cis490 doctor\n  cis490 doctor --json | jq '.checks[] | select(.status != \"ok\")'",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := a.load()
			return runDoctor(cmd.Context(), opts, cfg, log, err)
		},
	}
	cmd.Flags().BoolVar(&opts.json, "json", false, "print the report as JSON (schema cis490.doctor/v1)")
	cmd.Flags().BoolVar(&opts.strict, "strict", false, "exit 1 on warnings too")
	return cmd
}

// runDoctor prints the report even when the configuration did not load: that is
// when the person at the terminal most needs it.
func runDoctor(ctx context.Context, opts *doctorOptions, cfg config.Config, log zerolog.Logger, loadErr error) error {
	report := doctor.Run(ctx, doctor.Options{Config: cfg, ConfigErr: loadErr, Logger: log})
	write := doctor.WriteHuman
	if opts.json {
		write = doctor.WriteJSON
	}
	if err := write(opts.streams.Out, report); err != nil {
		return err
	}
	if loadErr != nil {
		return loadErr
	}
	worst := doctor.Fail
	if opts.strict {
		worst = doctor.Warn
	}
	if ids := report.Failing(worst); len(ids) > 0 {
		return &exitError{code: ExitFailure, err: fmt.Errorf("doctor: not ok: %s", strings.Join(ids, ", "))}
	}
	return nil
}

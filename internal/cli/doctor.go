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
	// role is --role as given; auto is resolved from the configuration.
	role string
}

func newDoctorCmd(a *app) *cobra.Command {
	opts := &doctorOptions{streams: a.streams}
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check this lab host (or the receiver) and say what to fix",
		Long: `Check everything this lab host needs to ship episodes: the configuration, the host
name, the receiver (reachable over TLS, accepting the token, allowing this build's
commit), the client certificate, the clock against the receiver's, the spool folders
and what is queued or rejected in them, free disk space, the cis490 timers, and this
build's version and commit.

On the receiver (the Pi) it checks the receiver instead: cis490-receiver.service,
its /healthz through serve.listen, the data folder (writable, free space against
serve.min_free_bytes), each gate source's last refresh, the server and client-CA
certificates, the tokens file, when fleet-health check last ran, and the version.
--role picks the checks; auto (the default) takes the receiver's when the
configuration sets keys in [serve] and none in [receiver].

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
			role, roleErr := doctor.PickRole(opts.role, config.Sections(a.v))
			if roleErr != nil {
				return usageErr(roleErr)
			}
			return runDoctor(cmd.Context(), opts, role, cfg, log, err)
		},
	}
	cmd.Flags().BoolVar(&opts.json, "json", false, "print the report as JSON (schema cis490.doctor/v1)")
	cmd.Flags().BoolVar(&opts.strict, "strict", false, "exit 1 on warnings too")
	addRoleFlag(cmd, &opts.role)
	return cmd
}

// addRoleFlag is --role, shared by doctor and health ship.
func addRoleFlag(cmd *cobra.Command, role *string) {
	names := make([]string, len(doctor.Roles))
	for i, r := range doctor.Roles {
		names[i] = string(r)
	}
	cmd.Flags().StringVar(role, "role", string(doctor.RoleAuto),
		"whose checks to run: "+strings.Join(names, ", ")+" (auto: receiver when the configuration sets [serve] keys and no [receiver] keys)")
	_ = cmd.RegisterFlagCompletionFunc("role", cobra.FixedCompletions(names, cobra.ShellCompDirectiveNoFileComp))
}

// runDoctor prints the report even when the configuration did not load: that is
// when the person at the terminal most needs it.
func runDoctor(ctx context.Context, opts *doctorOptions, role doctor.Role, cfg config.Config, log zerolog.Logger, loadErr error) error {
	report := doctor.RunAs(ctx, role, doctor.Options{Config: cfg, ConfigErr: loadErr, Logger: log})
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

package cli

import (
	"errors"
	"fmt"
	"io"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/cis490/cis490/internal/buildinfo"
	"github.com/cis490/cis490/internal/client"
	"github.com/cis490/cis490/internal/logging"
	"github.com/cis490/cis490/internal/protocol"
	"github.com/cis490/cis490/internal/update"
)

type updateOptions struct {
	streams        Streams
	check          bool
	allowDowngrade bool
	to             string
	binary         string
}

func newUpdateCmd(a *app) *cobra.Command {
	opts := &updateOptions{streams: a.streams}
	cmd := &cobra.Command{
		Use:   "update",
		Short: "Update this lab host to the release the receiver names, or roll back",
		Long: `Update cis490 on this lab host to the release the receiver names
(GET /v1/releases/target: the newest published release whose commit its version gate
allows). cis490-autoupdate.timer runs it every 6 hours, and ship starts it at once
when the receiver answers 426.

One run, under a lock in update.state_dir: ask for the target (nothing to do when
this binary is it); verify the release's signed manifest against update.public_keys
(any key may match); refuse a seq lower than the last one applied, unless
--allow-downgrade; take the binary of exactly this host's architecture (GOARCH and
GOARM: an arm64 build is refused on a 32-bit Pi, with the reason); download it beside
this binary, hashing as it arrives and resuming a cut download; check its size and
SHA-256; run its 'version --json', which must name the release's commit; run doctor
with this binary, switch by renaming the new one over it (the previous one is kept in
update.state_dir), and run doctor with the new one. A check that passed before and
fails after rolls back at once, and that release is not tried again until one with a
higher seq is published. The result is recorded in update.state_dir/state.json, which
doctor's update check reports. At every moment the host has one complete, working
binary.

--check says what it would do and changes nothing. --to COMMIT takes that published
release rather than the target. --binary names the file to replace (default: this
binary, normally /usr/bin/cis490).

Exit codes: 0 updated, already up to date, or another update is running; 1 refused,
failed or rolled back; 2 usage or configuration (no update.public_keys).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := a.load()
			if err != nil {
				return err
			}
			if opts.to != "" {
				c, ok := protocol.NormalizeCommit(opts.to)
				if !ok || len(c) != 40 {
					return usageErr(fmt.Errorf("--to %q: give the release's full commit (40 hex digits; cis490 release list shows them)", opts.to))
				}
				opts.to = c
			}
			c, err := client.New(cfg, client.Options{Retries: -1, Logger: log})
			if err != nil {
				return usageErr(err)
			}
			o := update.Options{Config: cfg, Client: c, Logger: log, Binary: opts.binary,
				Check: opts.check, AllowDowngrade: opts.allowDowngrade, To: opts.to}
			if opts.binary == "" {
				o.Running = buildinfo.Get().Commit
			}
			if logging.IsTerminal(opts.streams.Err) {
				o.Progress = func(size int64) io.Writer {
					bar := progressbar.DefaultBytes(size, "downloading")
					progressbar.OptionSetWriter(opts.streams.Err)(bar)
					return bar
				}
			}
			return runUpdate(cmd, opts, o)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&opts.check, "check", false, "only say what would be done")
	f.BoolVar(&opts.allowDowngrade, "allow-downgrade", false, "take a release whose seq is lower than the last applied (or one marked bad)")
	f.StringVar(&opts.to, "to", "", "update to this commit's published release rather than the target")
	f.StringVar(&opts.binary, "binary", "", "the binary to replace (default: this one)")
	return cmd
}

func runUpdate(cmd *cobra.Command, opts *updateOptions, o update.Options) error {
	res, err := update.Run(cmd.Context(), o)
	s := res.State
	switch {
	case errors.Is(err, update.ErrLocked):
		_, err := fmt.Fprintln(opts.streams.Out, "another cis490 update is running; nothing done")
		return err
	case errors.Is(err, update.ErrNoKeys):
		return usageErr(err)
	case o.Check && res.Plan != "":
		fmt.Fprintln(opts.streams.Out, res.Plan)
		return err
	case err != nil:
		return err
	case s.Result == update.ResultUpToDate:
		_, err = fmt.Fprintf(opts.streams.Out, "up to date: commit %s is the target (seq %d)\n", s.CommitAfter, s.TargetSeq)
	default:
		_, err = fmt.Fprintf(opts.streams.Out, "updated %s from %s to %s (seq %d)\n", s.Binary, s.CommitBefore, s.CommitAfter, s.TargetSeq)
	}
	return err
}

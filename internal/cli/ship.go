package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/rs/zerolog"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/cis490/cis490/internal/client"
	"github.com/cis490/cis490/internal/logging"
	"github.com/cis490/cis490/internal/ship"
	"github.com/cis490/cis490/internal/spool"
)

type shipOptions struct {
	streams  Streams
	watch    bool
	noResume bool
}

func newShipCmd(a *app) *cobra.Command {
	opts := &shipOptions{streams: a.streams}
	cmd := &cobra.Command{
		Use:   "ship",
		Short: "Send the spool's finished episodes to the receiver",
		Long: `Send every finished tarball in <spool_dir>/outbox/ to the receiver, oldest first,
each with its SHA-256, and move it to sent/ once the receiver has it. Files whose
name starts with '.' or ends in '.part' are still being written and are left alone.

Each run takes the spool lock (a second concurrent run exits 0 at once), sweeps
(in-progress files older than 1 h are removed, tarballs older than ship.max_age move
to rejected/ with a .reason file, sent/ is pruned after ship.keep_sent), sends one
heartbeat, then ships. A refused commit (426), a missing stamp (428) or a refused
token or host (401, 403) stops the run at once: every later request would fail the
same way. 413 and 422 move the file to rejected/ with the reason; network errors and
5xx keep it for the next run.

A cut upload resumes: after a network error or a 5xx partway through a file, ship asks
the receiver how much of it arrived (HEAD /v1/episodes/SHA256) and sends only the
rest, with the usual backoff; the progress bar counts what the receiver kept as done
and the log says "resumed at N of M bytes". A receiver that kept nothing gets the
file again whole; one too old to resume gets a plain retry. Retries that move an
upload forward do not use up ship.retries. A connection whose bytes stay
unacknowledged for receiver.timeout is given up and resumed. A file written to
while it is sent is not resumed: it stays for the next run, hashed again.
--no-resume sends a cut upload whole again instead.

--watch keeps running: it ships new files as they appear and heartbeats every 5 min.

Exit codes: 0 the outbox is empty afterwards (or another run holds the lock),
1 files remain or the receiver refused this host, 2 usage or configuration error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := a.load()
			if err != nil {
				return err
			}
			c, err := client.New(cfg, client.Options{Retries: -1, Logger: log})
			if err != nil {
				return usageErr(err)
			}
			so := ship.Options{SpoolDir: cfg.Ship.SpoolDir, MaxAge: cfg.Ship.MaxAge, KeepSent: cfg.Ship.KeepSent, Client: c, Logger: log,
				NoResume: opts.noResume}
			if !opts.watch && logging.IsTerminal(opts.streams.Err) {
				so.Progress = &bar{out: opts.streams.Err}
			}
			return runShip(cmd, opts, so, log)
		},
	}
	cmd.Flags().BoolVar(&opts.watch, "watch", false, "keep running: ship files as they appear, heartbeat every 5 min")
	cmd.Flags().BoolVar(&opts.noResume, "no-resume", false, "send a cut upload whole again instead of resuming it where the receiver's copy ends")
	cmd.Flags().String("spool-dir", "", "spool folder (ship.spool_dir)")
	a.bind(cmd, "spool-dir", "ship.spool_dir")
	return cmd
}

func runShip(cmd *cobra.Command, opts *shipOptions, so ship.Options, log zerolog.Logger) error {
	ctx := cmd.Context()
	if opts.watch {
		err := ship.Watch(ctx, so, ship.HeartbeatEvery, func(sum ship.Summary, err error) {
			ev := log.Info()
			if err != nil {
				ev = log.Error().Err(err)
			}
			ev.Interface("summary", sum).Msg(sum.String())
			autoupdateOn426(ctx, err, log)
		})
		if errors.Is(err, ship.ErrLocked) {
			return fmt.Errorf("%w: stop it first (systemctl stop cis490-ship.timer) to run --watch", err)
		}
		return err
	}
	sum, err := ship.Once(ctx, so)
	if errors.Is(err, ship.ErrLocked) {
		log.Info().Msg("another cis490 ship run holds the spool lock; it will ship everything, nothing to do here")
		return nil
	}
	// A spool that is missing or read-only stops the run before anything is looked at:
	// a summary of zeros would read as "nothing to do".
	var problem *spool.Problem
	if errors.As(err, &problem) {
		return err
	}
	fmt.Fprintln(opts.streams.Out, sum.String())
	var stop *ship.StopError
	switch {
	case errors.As(err, &stop):
		autoupdateOn426(ctx, err, log)
		return fmt.Errorf("the receiver refused this host, stopping: %w", stop.APIError)
	case err != nil:
		return err
	case sum.Remaining > 0:
		return fmt.Errorf("%d file(s) remain in the outbox: see the log above; they are retried next run", sum.Remaining)
	}
	return nil
}

// autoupdateOn426 starts the autoupdate when the gate refused this build (SPEC §4.2):
// the fleet heals itself instead of waiting for the next autoupdate timer.
func autoupdateOn426(ctx context.Context, err error, log zerolog.Logger) {
	var stop *ship.StopError
	if !errors.As(err, &stop) || stop.Status != http.StatusUpgradeRequired {
		return
	}
	msg, err := ship.StartAutoupdate(ctx)
	if err != nil {
		log.Error().Err(err).Msg("the gate refused this build and the autoupdate could not be started")
		return
	}
	log.Warn().Str("commit", stop.Commit).Msg("the gate refused this build: " + msg)
}

// bar is a terminal progress bar over the bytes of a run.
type bar struct {
	out io.Writer
	pb  *progressbar.ProgressBar
}

func (b *bar) Start(files int, bytes int64) {
	b.pb = progressbar.DefaultBytes(bytes, fmt.Sprintf("shipping %d file(s)", files))
	progressbar.OptionSetWriter(b.out)(b.pb)
}

func (b *bar) Set(done int64) { _ = b.pb.Set64(done) }

func (b *bar) Finish() { _ = b.pb.Finish() }

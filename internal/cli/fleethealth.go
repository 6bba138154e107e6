package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/cis490/cis490/internal/alerts"
	"github.com/cis490/cis490/internal/config"
	"github.com/cis490/cis490/internal/fleethealth"
)

func newFleetHealthCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "fleet-health",
		Short: "Watch the fleet from the receiver: who is silent, refused, unstamped or sick",
	}
	cmd.AddCommand(newFleetCheckCmd(a))
	return cmd
}

type fleetCheckOptions struct {
	streams Streams
	now     string
	record  bool
	dryRun  bool
	json    bool
	// clock is the wall clock --now is judged against; nil is time.Now.
	clock func() time.Time
	// gather learns the facts of the receiver beside the check, for the Pi's own row;
	// nil is fleethealth.GatherReceiverFacts.
	gather func(context.Context, config.Config) *fleethealth.ReceiverFacts
}

// nowTolerance is how far --now may be from the clock and still write and notify: a
// check run by hand a little late is a real one; one an hour ahead is a simulation,
// and its lines would be dated before or after the real runs' (SPEC §5.1).
const nowTolerance = 5 * time.Minute

func newFleetCheckCmd(a *app) *cobra.Command {
	opts := &fleetCheckOptions{streams: a.streams}
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Evaluate every host once and notify what changed (cis490-fleet-health.timer)",
		Long: `Read the receiver's request index over the active window and each host's latest
doctor report, and find per host:

  silent          nothing within silent_after (a roster host that never sent a
                  request: silent_after after its token was created)       critical
  fatal-only      fatal_min_requests refusals (4xx) in a row since its last success,
                  the latest within fatal_window                           critical
  tls-refused     TLS handshakes refused for a certificate naming it, since its
                  last request that got through                            critical
  unstamped       its latest upload or heartbeat, within fatal_window, had no commit
                  stamp                                                    warning
  report-failing  its latest doctor report fails                           critical
  report-warning  its latest doctor report warns                           warning
  report-stale    no doctor report for report_stale_after                  warning

and on the receiver's own row (its host name), as this check finds it:

  disk-low        free space of serve.data_dir under twice min_free_bytes, or a
                  507 within fatal_window                                  critical
  gate-stale      a gate source failing to refresh for gate_stale_after    warning
  receiver-down   the receiver does not answer /healthz on serve.listen    critical

The hosts tracked are the roster: with serve.tokens_file, every host with a host token,
whether it sent a request or not (a host quiet for longer than active_window stays
silent, repeated every gone_repeat_interval, until it speaks or its token is revoked:
then its alerts are retired); without one, the hosts seen in the active window (a host
quiet for longer than that has its alerts expired).

A symptom fires once its threshold has passed, repeats every repeat_interval while it
lasts (never twice in one UTC hour), and is resolved once when it clears. One that
comes back within repeat_interval of its resolution is flapping, and waits for that
interval. A symptom a silence matches (cis490 alerts silence) is shown but not
notified; it fires at once when the silence ends. Each notification is a line in
alerts.jsonl, a syslog message (identifier cis490-fleet-health), and optionally a push
to Alertmanager and a webhook, each with its severity. The alert state is kept in
<data_dir>/fleet-health.json; concurrent checks wait for each other.

--now evaluates as of another time (RFC 3339, or relative: +1h, -30m). One more than
5 minutes from the clock is a simulation: it writes and notifies nothing unless
--record is given too.

Prints the fleet table as cis490 fleet does (see its help), then what was notified;
or --json.

Exit codes: 0 the check ran (whatever it found), 1 it could not run (index, state or
alerts file unreadable or unwritable), 2 usage or configuration error.`,
		Example: "  cis490 fleet-health check\n  cis490 fleet-health check --now +2h --json | jq .hosts\n" +
			"  cis490 fleet-health check --now 2026-11-28T18:00:00Z --record",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := a.load()
			if err != nil {
				return err
			}
			return runFleetCheck(cmd.Context(), opts, cfg, log)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.now, "now", "", "evaluate as of this time instead of the clock's: RFC 3339, or relative (+1h, -30m)")
	f.BoolVar(&opts.record, "record", false, "with a --now more than 5m from the clock, write and notify all the same")
	f.BoolVar(&opts.dryRun, "dry-run", false, "say what would be notified; write and send nothing")
	f.BoolVar(&opts.json, "json", false, "print the result as JSON")
	f.String("data-dir", "", "the receiver's data folder (serve.data_dir)")
	a.bind(cmd, "data-dir", "serve.data_dir")
	return cmd
}

func runFleetCheck(ctx context.Context, opts *fleetCheckOptions, cfg config.Config, log zerolog.Logger) error {
	now, dry, err := opts.evaluationTime()
	if err != nil {
		return usageErr(err)
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(fleethealth.BatchGCPercent)
	}
	var notifier *fleethealth.Notifier
	if !dry {
		notifier = fleethealth.NewNotifier(cfg.FleetHealth, log)
	}
	gather := opts.gather
	if gather == nil {
		gather = fleethealth.GatherReceiverFacts
	}
	res, err := fleethealth.Check(ctx, fleethealth.Options{
		Config: cfg.FleetHealth, DataDir: cfg.Serve.DataDir, AlertsPath: cfg.AlertsPath(), TokensFile: cfg.Serve.TokensFile,
		Receiver: gather(ctx, cfg), Now: now, DryRun: dry, Logger: log, Notifier: notifier,
	})
	if errors.Is(err, fleethealth.ErrNoIndex) {
		return usageErr(fmt.Errorf("fleet-health check: %w", err))
	}
	if err != nil {
		return fmt.Errorf("fleet-health check: %w", err)
	}
	if opts.json {
		return json.NewEncoder(opts.streams.Out).Encode(res)
	}
	return writeCheck(opts.streams.Out, res, cfg)
}

// evaluationTime reads --now (zero: the clock's) and says whether the run must be dry:
// --dry-run, or a --now too far from the clock without --record, which it says on
// standard error.
func (o *fleetCheckOptions) evaluationTime() (time.Time, bool, error) {
	if o.now == "" {
		return time.Time{}, o.dryRun, nil
	}
	wall := time.Now()
	if o.clock != nil {
		wall = o.clock()
	}
	now, err := alerts.ParseTime(o.now, wall)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("--now %w", err)
	}
	off := now.Sub(wall).Abs()
	if o.dryRun || o.record || off <= nowTolerance {
		return now, o.dryRun, nil
	}
	dir := "ahead of"
	if now.Before(wall) {
		dir = "behind"
	}
	fmt.Fprintf(o.streams.Err, "fleet-health check: --now is %s %s the clock: a simulation, so nothing is written or notified; add --record to write and notify as of %s\n",
		off.Round(time.Second), dir, now.UTC().Format(time.RFC3339))
	return now, true, nil
}

// writeCheck prints the fleet table (fleet.go), then what the check notified.
func writeCheck(out io.Writer, res *fleethealth.Result, cfg config.Config) error {
	if err := writeFleet(out, res.Fleet(), "index in "+filepath.Join(cfg.Serve.DataDir, "index")); err != nil {
		return err
	}
	if len(res.Notifications) == 0 {
		return nil
	}
	verb := "notified"
	if res.DryRun {
		verb = "would notify (dry run)"
	}
	fmt.Fprintf(out, "\n%s:\n", verb)
	for _, n := range res.Notifications {
		fmt.Fprintf(out, "  %-8s %s/%s: %s\n", n.Status, n.Host, n.Symptom, n.Summary)
	}
	return nil
}

func andMore(n int) string {
	if n <= 0 {
		return ""
	}
	return fmt.Sprintf(" and %d more", n)
}

func shortTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04Z") }

// ago prints an age the way the table reads best: 45s, 12m, 3h05m, 2d4h.
func ago(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
}

package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

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
	dryRun  bool
	json    bool
}

func newFleetCheckCmd(a *app) *cobra.Command {
	opts := &fleetCheckOptions{streams: a.streams}
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Evaluate every host once and notify what changed (cis490-fleet-health.timer)",
		Long: `Read the receiver's request index over the active window and each host's latest
doctor report, and find per host:

  silent          requests within fleet_health.active_window, none within silent_after
  fatal-only      fatal_min_requests refusals (4xx) in a row since its last success,
                  the latest within fatal_window
  unstamped       its latest upload or heartbeat, within fatal_window, had no commit stamp
  report-failing  its latest doctor report fails
  report-stale    no doctor report for report_stale_after

A symptom fires once its threshold has passed, repeats every repeat_interval while it
lasts (never twice in one UTC hour), and is resolved once when it clears; a host quiet
for longer than the active window has its alerts expired. Each notification is a line
in alerts.jsonl, a syslog message (identifier cis490-fleet-health), and optionally a
push to Alertmanager and a webhook. The alert state is kept in
<data_dir>/fleet-health.json; concurrent checks wait for each other.

Prints one line per host (or --json) on standard output.

Exit codes: 0 the check ran (whatever it found), 1 it could not run (index, state or
alerts file unreadable or unwritable), 2 usage or configuration error.`,
		Example: "  cis490 fleet-health check\n  cis490 fleet-health check --dry-run --now 2026-11-28T18:00:00Z --json | jq .hosts",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := a.load()
			if err != nil {
				return err
			}
			return runFleetCheck(cmd.Context(), opts, cfg, log)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.now, "now", "", "evaluate as of this RFC 3339 time instead of the clock's")
	f.BoolVar(&opts.dryRun, "dry-run", false, "say what would be notified; write and send nothing")
	f.BoolVar(&opts.json, "json", false, "print the result as JSON")
	f.String("data-dir", "", "the receiver's data folder (serve.data_dir)")
	a.bind(cmd, "data-dir", "serve.data_dir")
	return cmd
}

func runFleetCheck(ctx context.Context, opts *fleetCheckOptions, cfg config.Config, log zerolog.Logger) error {
	var now time.Time
	if opts.now != "" {
		var err error
		if now, err = time.Parse(time.RFC3339Nano, opts.now); err != nil {
			return usageErr(fmt.Errorf("--now %q: want an RFC 3339 time such as 2026-11-28T18:00:00Z", opts.now))
		}
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(fleethealth.BatchGCPercent)
	}
	var notifier *fleethealth.Notifier
	if !opts.dryRun {
		notifier = fleethealth.NewNotifier(cfg.FleetHealth, log)
	}
	res, err := fleethealth.Check(ctx, fleethealth.Options{
		Config: cfg.FleetHealth, DataDir: cfg.Serve.DataDir, AlertsPath: cfg.AlertsPath(),
		Now: now, DryRun: opts.dryRun, Logger: log, Notifier: notifier,
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
	return writeFleetTable(opts.streams.Out, res, cfg)
}

func writeFleetTable(out io.Writer, res *fleethealth.Result, cfg config.Config) error {
	if err := writeHostsTable(out, res, cfg); err != nil {
		return err
	}
	if res.UnprovenCount > 0 {
		more := ""
		if n := res.UnprovenCount - len(res.Unproven); n > 0 {
			more = fmt.Sprintf(" and %d more", n)
		}
		_, err := fmt.Fprintf(out, "not tracked: %s%s sent only requests refused without a valid token or certificate (a new host with a bad token? `cis490 doctor` on it says)\n",
			strings.Join(res.Unproven, ", "), more)
		return err
	}
	return nil
}

func writeHostsTable(out io.Writer, res *fleethealth.Result, cfg config.Config) error {
	if len(res.Hosts) == 0 {
		_, err := fmt.Fprintf(out, "no host sent a request in the %s before %s (index in %s/index)\n",
			cfg.FleetHealth.ActiveWindow, shortTime(res.Now), cfg.Serve.DataDir)
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tLAST SEEN\tSTATUS\tSYMPTOMS")
	for _, h := range res.Hosts {
		seen := "-"
		if !h.LastSeen.IsZero() {
			seen = fmt.Sprintf("%s ago (%s %d)", ago(res.Now.Sub(h.LastSeen)), h.LastRoute, h.LastStatus)
		}
		var syms []string
		for _, s := range h.Symptoms {
			syms = append(syms, s.Symptom+" since "+shortTime(s.Since))
		}
		if len(syms) == 0 {
			syms = []string{"-"}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", h.Host, seen, h.Status, strings.Join(syms, ", "))
	}
	if err := tw.Flush(); err != nil {
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

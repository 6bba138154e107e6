package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/cis490/cis490/internal/alerts"
	"github.com/cis490/cis490/internal/config"
	"github.com/cis490/cis490/internal/fleethealth"
	"github.com/cis490/cis490/internal/logging"
)

func newAlertsCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "alerts",
		Short: "Read fleet health's alerts",
	}
	cmd.AddCommand(newAlertsTailCmd(a))
	cmd.AddCommand(newSilenceCmds(a)...)
	return cmd
}

type alertsTailOptions struct {
	streams Streams
	n       int
	follow  bool
	since   string
	filter  alerts.Filter
	json    bool
	color   string
	remote  bool
	// poll is how often a local follow looks at the file when inotify is silent.
	poll time.Duration
	// isTerminal and getenv are the process's, replaced in tests.
	isTerminal func(io.Writer) bool
	getenv     func(string) string
}

func newAlertsTailCmd(a *app) *cobra.Command {
	opts := &alertsTailOptions{streams: a.streams, isTerminal: logging.IsTerminal, getenv: os.Getenv}
	cmd := &cobra.Command{
		Use:   "tail",
		Short: "Print the last alerts, and follow new ones with -f",
		Long: `Print the last alerts from fleet health's alerts.jsonl (fleet_health.alerts_file,
default <data_dir>/alerts.jsonl) on the receiver, or with --remote from the receiver's
GET /v1/alerts through the same transport as ship ([receiver] url, ca_file, cert_file,
token_file: an admin token).

-f keeps printing new alerts as they are written. Locally it survives logrotate,
whether it renames the file (the old one is finished first) or truncates it; with
--remote it reconnects when the receiver restarts, without losing or repeating a line.

Colour marks the status on a terminal; never with NO_COLOR set or --color never.
--json prints the lines as they are, for jq.

Exit codes: 0 success (no alerts yet included), 1 the alerts could not be read,
2 usage or configuration error.`,
		Example: "  cis490 alerts tail -f\n  cis490 alerts tail --since 2h --status firing\n" +
			"  cis490 alerts tail --remote --host lab-07 --json | jq .evidence",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := a.load()
			if err != nil {
				return err
			}
			return runAlertsTail(cmd.Context(), opts, cfg, log)
		},
	}
	f := cmd.Flags()
	f.IntVarP(&opts.n, "lines", "n", 10, "how many of the last alerts to print first")
	f.BoolVarP(&opts.follow, "follow", "f", false, "keep printing new alerts as they come")
	f.StringVar(&opts.since, "since", "", "only alerts from then on: an RFC 3339 time or a duration back (2h, 3d)")
	f.StringVar(&opts.filter.Host, "host", "", "only this host's alerts")
	f.StringVar(&opts.filter.Symptom, "symptom", "", "only this symptom: "+strings.Join(fleethealth.Symptoms, ", "))
	f.StringVar(&opts.filter.Status, "status", "", "only this status: "+strings.Join(alerts.Statuses, ", "))
	f.BoolVar(&opts.json, "json", false, "print the JSON lines as they are")
	f.StringVar(&opts.color, "color", "auto", "colour: auto (on a terminal), always or never; NO_COLOR turns it off")
	f.BoolVar(&opts.remote, "remote", false, "read the receiver's GET /v1/alerts instead of the local file")
	f.String("file", "", "the alerts file to read (fleet_health.alerts_file)")
	a.bind(cmd, "file", "fleet_health.alerts_file")
	return cmd
}

func runAlertsTail(ctx context.Context, opts *alertsTailOptions, cfg config.Config, log zerolog.Logger) error {
	if err := opts.check(); err != nil {
		return usageErr(err)
	}
	since, err := alerts.ParseSince(opts.since, time.Now())
	if err != nil {
		return usageErr(fmt.Errorf("--%w", err))
	}
	opts.filter.Since = since
	p := &alertPrinter{out: opts.streams.Out, json: opts.json, color: opts.useColor()}
	if opts.remote {
		return tailRemote(ctx, opts, cfg, log, p)
	}
	return tailLocal(ctx, opts, cfg.AlertsPath(), p)
}

func (o *alertsTailOptions) check() error {
	if o.n < 0 {
		return fmt.Errorf("-n %d: the number of lines cannot be negative", o.n)
	}
	if !slices.Contains([]string{"auto", "always", "never"}, o.color) {
		return fmt.Errorf("--color %q: use auto, always or never", o.color)
	}
	if s := strings.ToLower(o.filter.Symptom); s != "" && !slices.Contains(fleethealth.Symptoms, s) {
		return fmt.Errorf("--symptom %q: use one of %s", o.filter.Symptom, strings.Join(fleethealth.Symptoms, ", "))
	}
	if s := strings.ToLower(o.filter.Status); s != "" && !slices.Contains(alerts.Statuses, s) {
		return fmt.Errorf("--status %q: use one of %s", o.filter.Status, strings.Join(alerts.Statuses, ", "))
	}
	return nil
}

// useColor: NO_COLOR (https://no-color.org) wins over everything, then --color.
func (o *alertsTailOptions) useColor() bool {
	if o.getenv("NO_COLOR") != "" || o.color == "never" {
		return false
	}
	return o.color == "always" || o.isTerminal(o.streams.Out)
}

func tailLocal(ctx context.Context, opts *alertsTailOptions, path string, p *alertPrinter) error {
	r := alerts.NewReader(path)
	defer r.Close()
	lines, err := alerts.Collect(r, opts.n, opts.filter)
	if err != nil {
		return err
	}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(opts.streams.Err, "no alerts yet: %s does not exist (fleet_health.alerts_file)\n", path)
	}
	for _, l := range lines {
		if err := p.print(l); err != nil {
			return err
		}
	}
	if !opts.follow {
		return nil
	}
	err = alerts.NewFollower(r, opts.poll).Follow(ctx, func(raw []byte) error {
		a, ok := alerts.Parse(raw)
		if !ok || !opts.filter.Match(a) {
			return nil
		}
		return p.print(alerts.Line{Raw: raw, Alert: a})
	})
	if ctx.Err() != nil { // interrupted: the normal end of -f
		return nil
	}
	return err
}

// alertPrinter prints alerts raw (--json) or as one readable line each.
type alertPrinter struct {
	out   io.Writer
	json  bool
	color bool
}

var statusColor = map[string]string{
	alerts.StatusFiring:   "\x1b[1;31m", // bold red
	alerts.StatusResolved: "\x1b[32m",   // green
	alerts.StatusExpired:  "\x1b[33m",   // yellow
}

func (p *alertPrinter) print(l alerts.Line) error {
	if p.json {
		_, err := p.out.Write(append(l.Raw, '\n'))
		return err
	}
	a := l.Alert
	status := fmt.Sprintf("%-8s", a.Status)
	if c, ok := statusColor[a.Status]; ok && p.color {
		status = c + status + "\x1b[0m"
	}
	_, err := fmt.Fprintf(p.out, "%s  %s  %s/%s  %s (since %s)\n",
		a.TS.UTC().Format(time.RFC3339), status, a.Host, a.Symptom, a.Summary, shortTime(a.Since))
	return err
}

package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/cis490/cis490/internal/client"
	"github.com/cis490/cis490/internal/config"
	"github.com/cis490/cis490/internal/fleethealth"
	"github.com/cis490/cis490/internal/logging"
)

type fleetOptions struct {
	streams  Streams
	remote   bool
	json     bool
	watch    bool
	interval time.Duration
	// isTerminal tells whether --watch redraws the screen or appends tables.
	isTerminal func(io.Writer) bool
	// gather learns the facts of the receiver beside us, for the Pi's own row; nil is
	// fleethealth.GatherReceiverFacts.
	gather func(context.Context, config.Config) *fleethealth.ReceiverFacts
	// ticks paces --watch; nil is a time.Ticker of the interval.
	ticks func(time.Duration) (<-chan time.Time, func())
	// now is the evaluation time of a local read (tests); nil is the clock's.
	now func() time.Time
}

// minInterval keeps --watch from evaluating the fleet back to back: one evaluation
// takes a good part of a second on a Pi.
const minInterval = time.Second

func newFleetCmd(a *app) *cobra.Command {
	opts := &fleetOptions{streams: a.streams, isTerminal: logging.IsTerminal}
	cmd := &cobra.Command{
		Use:   "fleet",
		Short: "Show the fleet, one row a host, worst first: is it working?",
		Long: `Show every host fleet health tracks, one row each, worst first: alerting hosts
with a critical symptom, then those with warnings only, then silenced ones, then
inactive ones (a roster host that never spoke yet, or one gone with alerts still
open), then the hosts that are fine; ties by host name. A row says:

  LAST SEEN     the host's latest request that got through, and its answer
  STATUS        ok, alerting, silenced or inactive
  SYMPTOM       its worst symptom and since when (+N more; silenced until when)
  LAST EPISODE  the latest episode the receiver accepted from it
  COMMIT        the commit it runs, and whether the gate allows it
  DOCTOR        its latest doctor report's status, and how old the report is
  CERT          days until the certificate that report looked at expires
  ALERTS        alerts the last fleet-health check left open

and a summary line follows: "42 hosts: 39 ok, 2 alerting, 1 silenced" (with the
inactive ones, and the names and addresses not tracked, when there are any).

On the receiver it reads the data folder (serve.data_dir) as fleet-health check does,
and the running receiver's /healthz for its own row, but writes nothing and notifies
nobody; whether a commit is allowed is then the gate's latest answer to that host.
With --remote it asks the receiver's GET /v1/fleet through the [receiver] transport
with an admin token (as alerts tail --remote does): the same rows, with the live
gate's answer, and at most a few seconds old (the receiver reuses an evaluation for
5 seconds).

--json prints the document GET /v1/fleet answers. --watch shows it again every
--interval until interrupted: on a terminal it redraws the screen; otherwise each
table (or JSON document, one a line) follows the last, tables a blank line apart. A
fleet that cannot be read while watching is said on standard error and tried again at
the next interval (the first read must succeed).

Exit codes: 0 the fleet was shown, whatever its state (script on --json: jq
'.summary.alerting'), 1 it could not be read (data folder, receiver unreachable or
refusing the token), 2 usage or configuration error (no request index in the data
folder: not the receiver's).`,
		Example: "  cis490 fleet\n  cis490 fleet --remote --watch\n  cis490 fleet --remote --json | jq '.hosts[] | select(.status != \"ok\")'",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := a.load()
			if err != nil {
				return err
			}
			return runFleet(cmd.Context(), opts, cfg, log, cmd.Flags().Changed("interval"))
		},
	}
	f := cmd.Flags()
	f.BoolVar(&opts.remote, "remote", false, "ask the receiver's GET /v1/fleet instead of reading the local data folder")
	f.BoolVar(&opts.json, "json", false, "print the fleet as JSON (GET /v1/fleet's document)")
	f.BoolVarP(&opts.watch, "watch", "w", false, "show the fleet again every --interval until interrupted")
	f.DurationVar(&opts.interval, "interval", 10*time.Second, "with --watch, how often to show the fleet")
	addDataDirFlag(a, cmd)
	return cmd
}

func runFleet(ctx context.Context, opts *fleetOptions, cfg config.Config, log zerolog.Logger, intervalSet bool) error {
	switch {
	case intervalSet && !opts.watch:
		return usageErr(errors.New("--interval goes with --watch"))
	case opts.watch && opts.interval < minInterval:
		return usageErr(fmt.Errorf("--interval %s: at least %s", opts.interval, minInterval))
	}
	read := func(ctx context.Context) (fleethealth.Fleet, error) { return localFleet(ctx, opts, cfg, log) }
	where := cfg.Serve.DataDir
	if opts.remote {
		retries := -1 // the configuration's
		if opts.watch {
			retries = 0 // the next interval is the retry
		}
		c, err := client.New(cfg, client.Options{Retries: retries, Logger: log})
		if err != nil {
			return err
		}
		read = func(ctx context.Context) (fleethealth.Fleet, error) { return remoteFleet(ctx, c) }
		where = c.URL()
	}
	show := func(v fleethealth.Fleet) error {
		if opts.json {
			return json.NewEncoder(opts.streams.Out).Encode(v)
		}
		return writeFleet(opts.streams.Out, v, where)
	}
	v, err := read(ctx)
	if err != nil || !opts.watch {
		if err == nil {
			err = show(v)
		}
		return err
	}
	return watchFleet(ctx, opts, v, read, show)
}

// watchFleet shows v, then the fleet again at every tick until ctx ends (Ctrl-C).
func watchFleet(ctx context.Context, opts *fleetOptions, v fleethealth.Fleet,
	read func(context.Context) (fleethealth.Fleet, error), show func(fleethealth.Fleet) error) error {
	redraw := !opts.json && opts.isTerminal(opts.streams.Out)
	ticks := opts.ticks
	if ticks == nil {
		ticks = func(d time.Duration) (<-chan time.Time, func()) {
			t := time.NewTicker(d)
			return t.C, t.Stop
		}
	}
	tick, stop := ticks(opts.interval)
	defer stop()
	for first := true; ; first = false {
		switch {
		case redraw:
			fmt.Fprint(opts.streams.Out, "\x1b[H\x1b[2J") // home, clear the screen
		case !first && !opts.json:
			fmt.Fprintln(opts.streams.Out)
		}
		if err := show(v); err != nil {
			return err
		}
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-tick:
			}
			var err error
			v, err = read(ctx)
			if ctx.Err() != nil { // interrupted while reading: nothing more to show
				return nil
			}
			if err == nil {
				break
			}
			fmt.Fprintf(opts.streams.Err, "%s cis490 fleet: %v; trying again in %s\n", time.Now().UTC().Format(time.RFC3339), err, opts.interval)
		}
	}
}

// localFleet evaluates the fleet from the data folder as GET /v1/fleet does, without
// writing anything: Snapshot takes no lock and saves no state.
func localFleet(ctx context.Context, opts *fleetOptions, cfg config.Config, log zerolog.Logger) (fleethealth.Fleet, error) {
	gather := opts.gather
	if gather == nil {
		gather = fleethealth.GatherReceiverFacts
	}
	var now time.Time
	if opts.now != nil {
		now = opts.now()
	}
	res, err := fleethealth.Snapshot(fleethealth.Options{
		Config: cfg.FleetHealth, DataDir: cfg.Serve.DataDir, TokensFile: cfg.Serve.TokensFile,
		Receiver: gather(ctx, cfg), Now: now, Logger: log,
	})
	if errors.Is(err, fleethealth.ErrNoIndex) {
		return fleethealth.Fleet{}, usageErr(fmt.Errorf("fleet: %w; or ask the receiver from elsewhere with --remote", err))
	}
	if err != nil {
		return fleethealth.Fleet{}, fmt.Errorf("fleet: %w", err)
	}
	return res.Fleet(), nil
}

// remoteFleet asks GET /v1/fleet through the one transport.
func remoteFleet(ctx context.Context, c *client.Client) (fleethealth.Fleet, error) {
	var v fleethealth.Fleet
	res, err := c.Do(ctx, client.Request{Method: http.MethodGet, Path: "/v1/fleet"})
	if err != nil {
		return v, err
	}
	if res.StatusCode != http.StatusOK {
		return v, c.StatusError(res)
	}
	defer res.Body.Close()
	if err := json.NewDecoder(io.LimitReader(res.Body, 64<<20)).Decode(&v); err != nil {
		return v, fmt.Errorf("%s/v1/fleet answered 200 with a body that is not the fleet (%v): is it a cis490 receiver of this version?", c.URL(), err)
	}
	return v, nil
}

// writeFleet prints the fleet's rows, the summary line, and what is not tracked.
// where names the data folder or receiver the fleet was read from.
func writeFleet(out io.Writer, v fleethealth.Fleet, where string) error {
	if len(v.Hosts) == 0 {
		fmt.Fprintf(out, "no host to show: no host sent a request in the %s before %s, and none has a host token (%s)\n",
			ago(v.GeneratedAt.Sub(v.WindowFrom)), shortTime(v.GeneratedAt), where)
	} else {
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "HOST\tLAST SEEN\tSTATUS\tSYMPTOM\tLAST EPISODE\tCOMMIT\tDOCTOR\tCERT\tALERTS")
		for _, h := range v.Hosts {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", h.Host, lastSeenCell(h, v.GeneratedAt), h.Status,
				symptomCell(h), agoCell(h.LastEpisode, v.GeneratedAt), commitCell(h), doctorCell(h, v.GeneratedAt),
				certCell(h), alertsCell(h))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if _, err := fmt.Fprintln(out, v.Summary.String()); err != nil {
		return err
	}
	if v.StateError != "" {
		fmt.Fprintf(out, "ALERTS are unknown: %s\n", v.StateError)
	}
	if v.UnprovenCount > 0 {
		fmt.Fprintf(out, "not tracked: %s%s sent only requests or handshakes refused without a valid token or certificate, or have no host token (a new host with a bad token? `cis490 doctor` on it says)\n",
			strings.Join(v.Unproven, ", "), andMore(v.UnprovenCount-len(v.Unproven)))
	}
	if v.RefusedHandshakesCount > 0 {
		var from []string
		for _, h := range v.RefusedHandshakes {
			from = append(from, fmt.Sprintf("%s (%s ×%d, last %s)", h.Remote, h.Reason, h.Count, shortTime(h.Last)))
		}
		_, err := fmt.Fprintf(out, "refused TLS handshakes naming no host: %s%s\n",
			strings.Join(from, ", "), andMore(v.RefusedHandshakesCount-len(v.RefusedHandshakes)))
		return err
	}
	return nil
}

func lastSeenCell(h fleethealth.Row, now time.Time) string {
	if h.LastSeen.IsZero() {
		return "-"
	}
	if h.LastRoute == "" { // beyond the window: only the state remembers when
		return ago(now.Sub(h.LastSeen)) + " ago"
	}
	return fmt.Sprintf("%s ago (%s %d)", ago(now.Sub(h.LastSeen)), h.LastRoute, h.LastStatus)
}

func symptomCell(h fleethealth.Row) string {
	if h.WorstSymptom == "" {
		return "-"
	}
	cell := h.WorstSymptom + " since " + shortTime(h.WorstSince)
	if n := len(h.Symptoms) - 1; n > 0 {
		cell += fmt.Sprintf(" (+%d more)", n)
	}
	if h.Silence != nil {
		cell += " (silenced until " + shortTime(h.Silence.Until) + ")"
	}
	return cell
}

func agoCell(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return ago(now.Sub(t)) + " ago"
}

func commitCell(h fleethealth.Row) string {
	if h.Commit == "" {
		return "-"
	}
	c := h.Commit[:min(len(h.Commit), 7)]
	switch {
	case h.CommitAllowed == nil:
		return c
	case *h.CommitAllowed:
		return c + " allowed"
	}
	return c + " refused"
}

func doctorCell(h fleethealth.Row, now time.Time) string {
	if h.Report == nil {
		return "-"
	}
	return h.Report.Status + " " + ago(now.Sub(h.Report.ReceivedAt))
}

func certCell(h fleethealth.Row) string {
	switch {
	case h.CertDaysLeft == nil:
		return "-"
	case *h.CertDaysLeft < 0:
		return "expired"
	}
	return strconv.Itoa(*h.CertDaysLeft) + "d"
}

func alertsCell(h fleethealth.Row) string {
	if len(h.OpenAlerts) == 0 {
		return "-"
	}
	return strconv.Itoa(len(h.OpenAlerts))
}

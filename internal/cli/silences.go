package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/cis490/cis490/internal/config"
	"github.com/cis490/cis490/internal/fleethealth"
	"github.com/cis490/cis490/internal/silences"
)

// newSilenceCmds are the alerts subcommands that hold alerts back (SPEC §5.1).
func newSilenceCmds(a *app) []*cobra.Command {
	return []*cobra.Command{newAlertsSilenceCmd(a), newAlertsSilencesCmd(a), newAlertsUnsilenceCmd(a)}
}

const silencesWhere = `Locally they are in <serve.data_dir>/silences.jsonl on the receiver; with --remote
they go through the receiver's /v1/silences with the [receiver] transport and an admin
token, as alerts tail --remote does.`

type silenceOptions struct {
	streams Streams
	req     silences.Request
	remote  bool
	now     func() time.Time
}

func newAlertsSilenceCmd(a *app) *cobra.Command {
	opts := &silenceOptions{streams: a.streams, now: time.Now}
	cmd := &cobra.Command{
		Use:   "silence --host H [--symptom S] (--for D | --until T) --reason TEXT",
		Short: "Hold back a host's alerts for a while (maintenance), and print the silence's id",
		Long: `Silence a host, or one symptom of it, until an end: --for a duration from now
(4h, 90m, 2d) or --until a time (RFC 3339). An end is required, at most
fleet_health.max_silence ahead (7 days by default), and so is a reason.

While the silence lasts fleet health still evaluates and shows the host (status
silenced), but writes and pushes no firing line or repeat; if the symptom is still
there when the silence ends, it fires at once. The host must be one the receiver
knows: a host token in serve.tokens_file, a doctor report, or a host fleet health
has seen (a typo would otherwise silence nothing).

` + silencesWhere + `

The id is printed alone on standard output: ID=$(cis490 alerts silence ...) works,
and cis490 alerts unsilence $ID ends it early.

Exit codes: 0 silenced, 1 it could not be recorded, 2 usage error or a silence refused
(no end, an end in the past or too far, an unknown host or symptom): nothing written.`,
		Example: "  cis490 alerts silence --host lab-07 --for 4h --reason \"moving racks\"\n" +
			"  cis490 alerts silence --host lab-07 --symptom report-stale --until 2026-12-01T09:00:00+01:00 --reason \"disk replaced\"\n" +
			"  cis490 alerts silence --remote --host lab-07 --for 2d --reason \"away\"",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := a.load()
			if err != nil {
				return err
			}
			return runSilence(cmd.Context(), opts, cfg, log)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.req.Host, "host", "", "the host to silence (its fleet name)")
	f.StringVar(&opts.req.Symptom, "symptom", "", "only this symptom (default: every symptom of the host): "+strings.Join(fleethealth.Symptoms, ", "))
	f.StringVar(&opts.req.For, "for", "", "how long, from now: 4h, 90m, 2d")
	f.StringVar(&opts.req.End, "until", "", "until when: an RFC 3339 time such as 2026-11-28T18:00:00Z")
	f.StringVar(&opts.req.Reason, "reason", "", "why: shown with the silence and the alerts it holds back")
	f.BoolVar(&opts.remote, "remote", false, "make the silence on the receiver through POST /v1/silences")
	addDataDirFlag(a, cmd)
	return cmd
}

func runSilence(ctx context.Context, opts *silenceOptions, cfg config.Config, log zerolog.Logger) error {
	r := opts.req
	switch {
	case r.Host == "":
		return usageErr(errors.New("alerts silence: --host is required: the host to silence"))
	case r.For == "" && r.End == "":
		return usageErr(errors.New("alerts silence: a silence needs an end: --for 4h or --until 2026-11-28T18:00:00Z"))
	case r.For != "" && r.End != "":
		return usageErr(errors.New("alerts silence: --for and --until both say when it ends: give one"))
	case strings.TrimSpace(r.Reason) == "":
		return usageErr(errors.New("alerts silence: --reason is required: say why (it is shown with the alerts it holds back)"))
	}
	var s silences.Silence
	var err error
	if opts.remote {
		s, err = remoteSilence(ctx, cfg, log, r)
	} else {
		s, err = localSilence(cfg, r, opts.now())
	}
	if errors.Is(err, silences.ErrInvalid) || isStatus(err, http.StatusBadRequest) {
		return usageErr(fmt.Errorf("alerts silence: %w", err))
	}
	if err != nil {
		return fmt.Errorf("alerts silence: %w", err)
	}
	fmt.Fprintln(opts.streams.Out, s.ID)
	fmt.Fprintf(opts.streams.Err, "silenced %s until %s (%s): %s\nend it early with: cis490 alerts unsilence %s\n",
		what(s), shortTime(s.End), ago(s.End.Sub(s.Start)), s.Reason, s.ID)
	return nil
}

func localSilence(cfg config.Config, r silences.Request, now time.Time) (silences.Silence, error) {
	dir, err := localDataDir(cfg)
	if err != nil {
		return silences.Silence{}, err
	}
	s, err := r.Silence(now, "local")
	if err != nil {
		return s, err
	}
	known := silences.Known{DataDir: dir, TokensFile: cfg.Serve.TokensFile, Self: cfg.Host}
	if err := known.Check(s.Host, now); err != nil {
		return s, err
	}
	return silences.Add(silences.Path(dir), s, now, cfg.FleetHealth.MaxSilence, fleethealth.Symptoms)
}

type silencesOptions struct {
	streams Streams
	json    bool
	all     bool
	remote  bool
	now     func() time.Time
}

// recentPast is how long a silence that is over stays in the default list: long
// enough to see what just expired, short enough that a year of history stays out.
const recentPast = 24 * time.Hour

func newAlertsSilencesCmd(a *app) *cobra.Command {
	opts := &silencesOptions{streams: a.streams, now: time.Now}
	cmd := &cobra.Command{
		Use:   "silences",
		Short: "List the silences: active, pending, and those over in the last day",
		Long: `List the silences, the ones that matter now first: active (by end), pending (by
start), then those that ended or expired in the last 24 hours, latest first. --all
lists the whole history: silences are never removed, only marked ended or expired.

` + silencesWhere + `

Exit codes: 0 listed (none included), 1 they could not be read, 2 usage error.`,
		Example: "  cis490 alerts silences\n  cis490 alerts silences --remote --json | jq '.[] | select(.state == \"active\")'",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := a.load()
			if err != nil {
				return err
			}
			return runSilences(cmd.Context(), opts, cfg, log)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&opts.json, "json", false, "print the silences as a JSON array")
	f.BoolVar(&opts.all, "all", false, "list every silence ever made, not only those of the last day")
	f.BoolVar(&opts.remote, "remote", false, "list the receiver's silences through GET /v1/silences")
	addDataDirFlag(a, cmd)
	return cmd
}

func runSilences(ctx context.Context, opts *silencesOptions, cfg config.Config, log zerolog.Logger) error {
	now := opts.now()
	var views []silences.View
	var err error
	if opts.remote {
		views, err = remoteSilences(ctx, cfg, log)
	} else {
		views, err = localSilences(cfg, now, opts.streams)
	}
	if err != nil {
		return fmt.Errorf("alerts silences: %w", err)
	}
	shown := make([]silences.View, 0, len(views))
	for _, v := range views {
		if opts.all || v.State == silences.StateActive || v.State == silences.StatePending || now.Sub(over(v)) < recentPast {
			shown = append(shown, v)
		}
	}
	if opts.json {
		return json.NewEncoder(opts.streams.Out).Encode(shown)
	}
	if len(shown) > 0 {
		tw := tabwriter.NewWriter(opts.streams.Out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tHOST\tSYMPTOM\tSTATE\tFROM\tUNTIL\tBY\tREASON")
		for _, v := range shown {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", v.ID, v.Host, orAll(v.Symptom), v.State,
				shortTime(v.Start), shortTime(over(v)), orDash(v.By), v.Reason)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	switch hidden := len(views) - len(shown); {
	case len(views) == 0:
		fmt.Fprintln(opts.streams.Err, "no silences (cis490 alerts silence --host H --for 4h --reason TEXT makes one)")
	case hidden > 0:
		fmt.Fprintf(opts.streams.Err, "%d older silences not listed: --all lists them\n", hidden)
	}
	return nil
}

func localSilences(cfg config.Config, now time.Time, streams Streams) ([]silences.View, error) {
	dir, err := localDataDir(cfg)
	if err != nil {
		return nil, err
	}
	set, st, err := silences.Load(silences.Path(dir))
	if err != nil {
		return nil, err
	}
	if st.Skipped > 0 {
		fmt.Fprintf(streams.Err, "%s: %d damaged lines skipped\n", silences.Path(dir), st.Skipped)
	}
	return set.List(now), nil
}

type unsilenceOptions struct {
	streams Streams
	id      string
	remote  bool
	now     func() time.Time
}

func newAlertsUnsilenceCmd(a *app) *cobra.Command {
	opts := &unsilenceOptions{streams: a.streams, now: time.Now}
	cmd := &cobra.Command{
		Use:   "unsilence ID",
		Short: "End a silence now",
		Long: `End the silence with this id (cis490 alerts silences lists them) now, before its
end. It stays in the history, marked ended. A symptom it held back fires at the next
fleet-health check. Ending a silence that is already over changes nothing.

` + silencesWhere + `

Exit codes: 0 ended (or already over), 1 it could not be recorded, 2 usage error or no
silence with that id.`,
		Example: "  cis490 alerts unsilence 1a2b3c4d\n  cis490 alerts unsilence --remote 1a2b3c4d",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, log, err := a.load()
			if err != nil {
				return err
			}
			opts.id = args[0]
			return runUnsilence(cmd.Context(), opts, cfg, log)
		},
	}
	cmd.Flags().BoolVar(&opts.remote, "remote", false, "end the silence on the receiver through DELETE /v1/silences/ID")
	addDataDirFlag(a, cmd)
	return cmd
}

func runUnsilence(ctx context.Context, opts *unsilenceOptions, cfg config.Config, log zerolog.Logger) error {
	var s silences.Silence
	var err error
	if opts.remote {
		err = remoteUnsilence(ctx, cfg, log, opts.id)
	} else {
		s, err = localUnsilence(cfg, opts.id, opts.now())
	}
	switch {
	case errors.Is(err, silences.ErrOver) || isStatus(err, http.StatusConflict):
		fmt.Fprintf(opts.streams.Err, "nothing to do: %v\n", err)
		return nil
	case errors.Is(err, silences.ErrNotFound) || isStatus(err, http.StatusNotFound):
		return usageErr(fmt.Errorf("alerts unsilence: %w", err))
	case err != nil:
		return fmt.Errorf("alerts unsilence: %w", err)
	case opts.remote:
		fmt.Fprintf(opts.streams.Err, "ended silence %s\n", opts.id)
	default:
		fmt.Fprintf(opts.streams.Err, "ended silence %s of %s, which would have lasted until %s\n", s.ID, what(s), shortTime(s.End))
	}
	return nil
}

func localUnsilence(cfg config.Config, id string, now time.Time) (silences.Silence, error) {
	dir, err := localDataDir(cfg)
	if err != nil {
		return silences.Silence{}, err
	}
	return silences.End(silences.Path(dir), id, now)
}

// addDataDirFlag gives a silence command the data folder it works on locally.
func addDataDirFlag(a *app, cmd *cobra.Command) {
	cmd.Flags().String("data-dir", "", "the receiver's data folder (serve.data_dir), without --remote")
	a.bind(cmd, "data-dir", "serve.data_dir")
}

// localDataDir is the receiver's data folder, which must exist: a silence made on a
// laptop that forgot --remote would land in a folder no receiver reads.
func localDataDir(cfg config.Config) (string, error) {
	dir := cfg.Serve.DataDir
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return "", usageErr(fmt.Errorf("the receiver's data folder %s does not exist: run this on the receiver (serve.data_dir, --data-dir), or add --remote", dir))
	}
	if err != nil {
		return "", err
	}
	if !fi.IsDir() {
		return "", usageErr(fmt.Errorf("the receiver's data folder %s is not a folder (serve.data_dir)", dir))
	}
	return dir, nil
}

// what names what a silence covers, for a sentence.
func what(s silences.Silence) string {
	if s.Symptom == "" {
		return s.Host + " (every symptom)"
	}
	return s.Host + "/" + s.Symptom
}

// over is when a silence stops (or stopped) holding alerts back.
func over(v silences.View) time.Time {
	if v.State == silences.StateEnded {
		return v.EndedAt
	}
	return v.End
}

func orAll(symptom string) string {
	if symptom == "" {
		return "(all)"
	}
	return symptom
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

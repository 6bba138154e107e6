package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/cis490/cis490/internal/client"
	"github.com/cis490/cis490/internal/config"
	"github.com/cis490/cis490/internal/receiver"
	"github.com/cis490/cis490/internal/release"
)

type releasePublishOptions struct {
	streams Streams
	remote  bool
}

func newReleasePublishCmd(a *app) *cobra.Command {
	opts := &releasePublishOptions{streams: a.streams}
	cmd := &cobra.Command{
		Use:   "publish DIR",
		Short: "Store a signed release on the receiver",
		Long: `Store the release signed in DIR (cis490 release sign) on the receiver: the
manifest, its signature and every binary it names, under
serve.data_dir/releases/<commit>/. The receiver checks the signature against
serve.update.public_keys and refuses a commit its version gate does not allow; the
release appears whole or not at all.

With --remote it is sent to the receiver at receiver.url with PUT /v1/releases/<commit>
(receiver.token_file must hold an admin token); without, it is written to the data
folder of this machine (on the Pi). Publishing the same release again changes nothing.

Exit codes: 0 published (or already), 1 refused or failed, 2 usage or configuration.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, log, err := a.load()
			if err != nil {
				return err
			}
			return runReleasePublish(cmd.Context(), opts, cfg, log, args[0])
		},
	}
	cmd.Flags().BoolVar(&opts.remote, "remote", false, "send it to the receiver at receiver.url (an admin token)")
	return cmd
}

func runReleasePublish(ctx context.Context, opts *releasePublishOptions, cfg config.Config, log zerolog.Logger, dir string) error {
	u, err := release.LoadUpload(dir)
	if err != nil {
		return err
	}
	start := time.Now()
	var created bool
	if opts.remote {
		created, err = publishRemote(ctx, cfg, log, u)
	} else {
		created, err = publishLocal(ctx, cfg, log, u)
	}
	if err != nil {
		return err
	}
	what := "published"
	if !created {
		what = "already published"
	}
	_, err = fmt.Fprintf(opts.streams.Out, "%s release %s (version %s, seq %d, %d binaries) in %s\n", what, u.Manifest.Commit, u.Manifest.Version,
		u.Manifest.Seq, len(u.Manifest.Targets), time.Since(start).Round(time.Millisecond))
	return err
}

func publishRemote(ctx context.Context, cfg config.Config, log zerolog.Logger, u release.Upload) (bool, error) {
	c, err := client.New(cfg, client.Options{Retries: -1, Logger: log})
	if err != nil {
		return false, usageErr(err)
	}
	res, err := c.Do(ctx, client.Request{
		Method: http.MethodPut, Path: release.ReleasePath(u.Manifest.Commit),
		Header: http.Header{"Content-Type": {"application/x-tar"}},
		Body: func() (io.ReadCloser, int64, error) {
			pr, pw := io.Pipe()
			go func() { pw.CloseWithError(u.Write(pw)) }()
			return pr, u.Size(), nil
		},
	})
	if err != nil {
		return false, err
	}
	switch res.StatusCode {
	case http.StatusCreated, http.StatusOK:
		res.Body.Close()
		return res.StatusCode == http.StatusCreated, nil
	case http.StatusForbidden:
		e := c.StatusError(res)
		e.Hint = "publishing is the maintainer's: point receiver.token_file at an admin token (`cis490 token new --admin WHO` on the receiver)"
		return false, e
	}
	return false, c.StatusError(res)
}

func publishLocal(ctx context.Context, cfg config.Config, log zerolog.Logger, u release.Upload) (bool, error) {
	keys, err := cfg.Serve.Update.Keys()
	if err != nil {
		return false, usageErr(err)
	}
	if len(keys) == 0 {
		return false, usageErr(errors.New("serve.update.public_keys is empty: set it to the release key on this receiver (or use --remote to publish to another)"))
	}
	g := receiver.LocalGate(ctx, cfg.Serve.Gate, log)
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(u.Write(pw)) }()
	defer pr.Close()
	_, created, err := release.OpenStore(cfg.Serve.DataDir).Put(ctx, u.Manifest.Commit, pr, release.PutOptions{
		Keys: keys, Allowed: func(c string) bool { return g.Check(c).Allowed },
	})
	return created, err
}

type releaseListOptions struct {
	streams Streams
	remote  bool
	json    bool
}

func newReleaseListCmd(a *app) *cobra.Command {
	opts := &releaseListOptions{streams: a.streams}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the published releases, the target marked",
		Long: `List the releases published on the receiver, highest seq first: commit, version,
seq, when published, whether the version gate allows the commit, and which one is the
target that hosts update to (the newest allowed: by position on serve.gate.git_ref when
the commit is there, else by seq).

On the Pi it reads serve.data_dir; --remote asks the receiver at receiver.url (an admin
token).

Exit codes: 0 listed, 1 failure, 2 usage or configuration.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := a.load()
			if err != nil {
				return err
			}
			return runReleaseList(cmd.Context(), opts, cfg, log)
		},
	}
	cmd.Flags().BoolVar(&opts.remote, "remote", false, "ask the receiver at receiver.url (an admin token)")
	cmd.Flags().BoolVar(&opts.json, "json", false, "print JSON")
	return cmd
}

func runReleaseList(ctx context.Context, opts *releaseListOptions, cfg config.Config, log zerolog.Logger) error {
	var rows []release.Listed
	if opts.remote {
		c, err := client.New(cfg, client.Options{Retries: -1, Logger: log})
		if err != nil {
			return usageErr(err)
		}
		res, err := c.Do(ctx, client.Request{Method: http.MethodGet, Path: "/v1/releases"})
		if err != nil {
			return err
		}
		if res.StatusCode != http.StatusOK {
			return c.StatusError(res)
		}
		defer res.Body.Close()
		if err := json.NewDecoder(io.LimitReader(res.Body, 64<<20)).Decode(&rows); err != nil {
			return fmt.Errorf("%s/v1/releases: not a list of releases (%v): is it a cis490 receiver of this version?", c.URL(), err)
		}
	} else {
		rels, skipped, err := release.OpenStore(cfg.Serve.DataDir).List()
		if err != nil {
			return err
		}
		if len(skipped) > 0 {
			log.Warn().Strs("folders", skipped).Msg("folders of releases/ that hold no readable release were skipped")
		}
		g := receiver.LocalGate(ctx, cfg.Serve.Gate, log)
		rows = release.Listing(rels, func(c string) bool { return g.Check(c).Allowed }, receiver.ReleasePositions(ctx, cfg.Serve.Gate, log))
	}
	if opts.json {
		enc := json.NewEncoder(opts.streams.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	if len(rows) == 0 {
		_, err := fmt.Fprintln(opts.streams.Out, "no release is published (cis490 release publish)")
		return err
	}
	tw := tabwriter.NewWriter(opts.streams.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "COMMIT\tVERSION\tSEQ\tPUBLISHED\tALLOWED\tTARGET\tPLATFORMS")
	for _, r := range rows {
		var platforms []string
		for _, t := range r.Targets {
			platforms = append(platforms, t.Platform())
		}
		target := ""
		if r.Target {
			target = "target"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\n", r.Commit[:12], r.Version, r.Seq, r.PublishedAt.UTC().Format(time.RFC3339),
			yesNo(r.Allowed), target, strings.Join(platforms, " "))
	}
	return tw.Flush()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

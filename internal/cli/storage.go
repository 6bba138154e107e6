package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/cis490/cis490/internal/config"
	"github.com/cis490/cis490/internal/logging"
	"github.com/cis490/cis490/internal/migrate"
	"github.com/cis490/cis490/internal/objstore"
)

func newStorageCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "storage",
		Short: "Move the receiver's episodes between its data folder and an object store",
	}
	cmd.AddCommand(newStorageMigrateCmd(a))
	return cmd
}

type storageMigrateOptions struct {
	streams     Streams
	to          string
	dryRun      bool
	deleteLocal bool
	json        bool
}

func newStorageMigrateCmd(a *app) *cobra.Command {
	opts := &storageMigrateOptions{streams: a.streams}
	cmd := &cobra.Command{
		Use:   "migrate --to s3",
		Short: "Copy the data folder's episodes into the bucket of [serve.storage]",
		Long: `Copy every episode and its metadata from <serve.data_dir>/episodes/ into the bucket
that [serve.storage] names (backend = "s3"), as <prefix>episodes/<host>/<sha256> and
<sha256>.json. Each episode goes through the receiver's own verified upload (hashed
while it streams; only a matching body becomes an object) and is then read back
from the bucket and hashed again.

It is resumable: an episode already in the bucket with the same size is skipped, so
running it again after Ctrl-C or a crash continues where it stopped. It only reads the
data folder (unless --delete-local) and takes no lock, so it runs while the receiver
serves. A local file whose bytes do not match its name is reported and neither
uploaded nor deleted.

--delete-local deletes each local copy once the bucket's copy has been read back and
matched (episodes already in the bucket are read back first, too); nothing is deleted
on a mismatch. --dry-run asks the bucket what it has and says what would be copied,
changing nothing.

On a terminal a progress bar shows the bytes; otherwise each episode is a log line.
The summary (copied, already there, failed, bytes) goes to standard output, as JSON
with --json.

Exit codes: 0 every episode is in the bucket (and, with --delete-local, deleted here),
1 some failed or the store stopped answering (run it again), 2 usage or configuration
error (e.g. serve.storage.backend is not s3).`,
		Example: `  cis490 storage migrate --to s3 --dry-run
  cis490 storage migrate --to s3
  cis490 storage migrate --to s3 --delete-local`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.to != config.BackendS3 {
				return usageErr(fmt.Errorf("--to %q: the only destination is s3 (the bucket of [serve.storage])", opts.to))
			}
			cfg, log, err := a.load()
			if err != nil {
				return err
			}
			sc := cfg.Serve.Storage
			if sc.Backend != config.BackendS3 {
				file := cfg.File
				if file == "" {
					file = "the configuration (no lab-host.toml was found)"
				}
				return usageErr(fmt.Errorf("serve.storage.backend is %q in %s, so there is no bucket to migrate to: set backend = \"s3\", endpoint, bucket and credentials_file in [serve.storage] first "+
					"(the receiver keeps the data folder until it is restarted with them)", sc.Backend, file))
			}
			st, err := objstore.New(sc, objstore.Options{Logger: log})
			if err != nil {
				return usageErr(err)
			}
			defer st.Close()
			mo := migrate.Options{DataDir: cfg.Serve.DataDir, Bucket: st, DryRun: opts.dryRun, DeleteLocal: opts.deleteLocal, Logger: log}
			if logging.IsTerminal(opts.streams.Err) {
				mo.Progress = &migrateBar{out: opts.streams.Err}
			}
			sum, err := migrate.Run(cmd.Context(), mo)
			if perr := printMigrateSummary(opts, sum); perr != nil && err == nil {
				err = perr
			}
			switch {
			case err != nil:
				return err
			case !sum.OK():
				return fmt.Errorf("%d episode(s) are not in the bucket, or their local copy not deleted: the log above says why; run it again after fixing that", sum.Failed+sum.NotTried+sum.DeleteFailed)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.to, "to", "", "destination: s3, the bucket of [serve.storage] (required)")
	f.BoolVar(&opts.dryRun, "dry-run", false, "say what would be copied and deleted; change nothing")
	f.BoolVar(&opts.deleteLocal, "delete-local", false, "delete each local copy once the bucket's copy is read back and matches")
	f.BoolVar(&opts.json, "json", false, "print the summary as JSON")
	f.String("data-dir", "", "the receiver's data folder (serve.data_dir)")
	a.bind(cmd, "data-dir", "serve.data_dir")
	_ = cmd.MarkFlagRequired("to")
	_ = cmd.RegisterFlagCompletionFunc("to", cobra.FixedCompletions([]cobra.Completion{config.BackendS3}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func printMigrateSummary(opts *storageMigrateOptions, sum migrate.Summary) error {
	if opts.json {
		enc := json.NewEncoder(opts.streams.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(sum)
	}
	_, err := fmt.Fprintln(opts.streams.Out, sum.String())
	if err != nil {
		return errors.Join(errors.New("print the summary"), err)
	}
	return nil
}

// migrateBar is a terminal progress bar over the bytes of a migration.
type migrateBar struct {
	out io.Writer
	pb  *progressbar.ProgressBar
}

func (b *migrateBar) Start(episodes int, bytes int64) {
	b.pb = progressbar.DefaultBytes(bytes, fmt.Sprintf("migrating %d episode(s)", episodes))
	progressbar.OptionSetWriter(b.out)(b.pb)
}

func (b *migrateBar) Reader(r io.Reader) io.Reader {
	rd := progressbar.NewReader(r, b.pb)
	return &rd
}

func (b *migrateBar) Skip(n int64) { _ = b.pb.Add64(n) }

func (b *migrateBar) Finish() { _ = b.pb.Finish() }

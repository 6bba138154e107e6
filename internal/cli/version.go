package cli

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/cis490/cis490/internal/buildinfo"
)

type versionOptions struct {
	streams Streams
	json    bool
}

func newVersionCmd(a *app) *cobra.Command {
	opts := &versionOptions{streams: a.streams}
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit, build date and Go version",
		Long: `Print the version, the commit this binary was built from (the one lab hosts stamp
on their requests for the version gate), the build date and the Go version.

Exit codes: 0 always.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error { return runVersion(opts, buildinfo.Get()) },
	}
	cmd.Flags().BoolVar(&opts.json, "json", false, "print JSON")
	return cmd
}

func runVersion(opts *versionOptions, info buildinfo.Info) error {
	if opts.json {
		enc := json.NewEncoder(opts.streams.Out)
		return enc.Encode(info)
	}
	commit := info.Commit
	if commit == "" {
		commit = "unknown (built without VCS information: requests will be unstamped)"
	} else if info.Modified {
		commit += " (modified)"
	}
	date := info.Date
	if date == "" {
		date = "unknown"
	}
	_, err := fmt.Fprintf(opts.streams.Out, "cis490 %s\ncommit: %s\nbuilt:  %s\ngo:     %s\n", info.Version, commit, date, info.GoVersion)
	return err
}

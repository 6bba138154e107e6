package cli

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/cis490/cis490/internal/install"
)

// manDate is the date printed on every man page. It is fixed so that regenerating
// changes nothing unless the commands did: CI fails on a stale tree by comparing.
var manDate = time.Date(2026, time.November, 1, 0, 0, 0, 0, time.UTC)

// Generated files, relative to gen --out.
const (
	completionsDir = "completions"
	manDir         = "man"
	exampleConfig  = "packaging/lab-host.toml.example"
)

type genOptions struct {
	streams Streams
	out     string
}

func newGenCmd(a *app) *cobra.Command {
	opts := &genOptions{streams: a.streams}
	cmd := &cobra.Command{
		Use:    "gen",
		Short:  "Regenerate completions/, man/ and the example config from the command tree",
		Hidden: true,
		Long: `Regenerate the files the repository checks in from the command tree and the
configuration schema: completions/ (bash, zsh, fish, powershell), man/ (one page per
command) and ` + exampleConfig + `. Both folders are wiped first, so a removed
command leaves no page behind. From the repository:

    go run ./cmd/cis490 gen --out .

Exit codes: 0 written, 1 a file could not be written.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error { return runGen(opts) },
	}
	cmd.Flags().StringVar(&opts.out, "out", ".", "the repository's top folder")
	return cmd
}

func runGen(opts *genOptions) error {
	if fi, err := os.Stat(opts.out); err != nil || !fi.IsDir() {
		return usageErr(fmt.Errorf("--out %s is not a folder", opts.out))
	}
	// A fresh tree: the one running gen has flag values set, and cobra added its
	// help and completion commands to it.
	root := NewRoot(Streams{In: bytes.NewReader(nil), Out: io.Discard, Err: io.Discard})
	comp := filepath.Join(opts.out, completionsDir)
	man := filepath.Join(opts.out, manDir)
	for _, dir := range []string{comp, man} {
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	if err := genCompletions(root, comp); err != nil {
		return err
	}
	if err := genMan(root, man); err != nil {
		return err
	}
	example := filepath.Join(opts.out, exampleConfig)
	if err := os.MkdirAll(filepath.Dir(example), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(example, install.Skeleton(nil), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(opts.streams.Err, "wrote %s/, %s/ and %s under %s\n", completionsDir, manDir, exampleConfig, opts.out)
	return nil
}

func genCompletions(root *cobra.Command, dir string) error {
	for name, gen := range map[string]func(io.Writer) error{
		"cis490.bash": func(w io.Writer) error { return root.GenBashCompletionV2(w, true) },
		"_cis490":     func(w io.Writer) error { return root.GenZshCompletion(w) },
		"cis490.fish": func(w io.Writer) error { return root.GenFishCompletion(w, true) },
		"cis490.ps1":  func(w io.Writer) error { return root.GenPowerShellCompletionWithDesc(w) },
	} {
		var b bytes.Buffer
		if err := gen(&b); err != nil {
			return fmt.Errorf("completion %s: %w", name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b.Bytes(), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func genMan(root *cobra.Command, dir string) error {
	// cobra's completion command stays usable, but its five pages of boilerplate
	// would bury the real commands in the man tree.
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		if c.Name() == "completion" {
			c.Hidden = true
		}
	}
	walkCommands(root, func(c *cobra.Command) { c.DisableAutoGenTag = true })
	return doc.GenManTree(root, &doc.GenManHeader{
		Section: "1",
		Date:    &manDate,
		Source:  "cis490",
		Manual:  "cis490 manual",
	}, dir)
}

func walkCommands(c *cobra.Command, f func(*cobra.Command)) {
	f(c)
	for _, sub := range c.Commands() {
		walkCommands(sub, f)
	}
}

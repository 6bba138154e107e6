package cli

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/cis490/cis490/internal/protocol"
	"github.com/cis490/cis490/internal/tokens"
)

func newTokenCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Manage the receiver's bearer tokens",
	}
	cmd.AddCommand(newTokenNewCmd(a))
	return cmd
}

type tokenNewOptions struct {
	streams Streams
	host    string
	admin   string
	file    string
	now     func() time.Time
}

func newTokenNewCmd(a *app) *cobra.Command {
	opts := &tokenNewOptions{streams: a.streams, now: time.Now}
	cmd := &cobra.Command{
		Use:   "new (--host NAME | --admin WHO)",
		Short: "Mint a token, store its hash in the tokens file, print the token once",
		Long: `Mint a random bearer token for a lab host (--host) or for the maintainer (--admin),
append its SHA-256 to the tokens file (serve.tokens_file, created 0600 if missing) and
print the token alone on standard output. Only the hash is kept: a lost token cannot be
recovered, mint a new one. A running receiver picks the new token up within a second.

    TOKEN=$(cis490 token new --host lab-07)

Exit codes: 0 minted, 1 the tokens file could not be written, 2 usage error.`,
		Example: "  cis490 token new --host lab-07 > lab-07.token\n  cis490 token new --admin alice",
		// Args runs before cobra validates the flag groups below, whose errors would
		// exit 1 with a bare message: the choice is checked here, as a usage error.
		Args: func(cmd *cobra.Command, args []string) error {
			if err := cobra.NoArgs(cmd, args); err != nil {
				return err
			}
			if (opts.host == "") == (opts.admin == "") {
				return usageErr(errors.New("token new: pass exactly one of --host NAME (a lab host's token) or --admin WHO (a maintainer's token)"))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, _, err := a.load()
			if err != nil {
				return err
			}
			opts.file = cfg.Serve.TokensFile
			return runTokenNew(opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.host, "host", "", "the lab host this token acts as")
	f.StringVar(&opts.admin, "admin", "", "the maintainer this admin token belongs to")
	f.String("tokens-file", "", "tokens file to append to (serve.tokens_file)")
	a.bind(cmd, "tokens-file", "serve.tokens_file")
	// The groups only steer shell completion: Args above has already enforced them.
	cmd.MarkFlagsMutuallyExclusive("host", "admin")
	cmd.MarkFlagsOneRequired("host", "admin")
	return cmd
}

func runTokenNew(opts *tokenNewOptions) error {
	if opts.file == "" {
		return usageErr(errors.New("no tokens file: set serve.tokens_file in lab-host.toml or pass --tokens-file"))
	}
	id := tokens.Identity{Admin: opts.admin}
	if opts.host != "" {
		host, ok := protocol.NormalizeHost(opts.host)
		if !ok {
			return usageErr(fmt.Errorf("--host %q is not an RFC 1123 host name (letters, digits, hyphens, dots)", opts.host))
		}
		id.Host = host
	}
	token, err := tokens.Append(opts.file, id, opts.now().UTC())
	if err != nil {
		return err
	}
	fmt.Fprintf(opts.streams.Err, "minted a token for %s; its hash is in %s. It is printed once, on standard output:\n", id, opts.file)
	_, err = fmt.Fprintln(opts.streams.Out, token)
	return err
}

package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cis490/cis490/internal/protocol"
	"github.com/cis490/cis490/internal/tokens"
)

func newTokenCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Manage the receiver's bearer tokens",
		Long: `Manage the receiver's tokens file (serve.tokens_file). It holds only the SHA-256 of
each token, with a short id, the host or admin it acts as, when it was made and, once
rotated, when it expires. The hosts with a live host token are the fleet's roster:
fleet-health expects each of them. A running receiver picks every change up within a
second.`,
	}
	cmd.AddCommand(newTokenNewCmd(a), newTokenListCmd(a), newTokenRevokeCmd(a), newTokenRotateCmd(a))
	return cmd
}

// bindTokensFile gives cmd the --tokens-file flag; file is filled from it or the
// configuration by tokensFile.
func bindTokensFile(a *app, cmd *cobra.Command, what string) {
	cmd.Flags().String("tokens-file", "", what+" (serve.tokens_file)")
	a.bind(cmd, "tokens-file", "serve.tokens_file")
}

func tokensFile(a *app) (string, error) {
	cfg, _, err := a.load()
	if err != nil {
		return "", err
	}
	if cfg.Serve.TokensFile == "" {
		return "", usageErr(errors.New("no tokens file: set serve.tokens_file in lab-host.toml or pass --tokens-file"))
	}
	return cfg.Serve.TokensFile, nil
}

// withTokensFile is a RunE that finds the tokens file, stores its path in file, then
// runs run.
func withTokensFile(a *app, file *string, run func() error) func(*cobra.Command, []string) error {
	return func(*cobra.Command, []string) error {
		f, err := tokensFile(a)
		if err != nil {
			return err
		}
		*file = f
		return run()
	}
}

// tokensErr turns a tokens-file error into the command's: nothing to act on is a
// usage error, a missing file says how to start one, the rest exits 1.
func tokensErr(file string, err error) error {
	switch {
	case errors.Is(err, tokens.ErrNoMatch):
		return usageErr(err)
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("no tokens file at %s: mint the first token with `cis490 token new`", file)
	}
	return err
}

func hostFlag(h string) (string, error) {
	host, ok := protocol.NormalizeHost(h)
	if !ok {
		return "", usageErr(fmt.Errorf("--host %q is not an RFC 1123 host name (letters, digits, hyphens, dots)", h))
	}
	return host, nil
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
append its SHA-256, a short id and the time to the tokens file (serve.tokens_file,
created 0600 if missing) and print the token alone on standard output. Only the hash is
kept: a lost token cannot be recovered, mint a new one (or rotate). A running receiver
picks the new token up within a second.

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
	bindTokensFile(a, cmd, "tokens file to append to")
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
		host, err := hostFlag(opts.host)
		if err != nil {
			return err
		}
		id.Host = host
	}
	token, e, err := tokens.Mint(opts.file, id, opts.now().UTC())
	if err != nil {
		return err
	}
	fmt.Fprintf(opts.streams.Err, "minted token %s for %s; its hash is in %s. It is printed once, on standard output:\n", e.ID, id, opts.file)
	_, err = fmt.Fprintln(opts.streams.Out, token)
	return err
}

type tokenListOptions struct {
	streams Streams
	file    string
	json    bool
	now     func() time.Time
}

func newTokenListCmd(a *app) *cobra.Command {
	opts := &tokenListOptions{streams: a.streams, now: time.Now}
	cmd := &cobra.Command{
		Use:   "list [--json]",
		Short: "List the tokens file's entries: id, host or admin, created, expires",
		Long: `List the entries of the tokens file, one a line in file order: the id (for token
revoke --id), the host or admin the token acts as, when it was made ("unknown" for
entries written before creation times were kept) and when it expires ("never" unless
rotated). Never a token or a hash.

Exit codes: 0 listed, 1 the tokens file could not be read, 2 usage error.`,
		Example: "  cis490 token list\n  cis490 token list --json | jq -r '.tokens[] | select(.host) | .host'",
		Args:    cobra.NoArgs,
		RunE:    withTokensFile(a, &opts.file, func() error { return runTokenList(opts) }),
	}
	cmd.Flags().BoolVar(&opts.json, "json", false, `print {"tokens": [{id, host or admin, created, expires, expired}]}`)
	bindTokensFile(a, cmd, "tokens file to list")
	return cmd
}

// tokenJSON is a row of `token list --json`; created and expires are left out when
// unknown and never.
type tokenJSON struct {
	ID      string    `json:"id"`
	Host    string    `json:"host,omitempty"`
	Admin   string    `json:"admin,omitempty"`
	Created time.Time `json:"created,omitzero"`
	Expires time.Time `json:"expires,omitzero"`
	Expired bool      `json:"expired"`
}

func runTokenList(opts *tokenListOptions) error {
	set, err := tokens.Load(opts.file)
	if err != nil {
		return tokensErr(opts.file, err)
	}
	now := opts.now()
	entries := set.Entries()
	if opts.json {
		rows := make([]tokenJSON, 0, len(entries))
		for _, e := range entries {
			rows = append(rows, tokenJSON{ID: e.ID, Host: e.Host, Admin: e.Admin,
				Created: e.Created.UTC(), Expires: e.Expires.UTC(), Expired: !e.Live(now)})
		}
		return json.NewEncoder(opts.streams.Out).Encode(map[string]any{"tokens": rows})
	}
	if len(entries) == 0 {
		fmt.Fprintf(opts.streams.Err, "no tokens in %s: mint one with `cis490 token new`\n", opts.file)
		return nil
	}
	tw := tabwriter.NewWriter(opts.streams.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tWHO\tCREATED\tEXPIRES")
	for _, e := range entries {
		created, expires := "unknown", "never"
		if !e.Created.IsZero() {
			created = e.Created.UTC().Format(time.RFC3339)
		}
		if !e.Expires.IsZero() {
			expires = e.Expires.UTC().Format(time.RFC3339)
			if !e.Live(now) {
				expires += " (expired)"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", e.ID, e.Identity, created, expires)
	}
	return tw.Flush()
}

type tokenRevokeOptions struct {
	streams Streams
	file    string
	sel     tokens.Selector
}

func newTokenRevokeCmd(a *app) *cobra.Command {
	opts := &tokenRevokeOptions{streams: a.streams}
	cmd := &cobra.Command{
		Use:   "revoke (--host NAME | --admin WHO | --id ID)",
		Short: "Remove tokens from the tokens file: every token of a host or admin, or one by id",
		Long: `Remove from the tokens file every token of a host (--host), of an admin (--admin), or
the one entry with an id (--id, as token list shows it), in one atomic write under the
file's lock. Comments stay, but for those directly above a removed entry. A running
receiver refuses the removed tokens within a second; a host left without a token
leaves the roster, and fleet-health closes its alerts as retired.

Exit codes: 0 revoked, 1 the tokens file could not be read or written, 2 usage error
(including: no token matched; nothing is changed then).`,
		Example: "  cis490 token revoke --host lab-07\n  cis490 token revoke --id 3f9a2c1b",
		Args: func(cmd *cobra.Command, args []string) error {
			if err := cobra.NoArgs(cmd, args); err != nil {
				return err
			}
			n := 0
			for _, v := range []string{opts.sel.Host, opts.sel.Admin, opts.sel.ID} {
				if v != "" {
					n++
				}
			}
			if n != 1 {
				return usageErr(errors.New("token revoke: pass exactly one of --host NAME, --admin WHO or --id ID (token list shows them)"))
			}
			return nil
		},
		RunE: withTokensFile(a, &opts.file, func() error { return runTokenRevoke(opts) }),
	}
	f := cmd.Flags()
	f.StringVar(&opts.sel.Host, "host", "", "revoke every token of this lab host")
	f.StringVar(&opts.sel.Admin, "admin", "", "revoke every token of this admin")
	f.StringVar(&opts.sel.ID, "id", "", "revoke the token with this id")
	bindTokensFile(a, cmd, "tokens file to edit")
	cmd.MarkFlagsMutuallyExclusive("host", "admin", "id")
	cmd.MarkFlagsOneRequired("host", "admin", "id")
	return cmd
}

func runTokenRevoke(opts *tokenRevokeOptions) error {
	sel := opts.sel
	if sel.Host != "" {
		host, err := hostFlag(sel.Host)
		if err != nil {
			return err
		}
		sel.Host = host
	}
	removed, err := tokens.Revoke(opts.file, sel)
	if err != nil {
		return tokensErr(opts.file, err)
	}
	what := tokenIDs(removed)
	if sel.ID != "" {
		what = removed[0].Identity.String()
	}
	_, err = fmt.Fprintf(opts.streams.Err, "revoked %s %s (%s) from %s; a running receiver refuses them within a second\n",
		tokenCount(len(removed), "token"), sel, what, opts.file)
	return err
}

type tokenRotateOptions struct {
	streams Streams
	file    string
	host    string
	grace   time.Duration
	now     func() time.Time
}

func newTokenRotateCmd(a *app) *cobra.Command {
	opts := &tokenRotateOptions{streams: a.streams, now: time.Now}
	cmd := &cobra.Command{
		Use:   "rotate --host NAME [--grace 24h]",
		Short: "Mint a new token for a host and let its old ones expire after a grace",
		Long: `Mint a new token for a lab host, print it alone on standard output (as token new does),
and give the host's live tokens an expiry --grace from now (an earlier expiry stays), in
one atomic write: the host keeps shipping with its old token until the new one is in
its receiver.token_file. --grace 0 revokes the old tokens at once. The receiver refuses
an old token from its expiry on, and picks the change up within a second.

    TOKEN=$(cis490 token rotate --host lab-07 --grace 1h)

Exit codes: 0 rotated, 1 the tokens file could not be read or written, 2 usage error
(including: the host has no live token to rotate; mint its first with token new).`,
		Example: "  cis490 token rotate --host lab-07 > lab-07.token\n  cis490 token rotate --host lab-07 --grace 0",
		Args: func(cmd *cobra.Command, args []string) error {
			if err := cobra.NoArgs(cmd, args); err != nil {
				return err
			}
			if opts.host == "" {
				return usageErr(errors.New("token rotate: pass --host NAME, the lab host whose token to replace"))
			}
			if opts.grace < 0 {
				return usageErr(fmt.Errorf("token rotate: --grace %s is negative; give 0 to revoke the old tokens now", opts.grace))
			}
			return nil
		},
		RunE: withTokensFile(a, &opts.file, func() error { return runTokenRotate(opts) }),
	}
	f := cmd.Flags()
	f.StringVar(&opts.host, "host", "", "the lab host whose token to replace")
	f.DurationVar(&opts.grace, "grace", 24*time.Hour, "how long the old tokens keep working (0: revoke them now)")
	bindTokensFile(a, cmd, "tokens file to edit")
	return cmd
}

func runTokenRotate(opts *tokenRotateOptions) error {
	host, err := hostFlag(opts.host)
	if err != nil {
		return err
	}
	rot, err := tokens.Rotate(opts.file, host, opts.now(), opts.grace)
	if err != nil {
		return tokensErr(opts.file, err)
	}
	var old string
	if opts.grace == 0 {
		noun := "the old token"
		if len(rot.Old) != 1 {
			noun = fmt.Sprintf("the %d old tokens", len(rot.Old))
		}
		old = fmt.Sprintf("revoked %s of host %s (%s)", noun, host, tokenIDs(rot.Old))
	} else {
		var parts []string
		for _, e := range rot.Old {
			parts = append(parts, fmt.Sprintf("%s now expires at %s", e.ID, e.Expires.UTC().Format(time.RFC3339)))
		}
		old = strings.Join(parts, ", ")
	}
	fmt.Fprintf(opts.streams.Err, "minted token %s for host %s; its hash is in %s. %s. The new token is printed once, on standard output:\n",
		rot.New.ID, host, opts.file, old)
	_, err = fmt.Fprintln(opts.streams.Out, rot.Token)
	return err
}

func tokenIDs(es []tokens.Entry) string {
	ids := make([]string, len(es))
	for i, e := range es {
		ids[i] = e.ID
	}
	return strings.Join(ids, ", ")
}

func tokenCount(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

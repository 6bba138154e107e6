package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/cis490/cis490/internal/ca"
	"github.com/cis490/cis490/internal/config"
)

func newCertCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cert",
		Short: "Client certificates from the lab's CA: renew (lab host), list, revoke, allow-bootstrap (receiver)",
		Long: `On a lab host, cert renew keeps this host's client certificate valid
(cis490-cert-fetch.timer runs it). On the receiver, when it is the lab's CA (cis490 ca
init), cert list, cert revoke and cert allow-bootstrap manage what it issued, in
serve.data_dir/ca/; a running receiver picks every change up within a second.`,
	}
	cmd.AddCommand(newCertRenewCmd(a), newCertListCmd(a), newCertRevokeCmd(a), newCertAllowBootstrapCmd(a))
	return cmd
}

// openCADir finds serve.data_dir/ca/, saying how to make one when there is none.
func openCADir(a *app) (string, config.Config, error) {
	cfg, _, err := a.load()
	if err != nil {
		return "", cfg, err
	}
	dir := filepath.Join(cfg.Serve.DataDir, "ca")
	if _, err := os.Stat(filepath.Join(dir, ca.CertFile)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", cfg, fmt.Errorf("no CA in %s: this receiver is not the lab's CA (`cis490 ca init` makes it one; --data-dir or serve.data_dir says where)", dir)
		}
		return "", cfg, err
	}
	return dir, cfg, nil
}

type certListOptions struct {
	streams Streams
	dir     string
	host    string
	json    bool
	now     func() time.Time
}

func newCertListCmd(a *app) *cobra.Command {
	opts := &certListOptions{streams: a.streams, now: time.Now}
	cmd := &cobra.Command{
		Use:   "list [--host NAME] [--json]",
		Short: "List the certificates the lab's CA issued, and which still work",
		Long: `List every certificate in serve.data_dir/ca/issued.jsonl, oldest first: the host, the
serial (for cert revoke --serial), its status (valid; revoking: replaced by a renewal,
refused from the time shown; revoked; expired), until when it is valid and how it was
issued (bootstrap: the token alone; renewal: the previous certificate and the token;
server: the receiver's own).

Exit codes: 0 listed, 1 the CA's files could not be read, 2 usage error.`,
		Example: "  cis490 cert list --host lab-07\n  cis490 cert list --json | jq -r '.certificates[] | select(.status == \"valid\") | .host'",
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			dir, _, err := openCADir(a)
			if err != nil {
				return err
			}
			opts.dir = dir
			if opts.host != "" {
				if opts.host, err = hostFlag(opts.host); err != nil {
					return err
				}
			}
			return runCertList(opts)
		},
	}
	cmd.Flags().StringVar(&opts.host, "host", "", "only this host's certificates")
	cmd.Flags().BoolVar(&opts.json, "json", false, `print {"certificates": [{host, serial, status, not_before, not_after, by, revoked_at, ...}]}`)
	bindDataDir(a, cmd)
	return cmd
}

// certJSON is a row of `cert list --json`.
type certJSON struct {
	ca.Issued
	Status    string    `json:"status"`
	RevokedAt time.Time `json:"revoked_at,omitzero"`
}

func runCertList(opts *certListOptions) error {
	ledger, err := ca.ReadLedger(opts.dir)
	if err != nil {
		return err
	}
	now := opts.now()
	var rows []certJSON
	for _, is := range ledger.Issued {
		if opts.host != "" && is.Host != opts.host {
			continue
		}
		row := certJSON{Issued: is, Status: ledger.Status(is, now)}
		row.RevokedAt, _ = ledger.RevokedAt(is.Serial)
		rows = append(rows, row)
	}
	if ledger.Skipped > 0 {
		fmt.Fprintf(opts.streams.Err, "skipped %d line(s) of %s that do not read (a torn line after a crash, or an edit)\n", ledger.Skipped, opts.dir)
	}
	if opts.json {
		if rows == nil {
			rows = []certJSON{}
		}
		return json.NewEncoder(opts.streams.Out).Encode(map[string]any{"certificates": rows})
	}
	if len(rows) == 0 {
		fmt.Fprintln(opts.streams.Err, "no certificates issued yet")
		return nil
	}
	tw := tabwriter.NewWriter(opts.streams.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tSERIAL\tSTATUS\tNOT AFTER\tBY\tISSUED")
	for _, r := range rows {
		status := r.Status
		if status == "revoking" {
			status += " at " + r.RevokedAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Host, r.Serial, status, r.NotAfter.UTC().Format(time.RFC3339), r.By, r.TS.UTC().Format(time.RFC3339))
	}
	return tw.Flush()
}

type certRevokeOptions struct {
	streams Streams
	dir     string
	host    string
	serial  string
}

func newCertRevokeCmd(a *app) *cobra.Command {
	opts := &certRevokeOptions{streams: a.streams}
	cmd := &cobra.Command{
		Use:   "revoke (--host NAME | --serial SERIAL)",
		Short: "Revoke a host's certificates, or one by serial: refused at the handshake within a second",
		Long: `Revoke every certificate of a host that still works (--host), or one certificate
(--serial, as cert list shows it; colons and case do not matter), from now on: a line
of serve.data_dir/ca/revoked.jsonl. A running receiver refuses the serial at the
handshake within a second (the receiver is the only verifier: no CRL or OCSP), and
fleet-health reports the host tls-refused when it tries.

It also closes the host's bootstrap: the host cannot get a new certificate with its
token alone until cis490 cert allow-bootstrap HOST. If the host itself is not to be
trusted, revoke its token too (cis490 token revoke --host HOST).

Exit codes: 0 revoked, 1 the CA's files could not be written, 2 usage error
(including: no such serial; nothing is changed then).`,
		Example: "  cis490 cert revoke --host lab-07\n  cis490 cert revoke --serial 3f:9a:2c:1b",
		Args: func(cmd *cobra.Command, args []string) error {
			if err := cobra.NoArgs(cmd, args); err != nil {
				return err
			}
			if (opts.host == "") == (opts.serial == "") {
				return usageErr(errors.New("cert revoke: pass exactly one of --host NAME (every certificate of a host) or --serial SERIAL (one)"))
			}
			return nil
		},
		RunE: func(*cobra.Command, []string) error {
			dir, _, err := openCADir(a)
			if err != nil {
				return err
			}
			opts.dir = dir
			return runCertRevoke(opts)
		},
	}
	cmd.Flags().StringVar(&opts.host, "host", "", "revoke every certificate of this host")
	cmd.Flags().StringVar(&opts.serial, "serial", "", "revoke the certificate with this serial (hex)")
	cmd.MarkFlagsMutuallyExclusive("host", "serial")
	bindDataDir(a, cmd)
	return cmd
}

func runCertRevoke(opts *certRevokeOptions) error {
	authority, err := ca.Open(opts.dir, ca.Options{})
	if err != nil {
		return err
	}
	out := opts.streams.Out
	var host string
	var done []ca.Revoked
	if opts.serial != "" {
		serial, ok := ca.ParseSerial(opts.serial)
		if !ok {
			return usageErr(fmt.Errorf("--serial %q is not a serial number (hex, as cert list shows it)", opts.serial))
		}
		r, err := authority.RevokeSerial(serial)
		if errors.Is(err, ca.ErrUnknownSerial) {
			return usageErr(err)
		}
		if err != nil {
			return err
		}
		host = r.Host
		if r.Already {
			fmt.Fprintf(out, "serial %s (%s) was already revoked: nothing changed\n", r.Serial, r.Host)
			return nil
		}
		done = append(done, r)
	} else {
		if host, err = hostFlag(opts.host); err != nil {
			return err
		}
		if done, err = authority.RevokeHost(host); err != nil {
			return err
		}
		if len(done) == 0 {
			fmt.Fprintf(out, "%s has no certificate that still works: none revoked\n", host)
		}
	}
	for _, r := range done {
		fmt.Fprintf(out, "revoked %s's certificate %s (valid until %s): the receiver refuses it at the handshake within a second\n",
			r.Host, r.Serial, r.NotAfter.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(out, "%s's bootstrap is closed: it gets a new certificate only after `cis490 cert allow-bootstrap %s`\n", host, host)
	return nil
}

type certAllowOptions struct {
	streams Streams
	dir     string
	host    string
}

func newCertAllowBootstrapCmd(a *app) *cobra.Command {
	opts := &certAllowOptions{streams: a.streams}
	cmd := &cobra.Command{
		Use:   "allow-bootstrap HOST",
		Short: "Let a host get one certificate with its token alone (its key was lost, or it was revoked)",
		Long: `Let HOST get its next certificate with its token alone, once, whatever
serve.ca.bootstrap says: for a host whose key was lost while its certificate is still
valid, under bootstrap = never, or after cert revoke closed its bootstrap. The next
cis490 cert renew on the host uses it.

Exit codes: 0 allowed, 1 the CA's files could not be written, 2 usage error.`,
		Example: "  cis490 cert allow-bootstrap lab-07",
		Args:    cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			host, err := hostFlag(args[0])
			if err != nil {
				return err
			}
			dir, _, err := openCADir(a)
			if err != nil {
				return err
			}
			opts.dir, opts.host = dir, host
			return runCertAllowBootstrap(opts)
		},
	}
	bindDataDir(a, cmd)
	return cmd
}

func runCertAllowBootstrap(opts *certAllowOptions) error {
	authority, err := ca.Open(opts.dir, ca.Options{})
	if err != nil {
		return err
	}
	if _, err := authority.AllowBootstrap(opts.host); err != nil {
		return err
	}
	fmt.Fprintf(opts.streams.Out, "%s may get one certificate with its token alone: run `cis490 cert renew` on it (or wait for cis490-cert-fetch.timer)\n", opts.host)
	return nil
}

type certRenewOptions struct {
	streams Streams
	force   bool
}

func newCertRenewCmd(a *app) *cobra.Command {
	opts := &certRenewOptions{streams: a.streams}
	cmd := &cobra.Command{
		Use:   "renew [--force]",
		Short: "Renew this host's client certificate from the lab's CA when it is due",
		Long: `On a lab host: when the certificate at receiver.cert_file is missing, expired, not
this host's, or past two thirds of its lifetime (or with --force), make a new key
(never the old one), send a CSR to the receiver's POST /v1/certs/<host> through the
same transport as ship, with this host's token and its current certificate when that
is valid (a renewal; without one, a bootstrap on the token alone, as the receiver's
serve.ca.bootstrap allows). The new pair is tried in a real handshake (GET
/v1/whoami must name this host) before it replaces the old one, key and certificate
together in one rename: any failure, or a kill at any moment, leaves the old pair.

With cert_file and key_file the same file, that file holds both. With two files,
they become symlinks into .<cert_file>.pairs/ beside cert_file, whose "current"
link is what one rename switches. Either way the folder of cert_file must be
writable. cis490-cert-fetch.timer runs this twice a day; a second run at the same
time exits 0 at once.

Exit codes: 0 renewed or not due, 1 not renewed (the old pair is kept; the message
says why), 2 usage or configuration error.`,
		Example: "  cis490 cert renew\n  cis490 cert renew --force",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := a.load()
			if err != nil {
				return err
			}
			return runCertRenew(cmd.Context(), opts, cfg, log)
		},
	}
	cmd.Flags().BoolVar(&opts.force, "force", false, "renew even when the certificate is not due")
	return cmd
}

func runCertRenew(ctx context.Context, opts *certRenewOptions, cfg config.Config, log zerolog.Logger) error {
	r, err := ca.Renew(ctx, cfg, ca.RenewOptions{Force: opts.force, Logger: log, Retries: -1})
	switch {
	case errors.Is(err, ca.ErrRenewing):
		fmt.Fprintln(opts.streams.Err, "another cis490 cert renew is running on this host: leaving it to that one")
		return nil
	case err != nil:
		return fmt.Errorf("certificate not renewed: %w", err)
	case !r.Renewed:
		fmt.Fprintf(opts.streams.Out, "nothing to do: %s\n", r.Why)
		return nil
	}
	fmt.Fprintf(opts.streams.Out, "renewed (%s): serial %s for %s, valid until %s, by %s; %s\n", r.Why, r.Serial, cfg.Host,
		r.NotAfter.UTC().Format(time.RFC3339), r.By, cfg.Receiver.CertFile)
	return nil
}

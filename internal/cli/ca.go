package cli

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cis490/cis490/internal/ca"
)

func newCACmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ca",
		Short: "Make the receiver the lab's certificate authority",
		Long: `The receiver (the Pi) can be the lab's small CA: it then issues every lab host its
client certificate for mTLS (POST /v1/certs/{host}, used by cis490 cert renew on the
host) and its own server certificate. Its files are in serve.data_dir/ca/. Without
that folder, bring your own CA: nothing is issued.`,
	}
	cmd.AddCommand(newCAInitCmd(a))
	return cmd
}

type caInitOptions struct {
	streams Streams
	dir     string // serve.data_dir/ca
	host    string
	names   []string // --name, else serve.ca.server_names, else detected
	now     func() time.Time
}

func newCAInitCmd(a *app) *cobra.Command {
	opts := &caInitOptions{streams: a.streams, now: time.Now}
	var flagNames []string
	cmd := &cobra.Command{
		Use:   "init [--name NAME]...",
		Short: "Make the lab's CA in serve.data_dir/ca/, and the receiver's own certificate",
		Long: `Make a certificate authority for the lab in serve.data_dir/ca/: an ECDSA P-256 key
(ca.key, 0600) and its certificate valid 10 years (ca.pem); then issue the receiver's
own server certificate (server.pem: the chain and its key in one file, 0600) for the
names given with --name (DNS names or IP addresses, repeatable or comma-separated),
else serve.ca.server_names, else those of this machine (its host names, localhost and
its addresses). The receiver renews that certificate itself before it expires.

An existing CA is never replaced: then nothing changes and the same next steps are
printed. Everything is written in a new folder renamed into place, so an
interrupted init leaves no half CA.

Then set [serve.tls] as printed (cert_file and key_file both server.pem,
client_ca_file ca.pem, which may hold several CAs while one is rotated), restart the
receiver, copy ca.pem to each lab host as receiver.ca_file and run cis490 cert renew
there.

Exit codes: 0 made (or already there), 1 it could not be written, 2 usage error.`,
		Example: "  sudo cis490 ca init\n  sudo cis490 ca init --name pi.lab --name 192.168.1.10",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, _, err := a.load()
			if err != nil {
				return err
			}
			opts.dir, opts.host = filepath.Join(cfg.Serve.DataDir, "ca"), cfg.Host
			source := []string{cfg.Serve.CA.ServerNames}
			if len(flagNames) > 0 {
				source = flagNames
			}
			if opts.names, err = ca.ParseServerNames(source...); err != nil {
				return usageErr(fmt.Errorf("--name: %w", err))
			}
			return runCAInit(opts)
		},
	}
	cmd.Flags().StringSliceVar(&flagNames, "name", nil, "a DNS name or IP address of the receiver's certificate (repeatable; default: serve.ca.server_names, else detected)")
	bindDataDir(a, cmd)
	return cmd
}

// bindDataDir gives cmd the receiver's --data-dir flag.
func bindDataDir(a *app, cmd *cobra.Command) {
	cmd.Flags().String("data-dir", "", "the receiver's data folder, which holds ca/ (serve.data_dir)")
	a.bind(cmd, "data-dir", "serve.data_dir")
}

func runCAInit(opts *caInitOptions) error {
	out := opts.streams.Out
	made, err := ca.Init(opts.dir, ca.InitOptions{Host: opts.host, ServerNames: opts.names, Now: opts.now})
	switch {
	case errors.Is(err, ca.ErrExists):
		fmt.Fprintf(out, "kept the CA already in %s: a CA is never replaced (nothing changed)\n", opts.dir)
	case err != nil:
		return fmt.Errorf("no CA made in %s: %w", opts.dir, err)
	default:
		fmt.Fprintf(out, "made the lab's CA in %s: %s (key %s, 0600), valid until %s\n", opts.dir, ca.CertFile, ca.KeyFile, day(made.NotAfter))
		fmt.Fprintf(out, "issued the receiver's certificate for %s, valid until %s (the receiver renews it): %s\n",
			strings.Join(made.ServerNames, ", "), day(made.Server.NotAfter), ca.ServerFile)
	}
	server, caCert := filepath.Join(opts.dir, ca.ServerFile), filepath.Join(opts.dir, ca.CertFile)
	fmt.Fprintf(out, `
Next, on the receiver: set in lab-host.toml, then restart it (systemctl restart cis490-receiver)
  [serve.tls]
  cert_file = %q
  key_file = %q
  client_ca_file = %q
(client_ca_file may hold several CAs: append ca.pem to an existing one while lab hosts move over.)

On each lab host: copy %s as receiver.ca_file, set receiver.cert_file and key_file
(one file for both is simplest, e.g. /etc/cis490/client.pem), keep its token in
receiver.token_file, and run `+"`cis490 cert renew`"+`; cis490-cert-fetch.timer renews it after that.
`, server, server, caCert, caCert)
	return nil
}

// day is a date as the CA's commands show it.
func day(t time.Time) string { return t.UTC().Format("2006-01-02") }

package cli

import (
	"errors"
	"fmt"
	"net"

	"github.com/spf13/cobra"

	"github.com/cis490/cis490/internal/receiver"
)

func newServeCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the receiver: collect episodes and host-health reports over HTTPS",
		Long: `Run the receiver (on the Pi, as cis490-receiver.service).

With no configuration at all it listens on 127.0.0.1:8490 in open mode (no tokens,
identity from X-Cis490-Host) and keeps its data in $XDG_STATE_HOME/cis490 (or
/var/lib/cis490 as root), so it can be tried with one command. A real receiver sets
[serve] tokens_file and [serve.tls] in lab-host.toml; listening beyond loopback without
tokens is refused.

SIGTERM or SIGINT stops it gracefully: new connections are refused, a new request on
an open connection gets 503, uploads in flight finish.

Exit codes: 0 stopped cleanly, 1 could not start or serve, 2 configuration error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := a.load()
			if err != nil {
				return err
			}
			if err := checkListen("serve.listen", cfg.Serve.ListenAddr()); err != nil {
				return usageErr(err)
			}
			if err := checkListen("serve.metrics_listen", cfg.Serve.MetricsListen); err != nil {
				return usageErr(err)
			}
			err = receiver.Run(cmd.Context(), cfg, log, nil)
			if ce := (*receiver.ConfigError)(nil); errors.As(err, &ce) {
				return usageErr(err)
			}
			return err
		},
	}
	f := cmd.Flags()
	f.String("listen", "", "address to listen on (serve.listen; default 127.0.0.1:8490 in open mode, :8490 otherwise)")
	f.String("data-dir", "", "where episodes, reports and the index are kept (serve.data_dir)")
	f.String("metrics-listen", "", "address for /metrics, e.g. 127.0.0.1:9490 (serve.metrics_listen; default off)")
	f.String("tokens-file", "", "hashed tokens file (serve.tokens_file); none means open mode on loopback")
	a.bind(cmd, "listen", "serve.listen")
	a.bind(cmd, "data-dir", "serve.data_dir")
	a.bind(cmd, "metrics-listen", "serve.metrics_listen")
	a.bind(cmd, "tokens-file", "serve.tokens_file")
	return cmd
}

// checkListen refuses an address that no restart could bind (no port, or a bad one),
// so that it exits 2 like every configuration error and systemd stops restarting it.
// A host name that does not resolve is left to listen to fail with exit 1: at boot it
// may resolve a moment later.
func checkListen(key, addr string) error {
	if addr == "" {
		return nil
	}
	_, port, err := net.SplitHostPort(addr)
	if err == nil {
		_, err = net.LookupPort("tcp", port)
	}
	if err != nil {
		return fmt.Errorf("bad value for %s: %q: %w (use HOST:PORT, such as 127.0.0.1:8490 or :8490)", key, addr, err)
	}
	return nil
}

package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/cis490/cis490/internal/install"
)

type installOptions struct {
	streams    Streams
	role       install.Role
	root       string
	dryRun     bool
	tokenFile  string
	spoolGroup string
	updateKey  string
	ca         bool
	caNames    []string
	// geteuid and binary are the process's; tests replace them.
	geteuid func() int
	binary  func() (string, error)
}

const installExitCodes = `
Exit codes: 0 installed, or nothing to change; 1 a step failed, or not run as root
(without --root); 2 usage error: a bad flag, a bad token, a configuration that does
not load.`

func newInstallCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "install",
		Short: "Set this machine up as a lab host or as the receiver (units, config, folders)",
		Long: `Set this machine up for its role: cis490 install lab-host on each lab host,
cis490 install receiver on the Pi. Run it again at any time (after an upgrade, say):
it compares every file with what it should be, rewrites only what differs, and says
so; a second run changes nothing.
` + installExitCodes,
	}
	cmd.AddCommand(newInstallRoleCmd(a, install.LabHost,
		"Install the ship and doctor-check timers, the spool and a config skeleton",
		`Install this machine as a lab host:

    /usr/bin/cis490                            this binary (the path every unit runs)
    /etc/cis490/lab-host.toml                  every key with its default, commented out;
                                               written only when missing, never overwritten
    /etc/cis490/token                          the --token-file token, 0600 (receiver.token_file)
    /var/spool/cis490/{outbox,sent,rejected}   the spool, 0750 root (see --spool-group)
    /etc/systemd/system/cis490-ship.{service,timer}          ship every 5 min
    /etc/systemd/system/cis490-doctor-check.{service,timer}  health ship daily
    /etc/systemd/system/cis490-cert-fetch.{service,timer}    cert renew every 12 h
    /etc/systemd/system/cis490-autoupdate.{service,timer}    update every 6 h

then systemctl daemon-reload and systemctl enable --now cis490-ship.timer
cis490-doctor-check.timer (each only when needed), and the two self-healing timers
once the configuration says how: cis490-cert-fetch.timer with receiver.cert_file
and key_file set, cis490-autoupdate.timer with update.public_keys (--update-key
writes it into a new configuration).`),
		newInstallRoleCmd(a, install.Receiver,
			"Install the receiver service, the fleet-health timer, the data folder and a config skeleton",
			`Install this machine as the receiver:

    /usr/bin/cis490                            this binary (the path every unit runs)
    /etc/cis490/lab-host.toml                  every key with its default, commented out;
                                               written only when missing, never overwritten
    /etc/cis490/token                          the --token-file token, 0600 (receiver.token_file),
                                               e.g. an admin token for alerts tail --remote
    /var/lib/cis490                            the data folder, 0750 root (serve.data_dir)
    /etc/systemd/system/cis490-receiver.service               cis490 serve
    /etc/systemd/system/cis490-fleet-health.{service,timer}   fleet-health check every 5 min
    /var/lib/cis490/ca/                        with --ca: the lab's CA and this receiver's
                                               server certificate (cis490 ca init)

then systemctl daemon-reload and systemctl enable --now cis490-receiver.service
cis490-fleet-health.timer (each only when needed); a running receiver is restarted
when its binary or unit changed.`),
	)
	return cmd
}

func newInstallRoleCmd(a *app, role install.Role, short, long string) *cobra.Command {
	opts := &installOptions{streams: a.streams, role: role, geteuid: os.Geteuid, binary: os.Executable}
	cmd := &cobra.Command{
		Use:   role.Name,
		Short: short,
		Long: long + `

Units that the cis490 package provides in /usr/lib/systemd/system, as this binary
embeds them, are left to the package: install writes no copy in /etc/systemd/system
(one would override the package's upgrades) and removes the copy it wrote earlier.

The paths of the token and of the spool or data folder come from
/etc/cis490/lab-host.toml when it exists (the file the units read; --config does not
apply). --root DIR writes everything under DIR and leaves systemd alone (images,
tests); --dry-run prints what would change and changes nothing.
` + installExitCodes,
		Example: "  sudo cis490 install " + role.Name + " --dry-run\n" +
			"  sudo cis490 install " + role.Name + " --token-file " + exampleToken(role) + "\n" +
			"  sudo cis490 install " + role.Name + " --token-file - < " + exampleToken(role) + "\n" +
			"  cis490 install " + role.Name + " --root ./image",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if a.configPath != "" {
				return usageErr(fmt.Errorf("--config does not apply to install: the units read %s, and install reads and writes that file (under --root, if given)", install.ConfigPath))
			}
			return runInstall(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.root, "root", "", "install under this folder and leave systemd alone")
	f.BoolVar(&opts.dryRun, "dry-run", false, "print what would change, change nothing")
	f.StringVar(&opts.tokenFile, "token-file", "", "read the bearer token from this file (- for standard input) and store it 0600 at receiver.token_file")
	if role.Name == install.LabHost.Name {
		f.StringVar(&opts.spoolGroup, "spool-group", "", "group of the producers: outbox/ becomes root:GROUP 2770, the other spool folders root:GROUP 0750; later runs without it keep the group, root gives it up")
		f.StringVar(&opts.updateKey, "update-key", "", "minisign public key releases are signed by (cis490 release keygen prints it): update.public_keys in a new configuration, and cis490-autoupdate.timer enabled")
	} else {
		f.BoolVar(&opts.ca, "ca", false, "make this receiver the lab's CA (cis490 ca init) in <data_dir>/ca/, with its own server certificate; an existing CA is kept")
		f.StringSliceVar(&opts.caNames, "ca-name", nil, "with --ca: a DNS name or IP address of the receiver for its server certificate (repeat; default: detected)")
	}
	return cmd
}

// exampleToken names the token a role typically stores: a host's own, or on the
// receiver the maintainer's admin token (for alerts tail --remote, doctor).
func exampleToken(role install.Role) string {
	if role.Name == install.Receiver.Name {
		return "admin.token"
	}
	return "lab-07.token"
}

func runInstall(ctx context.Context, opts *installOptions) error {
	if opts.root == "" && opts.geteuid() != 0 {
		return errors.New("install writes /usr/bin, /etc and /var and runs systemctl: run it as root " +
			"(sudo cis490 install " + opts.role.Name + "), or pass --root DIR to install into a folder")
	}
	bin, err := opts.binary()
	if err != nil {
		return fmt.Errorf("find this binary to install it: %w", err)
	}
	iopts := install.Options{Role: opts.role, Root: opts.root, DryRun: opts.dryRun, Binary: bin, Out: opts.streams.Out,
		UpdateKey: opts.updateKey, CA: opts.ca, CANames: opts.caNames}
	if opts.root == "" {
		iopts.Systemctl = install.ExecSystemctl
	}
	if opts.tokenFile != "" {
		if iopts.Token, err = readTokenFlag(opts.tokenFile, opts.streams.In); err != nil {
			return usageErr(err)
		}
	}
	if opts.spoolGroup != "" {
		if iopts.SpoolGroup, err = lookupGroup(opts.spoolGroup); err != nil {
			return usageErr(err)
		}
	}
	_, err = install.Run(ctx, iopts)
	var ue *install.UsageError
	if errors.As(err, &ue) {
		return usageErr(err)
	}
	return err
}

func readTokenFlag(path string, stdin io.Reader) ([]byte, error) {
	in, name := stdin, "standard input"
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("--token-file: %w", err)
		}
		defer f.Close()
		in, name = f, path
	}
	tok, err := install.ReadToken(in)
	if err != nil {
		return nil, fmt.Errorf("--token-file %s: %w", name, err)
	}
	return tok, nil
}

func lookupGroup(name string) (*install.Group, error) {
	g, err := user.LookupGroup(name)
	if err != nil {
		return nil, fmt.Errorf("--spool-group: %w (create it first: groupadd --system %s)", err, name)
	}
	gid, err := strconv.Atoi(g.Gid)
	if err != nil {
		return nil, fmt.Errorf("--spool-group %s: gid %q is not a number", name, g.Gid)
	}
	return &install.Group{Name: g.Name, GID: gid}, nil
}

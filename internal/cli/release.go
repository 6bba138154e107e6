package cli

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/cis490/cis490/internal/release"
)

// envReleasePassword is where keygen and sign find the signing key's password when
// a script runs them.
const envReleasePassword = "CIS490_RELEASE_PASSWORD"

func newReleaseCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "release",
		Short: "Sign releases and publish them to the receiver (for cis490 update)",
		Long: `Make and publish the signed releases that lab hosts update to (cis490 update).

On the maintainer's laptop: release keygen once, then per release goreleaser, release
sign dist/ and release publish dist/ --remote. The signing key never leaves the laptop:
the receiver and every host check the signature with the public key only
(serve.update.public_keys, update.public_keys), so a receiver that is broken into can
withhold or replay releases, never make a host run code nobody signed. The files are
minisign's: minisign -Vm dist/release/manifest.json -p release.pub checks a manifest.`,
	}
	cmd.AddCommand(newReleaseKeygenCmd(a), newReleaseSignCmd(a), newReleasePublishCmd(a), newReleaseListCmd(a))
	return cmd
}

// defaultKeyPath is where keygen writes the secret key and sign reads it.
func defaultKeyPath() string {
	dir := os.Getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home, _ := os.UserHomeDir()
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "cis490", "release.key")
}

type releaseKeygenOptions struct {
	streams      Streams
	out          string
	unencrypted  bool
	passwordFile string
	getenv       func(string) string
}

func newReleaseKeygenCmd(a *app) *cobra.Command {
	opts := &releaseKeygenOptions{streams: a.streams, getenv: os.Getenv}
	cmd := &cobra.Command{
		Use:   "keygen",
		Short: "Make a release signing key pair; print the public key",
		Long: `Make a minisign key pair for signing releases: the secret key at --out (mode
0600), the public key beside it (.pub). The public key alone is printed on standard
output, the line to put in update.public_keys on the lab hosts and in
serve.update.public_keys on the receiver (PUB=$(cis490 release keygen) works).

The secret key is encrypted with a password: from --password-file, else
$` + envReleasePassword + `, else asked twice on the terminal. --unencrypted writes it
in clear (keep it on an encrypted disk). An existing key is never overwritten.

Exit codes: 0 made, 1 failure, 2 usage (no password and no terminal).`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error { return runReleaseKeygen(opts) },
	}
	cmd.Flags().StringVar(&opts.out, "out", "", "where to write the secret key (default: $XDG_CONFIG_HOME/cis490/release.key); the public key goes beside it as .pub")
	cmd.Flags().BoolVar(&opts.unencrypted, "unencrypted", false, "write the secret key without a password")
	cmd.Flags().StringVar(&opts.passwordFile, "password-file", "", "read the password from this file's first line (scripts)")
	return cmd
}

func runReleaseKeygen(opts *releaseKeygenOptions) error {
	if opts.out == "" {
		opts.out = defaultKeyPath()
	}
	password := ""
	if !opts.unencrypted {
		var err error
		if password, err = readPassword(opts.streams, opts.passwordFile, opts.getenv, true); err != nil {
			return err
		}
	}
	pub, pubPath, err := release.Keygen(opts.out, password)
	if err != nil {
		return err
	}
	how := "encrypted with the password"
	if password == "" {
		how = "NOT encrypted"
	}
	fmt.Fprintf(opts.streams.Err, "secret key %s (%s), public key %s, key id %s\n"+
		"put the public key in update.public_keys on the lab hosts and serve.update.public_keys on the receiver\n",
		opts.out, how, pubPath, release.KeyID(pub.ID()))
	_, err = fmt.Fprintln(opts.streams.Out, pub.String())
	return err
}

// readPassword reads the signing key's password: --password-file, the variable, or
// the terminal (twice when confirm, for a new key).
func readPassword(streams Streams, file string, getenv func(string) string, confirm bool) (string, error) {
	if file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return "", usageErr(fmt.Errorf("--password-file: %w", err))
		}
		line, _, _ := strings.Cut(string(data), "\n")
		if line = strings.TrimRight(line, "\r"); line == "" {
			return "", usageErr(fmt.Errorf("--password-file %s: the first line is empty", file))
		}
		return line, nil
	}
	if p := getenv(envReleasePassword); p != "" {
		return p, nil
	}
	in, ok := streams.In.(*os.File)
	if !ok || !term.IsTerminal(int(in.Fd())) {
		return "", usageErr(errors.New("no password for the signing key: give --password-file or $" + envReleasePassword + ", run on a terminal, or (keygen) pass --unencrypted"))
	}
	ask := func(prompt string) (string, error) {
		fmt.Fprint(streams.Err, prompt)
		p, err := term.ReadPassword(int(in.Fd()))
		fmt.Fprintln(streams.Err)
		return string(p), err
	}
	p, err := ask("password for the signing key: ")
	if err != nil {
		return "", err
	}
	if p == "" {
		return "", usageErr(errors.New("an empty password: use --unencrypted for a key without one"))
	}
	if confirm {
		again, err := ask("the same password again: ")
		if err != nil {
			return "", err
		}
		if again != p {
			return "", usageErr(errors.New("the passwords differ; nothing was written"))
		}
	}
	return p, nil
}

type releaseSignOptions struct {
	streams      Streams
	key          string
	passwordFile string
	seq          int64
	getenv       func(string) string
	now          func() time.Time
}

func newReleaseSignCmd(a *app) *cobra.Command {
	opts := &releaseSignOptions{streams: a.streams, getenv: os.Getenv, now: time.Now}
	cmd := &cobra.Command{
		Use:   "sign DIR",
		Short: "Sign goreleaser's output: write manifest.json and manifest.json.minisig",
		Long: `Sign the release goreleaser built in DIR (dist/, or dist/release/ itself): read its
commit and version (metadata.json) and binaries (artifacts.json: linux amd64, arm64 and
armv7), and write manifest.json (commit, version, seq, and each binary's goarch, goarm,
file name, SHA-256 and size) and its minisign signature manifest.json.minisig there.
When DIR has a binary for this machine, it is run first and must name the same commit.

--seq orders releases: a host refuses one lower than the last it applied, so the
receiver cannot replay an old release to it. It defaults to the time in seconds, which
grows by itself; re-signing an old commit later gives it a higher seq, which is how the
fleet is moved back on purpose.

Exit codes: 0 signed, 1 failure (an unstamped build, a binary that says another
commit), 2 usage.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runReleaseSign(cmd, opts, args[0]) },
	}
	cmd.Flags().StringVar(&opts.key, "key", "", "the secret key from cis490 release keygen (default: $XDG_CONFIG_HOME/cis490/release.key)")
	cmd.Flags().StringVar(&opts.passwordFile, "password-file", "", "read the key's password from this file's first line (scripts)")
	cmd.Flags().Int64Var(&opts.seq, "seq", 0, "the release's seq (default: the time in seconds)")
	return cmd
}

func runReleaseSign(cmd *cobra.Command, opts *releaseSignOptions, dir string) error {
	if opts.key == "" {
		opts.key = defaultKeyPath()
	}
	d, err := release.Discover(dir)
	if err != nil {
		return err
	}
	checked, err := d.CheckNative(cmd.Context())
	if err != nil {
		return err
	}
	enc, err := release.Encrypted(opts.key)
	if err != nil {
		return usageErr(fmt.Errorf("--key %s: %w (make one with `cis490 release keygen`)", opts.key, err))
	}
	password := ""
	if enc {
		if password, err = readPassword(opts.streams, opts.passwordFile, opts.getenv, false); err != nil {
			return err
		}
	}
	key, err := release.LoadSecretKey(opts.key, password)
	if err != nil {
		return err
	}
	now := opts.now()
	seq := opts.seq
	if seq == 0 {
		seq = now.Unix()
	}
	if seq < 0 {
		return usageErr(fmt.Errorf("--seq %d must be positive", seq))
	}
	m, err := release.SignDist(d, key, seq, now)
	if err != nil {
		return err
	}
	if !checked {
		fmt.Fprintln(opts.streams.Err, "no binary for this machine in "+d.Dir+": the commit was taken from metadata.json unchecked")
	}
	w := bufio.NewWriter(opts.streams.Out)
	fmt.Fprintf(w, "signed %s: commit %s, version %s, seq %d, key %s\n", filepath.Join(d.Dir, release.ManifestName), m.Commit, m.Version, m.Seq, release.KeyID(key.ID()))
	for _, t := range m.Targets {
		fmt.Fprintf(w, "  %-14s %-22s %s %d bytes\n", t.Platform(), t.File, t.SHA256[:16], t.Size)
	}
	return w.Flush()
}

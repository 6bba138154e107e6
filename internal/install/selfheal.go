package install

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"aead.dev/minisign"

	"github.com/cis490/cis490/internal/ca"
	"github.com/cis490/cis490/internal/config"
)

// setUpdateKey is --update-key: the release key goes into a new configuration; an
// existing one must already have it (install never edits the operator's file), else
// the autoupdate would silently stay off.
func (p *plan) setUpdateKey(key string, cfg *config.Config, cfgExists bool, set map[string]any) error {
	key = strings.TrimSpace(key)
	want, err := (config.Update{PublicKeys: key}).Keys()
	if err != nil {
		return usage("--update-key: %w", err)
	}
	if cfgExists {
		have, _ := cfg.Update.Keys() // checked when the configuration loaded
		if slices.ContainsFunc(have, func(k minisign.PublicKey) bool { return k.Equal(want[0]) }) {
			return nil
		}
		return usage("--update-key: %s exists and its update.public_keys does not hold this key, and install never edits a configuration: "+
			"add it under [update] (public_keys = %q), then run install again", ConfigPath, key)
	}
	set["update.public_keys"] = key
	cfg.Update.PublicKeys = key
	return nil
}

// receiverDataDir is the data folder the receiver's units use: serve.data_dir when
// the configuration sets it, else their StateDirectory.
func receiverDataDir(cfg config.Config) string {
	if cfg.Serve.DataDir != config.Default().Serve.DataDir {
		return cfg.Serve.DataDir
	}
	return StateDir
}

// setCAFiles is --ca's configuration: the receiver serves the certificate the CA
// issues it and verifies client certificates against the CA. A new configuration
// gets the three lines; an existing one that lacks them gets a note with them.
func (p *plan) setCAFiles(cfg *config.Config, cfgExists bool, set map[string]any) {
	dir := filepath.Join(receiverDataDir(*cfg), "ca")
	server, caCert := filepath.Join(dir, ca.ServerFile), filepath.Join(dir, ca.CertFile)
	want := map[string]string{"serve.tls.cert_file": server, "serve.tls.key_file": server, "serve.tls.client_ca_file": caCert}
	if !cfgExists {
		for k, v := range want {
			set[k] = v
		}
		cfg.Serve.TLS.CertFile, cfg.Serve.TLS.KeyFile, cfg.Serve.TLS.ClientCAFile = server, server, caCert
		return
	}
	t := cfg.Serve.TLS
	if t.CertFile != server || t.KeyFile != server || t.ClientCAFile != caCert {
		p.notes = append(p.notes, fmt.Sprintf("to serve the CA's certificates, set under [serve.tls] in %s: cert_file = %q, key_file = %q, client_ca_file = %q (append a CA you used before to client_ca_file's file to keep its certificates working), then systemctl restart cis490-receiver",
			ConfigPath, server, server, caCert))
	}
}

// caStep makes data_dir/ca/ the lab's CA once; an existing CA is never replaced.
type caStep struct {
	dir   string
	host  string
	names []string
}

func (s *caStep) check() (change, error) {
	c := change{target: s.dir, detail: "the lab's CA (ECDSA P-256, 10 years) and the receiver's own server certificate"}
	entries, err := os.ReadDir(s.dir)
	switch {
	case err == nil && len(entries) > 0:
		c.action, c.detail = keep, "a CA exists; install never replaces one"
	case err == nil || errors.Is(err, os.ErrNotExist):
		c.action = create
	default:
		return c, err
	}
	return c, nil
}

func (s *caStep) apply(c change) error {
	if c.action != create {
		return nil
	}
	_, err := ca.Init(s.dir, ca.InitOptions{Host: s.host, ServerNames: s.names})
	if errors.Is(err, ca.ErrExists) {
		return nil
	}
	return err
}

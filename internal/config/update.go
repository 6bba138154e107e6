package config

import "github.com/cis490/cis490/internal/release"

// Update is [update] on a lab host: the keys a release must be signed by for `cis490
// update` to run it, and where it keeps its state (SPEC §4.5).
type Update struct {
	PublicKeys string `mapstructure:"public_keys" help:"minisign public keys (cis490 release keygen prints one) a release must be signed by, separated by commas or spaces; any one will do, so add the new key before signing with it; empty turns autoupdate off"`
	StateDir   string `mapstructure:"state_dir" help:"where cis490 update keeps its lock, its state file (last result, last seq applied) and the previous binary for rollback"`
}

// ServeUpdate is [serve.update]: the keys a published release must be signed by.
type ServeUpdate struct {
	PublicKeys string `mapstructure:"public_keys" help:"minisign public keys a release must be signed by to be published here (cis490 release publish), separated by commas or spaces; empty refuses every release"`
}

// Keys are the public keys of update.public_keys.
func (u Update) Keys() (release.Keys, error) { return release.ParseKeyList(u.PublicKeys) }

// Keys are the public keys of serve.update.public_keys.
func (u ServeUpdate) Keys() (release.Keys, error) { return release.ParseKeyList(u.PublicKeys) }

// defaultUpdateDir is where the autoupdate service (StateDirectory=cis490/update) and
// doctor-check, both root, find the state; the same for everyone, so the generated
// documentation does not depend on who generates it.
func defaultUpdateDir() string { return "/var/lib/cis490/update" }

func (c Config) checkUpdate() []error {
	var problems []error
	if _, err := c.Update.Keys(); err != nil {
		problems = append(problems, bad("update.public_keys", "%v", err))
	}
	if _, err := c.Serve.Update.Keys(); err != nil {
		problems = append(problems, bad("serve.update.public_keys", "%v", err))
	}
	if c.Update.StateDir == "" {
		problems = append(problems, bad("update.state_dir", "empty"))
	}
	return problems
}

package config

import (
	"net"
	"strings"
	"time"

	"github.com/cis490/cis490/internal/protocol"
)

// CA is [serve.ca]: how the receiver issues certificates when it is the lab's CA
// (SPEC §4.6). Without data_dir/ca/ these keys do nothing.
type CA struct {
	Lifetime  time.Duration `mapstructure:"lifetime" help:"how long a lab host's client certificate is valid; cert renew renews it past two thirds"`
	Bootstrap string        `mapstructure:"bootstrap" help:"may a host get a certificate with its token alone: when-none-valid (it has no unexpired, unrevoked one), always or never; cis490 cert allow-bootstrap HOST opens it once"`
	// ServerNames are the Pi's own certificate's names; empty keeps those it has
	// (cis490 ca init detects them).
	ServerNames string `mapstructure:"server_names" help:"DNS names and IP addresses of the receiver's own certificate, comma-separated (empty: keep the certificate's, which ca init detected or was given)"`
}

// Bootstrap policies for [serve.ca] bootstrap.
const (
	BootstrapWhenNoneValid = "when-none-valid"
	BootstrapAlways        = "always"
	BootstrapNever         = "never"
)

// maxCALifetime: no client certificate outlives the CA (10 years).
const maxCALifetime = 10 * 365 * 24 * time.Hour

func (c CA) check() []error {
	var problems []error
	switch {
	case c.Lifetime < time.Hour:
		problems = append(problems, bad("serve.ca.lifetime", "%v (at least 1h: a renewal keeps the replaced certificate working for an hour)", c.Lifetime))
	case c.Lifetime > maxCALifetime:
		problems = append(problems, bad("serve.ca.lifetime", "%v (at most 87600h, the CA's own 10 years)", c.Lifetime))
	}
	switch c.Bootstrap {
	case BootstrapWhenNoneValid, BootstrapAlways, BootstrapNever:
	default:
		problems = append(problems, bad("serve.ca.bootstrap", "%q (use when-none-valid, always or never)", c.Bootstrap))
	}
	if _, err := SplitNames(c.ServerNames); err != nil {
		problems = append(problems, bad("serve.ca.server_names", "%v", err))
	}
	return problems
}

// SplitNames splits a list of DNS names and IP addresses separated by commas or
// spaces, checking each.
func SplitNames(list string) ([]string, error) {
	var names []string
	for _, f := range strings.FieldsFunc(list, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		if net.ParseIP(f) == nil {
			if _, ok := protocol.NormalizeHost(f); !ok {
				return nil, &nameError{f}
			}
		}
		names = append(names, f)
	}
	return names, nil
}

type nameError struct{ name string }

func (e *nameError) Error() string {
	return "\"" + e.name + "\" is neither a host name nor an IP address"
}

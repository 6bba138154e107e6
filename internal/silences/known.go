package silences

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cis490/cis490/internal/protocol"
	"github.com/cis490/cis490/internal/tokens"
)

// Known says which hosts a silence may name: a typo (lab-7 for lab-07) would
// otherwise silence nothing while the maintainer believes the host is covered.
type Known struct {
	DataDir string
	// TokensFile is serve.tokens_file; "" in open mode.
	TokensFile string
	// Self is the receiver's own host name (its row in fleet health); "" if unknown.
	Self string
}

// Check returns nil when host is one the receiver knows: the receiver itself, a host
// with a live host token (the roster), a host with a doctor report in host-health/,
// or a host fleet health keeps state for. Otherwise the error (ErrInvalid) says where
// it looked.
func (k Known) Check(name string, now time.Time) error {
	host, ok := protocol.NormalizeHost(name)
	if !ok {
		return invalidError(fmt.Sprintf("host %q is not an RFC 1123 host name: use the host's fleet name", name))
	}
	if host == strings.ToLower(k.Self) {
		return nil
	}
	var looked []string
	if k.TokensFile != "" {
		set, err := tokens.Load(k.TokensFile)
		if err != nil {
			return fmt.Errorf("check host %s: %w", host, err)
		}
		for _, h := range set.Hosts(now) {
			if h.Host == host {
				return nil
			}
		}
		looked = append(looked, "no live host token in "+k.TokensFile)
	}
	reports := filepath.Join(k.DataDir, "host-health")
	// host is a validated name: no separator, no "..".
	if fi, err := os.Stat(filepath.Join(reports, host+".json")); err == nil && fi.Mode().IsRegular() {
		return nil
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("check host %s: %w", host, err)
	}
	looked = append(looked, "no doctor report in "+reports)
	seen, err := stateHosts(filepath.Join(k.DataDir, "fleet-health.json"))
	if err != nil {
		return fmt.Errorf("check host %s: %w", host, err)
	}
	if seen[host] {
		return nil
	}
	looked = append(looked, "fleet health has not seen it")
	return invalidError(fmt.Sprintf("host %s is unknown to this receiver (%s): check the name; `cis490 fleet-health check` lists the hosts",
		host, strings.Join(looked, ", ")))
}

// stateHosts reads the host names of fleet health's state, fleet-health.json. Only the
// keys of its "hosts" object are read; fleethealth owns the rest of the document
// (silences must not import it: fleethealth imports silences).
func stateHosts(path string) (map[string]bool, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("fleet-health state: %w", err)
	}
	var doc struct {
		Hosts map[string]json.RawMessage `json:"hosts"`
	}
	if json.Unmarshal(data, &doc) != nil {
		// Damaged: fleet-health check says so on its own; the other sources still count.
		return nil, nil
	}
	seen := make(map[string]bool, len(doc.Hosts))
	for h := range doc.Hosts {
		seen[strings.ToLower(h)] = true
	}
	return seen, nil
}

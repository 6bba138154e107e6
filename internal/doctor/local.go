package doctor

import (
	"fmt"
	"os"
	"strings"

	"github.com/cis490/cis490/internal/buildinfo"
	"github.com/cis490/cis490/internal/config"
	"github.com/cis490/cis490/internal/protocol"
)

func checkConfig(cfg config.Config, loadErr error) Check {
	if loadErr != nil {
		return failed(loadErr.Error(),
			"fix the key or file named above in lab-host.toml (or the CIS490_* variable); the README lists every key and its default",
			map[string]any{"searched": config.SearchPaths()})
	}
	if cfg.File == "" {
		return ok("no configuration file found: defaults and CIS490_* variables apply",
			map[string]any{"file": "", "searched": config.SearchPaths()})
	}
	return ok("loaded "+cfg.File, map[string]any{"file": cfg.File})
}

// genericNames are what a machine is called before anyone names it; two hosts
// reporting as the same one would hide each other on the receiver.
var genericNames = map[string]bool{"localhost": true, "localhost.localdomain": true}

func checkHostName(cfg config.Config) Check {
	osName, _ := os.Hostname()
	details := map[string]any{"host": cfg.Host, "os_hostname": osName}
	host, valid := protocol.NormalizeHost(cfg.Host)
	switch {
	case !valid:
		return failed(fmt.Sprintf("host %q is not an RFC 1123 host name", cfg.Host),
			`set host = "lab-07" (letters, digits, hyphens, dots) in lab-host.toml`, details)
	case genericNames[host]:
		return warned(fmt.Sprintf("host is %q, a name many machines share: the receiver could not tell this host from others", host),
			`set host = "<this machine's fleet name>" in lab-host.toml, or name the machine with `+"`hostnamectl set-hostname`", details)
	}
	summary := "this host is " + host
	if short, _, _ := strings.Cut(strings.ToLower(osName), "."); short != "" && short != host {
		summary += " (the OS calls it " + osName + ")"
	}
	return ok(summary, details)
}

func checkVersion(b buildinfo.Info) Check {
	details := map[string]any{"version": b.Version, "commit": b.Commit, "modified": b.Modified, "date": b.Date, "go_version": b.GoVersion}
	if b.Commit == "" {
		return warned("cis490 "+b.Version+" carries no commit stamp: the receiver's version gate cannot tell which code this host runs",
			"install a release build of cis490 (the release build stamps its commit), or build it from a git checkout", details)
	}
	summary := fmt.Sprintf("cis490 %s, commit %s", b.Version, b.Commit)
	if b.Modified {
		summary += " (built from a modified work tree)"
	}
	return ok(summary, details)
}

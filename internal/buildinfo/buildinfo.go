// Package buildinfo says which code this binary is: the version and commit stamped by
// the release build, or else the VCS revision Go recorded when it built the binary.
package buildinfo

import (
	"runtime"
	"runtime/debug"
	"strings"
)

// Set by the release build: -ldflags "-X github.com/cis490/cis490/internal/buildinfo.version=…".
var (
	version = ""
	commit  = ""
	date    = ""
)

// Info describes the running binary.
type Info struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	Date      string `json:"date"`
	GoVersion string `json:"go_version"`
	// Modified is true when Go recorded uncommitted changes in the work tree.
	Modified bool `json:"modified"`
}

// Get returns the stamped values, filled in from the Go build information where the
// release build stamped nothing.
func Get() Info {
	info := Info{Version: version, Commit: strings.ToLower(commit), Date: date, GoVersion: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if ok {
		if info.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			info.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if info.Commit == "" {
					info.Commit = s.Value
				}
			case "vcs.time":
				if info.Date == "" {
					info.Date = s.Value
				}
			case "vcs.modified":
				info.Modified = s.Value == "true"
			}
		}
	}
	if info.Version == "" {
		info.Version = "dev"
	}
	return info
}

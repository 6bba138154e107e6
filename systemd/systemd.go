// Package systemd holds cis490's unit files. The binary embeds them, so `cis490
// install` writes exactly the units in this folder, and the release packages ship the
// same files: one source.
package systemd

import (
	"embed"
	"fmt"
	"io/fs"
	"sort"
)

const (
	// BinaryPath is where every unit runs cis490 from, and where install and the .deb
	// put the binary.
	BinaryPath = "/usr/bin/cis490"
	// PackageUnitDir is where the .deb puts these units (.goreleaser.yaml).
	PackageUnitDir = "/usr/lib/systemd/system"
)

//go:embed *.service *.timer
var units embed.FS

// Names lists every unit file, sorted.
func Names() []string {
	entries, err := fs.ReadDir(units, ".")
	if err != nil {
		panic(err) // the embedded folder always reads
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

// Unit returns the unit file called name.
func Unit(name string) ([]byte, error) {
	b, err := units.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("no unit %s in the binary: %w", name, err)
	}
	return b, nil
}

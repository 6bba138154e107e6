// Package release is what a signed cis490 release is (SPEC §4.5): the manifest that
// names a commit, its version, a monotonic seq and one binary a target, the minisign
// key pair that signs it offline, the signing of goreleaser's output, the check of a
// signature against one or more public keys, and the releases/ folder of the
// receiver's data_dir that stores published ones. Both sides of the wire use it: the
// receiver checks what is published, `cis490 update` checks what it runs.
package release

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/cis490/cis490/internal/protocol"
)

// Schema names the manifest's layout.
const Schema = "cis490.release/v1"

// The names a release's folder and upload use for the manifest and its signature.
const (
	ManifestName  = "manifest.json"
	SignatureName = "manifest.json.minisig"
)

// maxManifestBytes bounds what is read of a manifest or a signature: a few targets
// take a kilobyte.
const maxManifestBytes = 64 << 10

// Manifest is manifest.json. The signature covers its bytes exactly as written, so a
// reader verifies the bytes first and parses them after (Verify).
type Manifest struct {
	Schema  string `json:"schema"`
	Commit  string `json:"commit"`
	Version string `json:"version"`
	// Seq grows with every release signed: a host refuses one lower than the last it
	// applied, so a receiver cannot replay an old release to it.
	Seq       int64     `json:"seq"`
	CreatedAt time.Time `json:"created_at"`
	Targets   []Target  `json:"targets"`
}

// Target is one binary of a release.
type Target struct {
	GOOS   string `json:"goos"`
	GOARCH string `json:"goarch"`
	// GOARM is "7" for the 32-bit Pis' build, "" for every other architecture.
	GOARM  string `json:"goarm"`
	File   string `json:"file"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// Platform is "linux/arm/v7" or "linux/amd64": how people name a target.
func (t Target) Platform() string {
	p := t.GOOS + "/" + t.GOARCH
	if t.GOARM != "" {
		p += "/v" + t.GOARM
	}
	return p
}

var fileRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$`)

// ValidFile says whether name may be a binary's name in a release's folder: one plain
// name, never the manifest's or its signature's.
func ValidFile(name string) bool {
	return fileRE.MatchString(name) && name != ManifestName && name != SignatureName
}

// Parse reads and checks a manifest's bytes. It does not verify a signature: call
// Verify, which calls Parse on the bytes it verified.
func Parse(data []byte) (Manifest, error) {
	var m Manifest
	if len(data) > maxManifestBytes {
		return m, fmt.Errorf("manifest is over %d bytes", maxManifestBytes)
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return m, fmt.Errorf("manifest is not JSON: %w", err)
	}
	return m, m.check()
}

func (m *Manifest) check() error {
	if m.Schema != Schema {
		return fmt.Errorf("manifest schema is %q, want %q", m.Schema, Schema)
	}
	c, ok := protocol.NormalizeCommit(m.Commit)
	if !ok || len(c) != 40 {
		return fmt.Errorf("manifest commit %q is not a full commit id (40 hex digits)", m.Commit)
	}
	m.Commit = c
	if m.Seq <= 0 {
		return fmt.Errorf("manifest seq %d must be positive", m.Seq)
	}
	if len(m.Targets) == 0 {
		return errors.New("manifest lists no targets")
	}
	var files, platforms []string
	for _, t := range m.Targets {
		switch {
		case !ValidFile(t.File):
			return fmt.Errorf("manifest target file %q is not a plain file name", t.File)
		case !protocol.ValidSHA256(t.SHA256):
			return fmt.Errorf("manifest target %s: sha256 %q is not 64 lowercase hex digits", t.File, t.SHA256)
		case t.Size <= 0:
			return fmt.Errorf("manifest target %s: size %d must be positive", t.File, t.Size)
		case t.GOOS == "" || t.GOARCH == "":
			return fmt.Errorf("manifest target %s names no goos or goarch", t.File)
		case slices.Contains(files, t.File):
			return fmt.Errorf("manifest names file %s twice", t.File)
		case slices.Contains(platforms, t.Platform()):
			return fmt.Errorf("manifest has two binaries for %s", t.Platform())
		}
		files, platforms = append(files, t.File), append(platforms, t.Platform())
	}
	return nil
}

// Marshal is the manifest's bytes as sign writes them.
func (m Manifest) Marshal() ([]byte, error) {
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}

// ErrNoTarget is Pick's refusal: the release has no binary for this platform.
var ErrNoTarget = errors.New("the release has no binary for this platform")

// Pick returns the target of exactly goos, goarch and goarm. There is no fallback: an
// arm64 binary does not run on a 32-bit Pi, nor an ARMv7 one on ARMv6.
func (m Manifest) Pick(goos, goarch, goarm string) (Target, error) {
	want := Target{GOOS: goos, GOARCH: goarch, GOARM: goarm}.Platform()
	var have []string
	for _, t := range m.Targets {
		if t.Platform() == want {
			return t, nil
		}
		have = append(have, t.Platform())
	}
	return Target{}, fmt.Errorf("%w: this host runs %s, release %s has %v", ErrNoTarget, want, m.Commit, have)
}

// File returns the target stored as name.
func (m Manifest) File(name string) (Target, bool) {
	for _, t := range m.Targets {
		if t.File == name {
			return t, true
		}
	}
	return Target{}, false
}

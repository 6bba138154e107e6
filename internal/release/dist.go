package release

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/google/renameio/v2"

	"github.com/cis490/cis490/internal/protocol"
)

// Binary is one binary of goreleaser's output, found by Discover.
type Binary struct {
	Target
	// Path is where it is on this machine.
	Path string
}

// Dist is what goreleaser built: its commit and version, and the binaries.
type Dist struct {
	Dir      string
	Commit   string
	Version  string
	Binaries []Binary
}

// ResolveDir is the folder goreleaser wrote to: dir itself, or dir/release when dir
// is the repository's dist/ (.goreleaser.yaml's dist: dist/release).
func ResolveDir(dir string) string {
	if _, err := os.Stat(filepath.Join(dir, "metadata.json")); err != nil {
		if _, err := os.Stat(filepath.Join(dir, "release", "metadata.json")); err == nil {
			return filepath.Join(dir, "release")
		}
	}
	return dir
}

// goreleaser's metadata.json and artifacts.json, the parts read here.
type (
	grMetadata struct {
		ProjectName string `json:"project_name"`
		Version     string `json:"version"`
		Commit      string `json:"commit"`
	}
	grArtifact struct {
		Name   string `json:"name"`
		Path   string `json:"path"`
		Type   string `json:"type"`
		GOOS   string `json:"goos"`
		GOARCH string `json:"goarch"`
		GOARM  string `json:"goarm"`
	}
)

// Discover reads goreleaser's output in dir (ResolveDir): the commit and version from
// metadata.json, the binaries from artifacts.json, each hashed.
func Discover(dir string) (Dist, error) {
	dir = ResolveDir(dir)
	d := Dist{Dir: dir}
	var meta grMetadata
	if err := readJSON(filepath.Join(dir, "metadata.json"), &meta); err != nil {
		return d, fmt.Errorf("%w: is %s goreleaser's output? run `goreleaser release --clean` first", err, dir)
	}
	commit, ok := protocol.NormalizeCommit(meta.Commit)
	if !ok || len(commit) != 40 {
		return d, fmt.Errorf("%s: goreleaser recorded commit %q, not a full commit id: its binaries carry no commit stamp"+
			" (a snapshot of a repository without a git remote records \"none\"); build the release from a clone with its remote", dir, meta.Commit)
	}
	d.Commit, d.Version = commit, meta.Version
	var artifacts []grArtifact
	if err := readJSON(filepath.Join(dir, "artifacts.json"), &artifacts); err != nil {
		return d, err
	}
	for _, a := range artifacts {
		if a.Type != "Binary" {
			continue
		}
		// artifacts.json names paths from where goreleaser ran; the binary is in
		// its target's folder of dir.
		path := filepath.Join(dir, filepath.Base(filepath.Dir(a.Path)), filepath.Base(a.Path))
		t := Target{GOOS: a.GOOS, GOARCH: a.GOARCH, GOARM: a.GOARM}
		t.File = "cis490-" + t.GOOS + "-" + t.GOARCH
		if t.GOARM != "" {
			t.File += "v" + t.GOARM
		}
		sum, size, err := HashFile(path)
		if err != nil {
			return d, err
		}
		t.SHA256, t.Size = sum, size
		d.Binaries = append(d.Binaries, Binary{Target: t, Path: path})
	}
	if len(d.Binaries) == 0 {
		return d, fmt.Errorf("%s/artifacts.json lists no binary", dir)
	}
	return d, nil
}

func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// HashFile returns the SHA-256 and size of the file at path.
func HashFile(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("read %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// Manifest is the manifest of d with seq.
func (d Dist) Manifest(seq int64, now time.Time) Manifest {
	m := Manifest{Schema: Schema, Commit: d.Commit, Version: d.Version, Seq: seq, CreatedAt: now.UTC().Truncate(time.Second)}
	for _, b := range d.Binaries {
		m.Targets = append(m.Targets, b.Target)
	}
	return m
}

// CheckNative runs the binary of d built for this machine, when there is one, and
// checks that its `version --json` names d's commit: a dist folder whose metadata
// does not match its binaries is never signed. It reports whether it could check.
func (d Dist) CheckNative(ctx context.Context) (bool, error) {
	for _, b := range d.Binaries {
		if b.GOOS != runtime.GOOS || b.GOARCH != runtime.GOARCH || b.GOARM != RunningGOARM() {
			continue
		}
		got, err := VersionOf(ctx, b.Path)
		if err != nil {
			return true, err
		}
		if got.Commit != d.Commit {
			return true, fmt.Errorf("%s says it is commit %q, but %s/metadata.json says %s: rebuild the release", b.Path, got.Commit, d.Dir, d.Commit)
		}
		return true, nil
	}
	return false, nil
}

// Stamp is what `cis490 version --json` prints, the part a release check reads.
type Stamp struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
}

// VersionOf runs `bin version --json` (within 30 seconds) and returns what it says.
func VersionOf(ctx context.Context, bin string) (Stamp, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "version", "--json")
	cmd.Env = append(os.Environ(), "CIS490_CONFIG=/dev/null")
	out, err := cmd.Output()
	var s Stamp
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return s, fmt.Errorf("`%s version --json` failed (%v): %s", bin, err, firstLine(ee.Stderr))
		}
		return s, fmt.Errorf("run %s: %w", bin, err)
	}
	if err := json.Unmarshal(out, &s); err != nil {
		return s, fmt.Errorf("`%s version --json` printed no JSON: %w", bin, err)
	}
	return s, nil
}

func firstLine(b []byte) string {
	for i, c := range b {
		if c == '\n' {
			return string(b[:i])
		}
	}
	return string(b)
}

// SignDist writes manifest.json and manifest.json.minisig into d.Dir, replacing any
// from an earlier signing, and returns the manifest.
func SignDist(d Dist, key SecretKey, seq int64, now time.Time) (Manifest, error) {
	m := d.Manifest(seq, now)
	if err := m.check(); err != nil {
		return m, err
	}
	data, err := m.Marshal()
	if err != nil {
		return m, err
	}
	sig := Sign(key, data, m, now)
	// The signature first: a reader that finds a manifest without its own
	// signature beside it refuses it, never an old signature with a new manifest.
	if err := renameio.WriteFile(filepath.Join(d.Dir, SignatureName), sig, 0o644); err != nil {
		return m, err
	}
	if err := renameio.WriteFile(filepath.Join(d.Dir, ManifestName), data, 0o644); err != nil {
		return m, err
	}
	return m, nil
}

// RunningGOARM is the GOARM this binary was built with ("7" for the 32-bit Pis'
// build), from the build information Go records; "" on every other architecture.
func RunningGOARM() string {
	if runtime.GOARCH != "arm" {
		return ""
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	for _, s := range bi.Settings {
		if s.Key == "GOARM" {
			v, _, _ := strings.Cut(s.Value, ",") // "7,softfloat"
			return v
		}
	}
	return ""
}

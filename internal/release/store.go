package release

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cis490/cis490/internal/fsutil"
)

// A published release is one folder, data_dir/releases/<commit>/, holding
// manifest.json, its .minisig and the binaries under the manifest's names. It is
// built whole in data_dir/tmp/ (which the receiver sweeps at start, so a crash leaves
// nothing behind) and renamed into place: a reader sees all of a release or none, and
// of two uploads of one commit exactly one rename wins.
//
// An upload is one tar stream (PUT /v1/releases/{commit}): the manifest and its
// signature first, then the binaries. One request is one atomic publication with
// nothing to clean up between requests, and the signature is checked before a byte of
// a binary is written.

// Errors Put returns, each an HTTP status for the receiver.
var (
	ErrBadUpload  = errors.New("bad release upload")                                  // 400
	ErrNotAllowed = errors.New("the version gate does not allow this commit")         // 409
	ErrConflict   = errors.New("another release of this commit is already published") // 409
	ErrDigest     = errors.New("a binary does not match the manifest")                // 422
	ErrNoSpace    = errors.New("not enough free disk space")                          // 507
)

// Store is data_dir/releases.
type Store struct {
	dir, tmp string
}

// OpenStore returns the releases folder of dataDir; it creates nothing until a Put.
func OpenStore(dataDir string) *Store {
	return &Store{dir: filepath.Join(dataDir, "releases"), tmp: filepath.Join(dataDir, "tmp")}
}

// Dir is data_dir/releases.
func (s *Store) Dir() string { return s.dir }

// PutOptions are what Put checks an upload against.
type PutOptions struct {
	Keys Keys
	// Allowed says whether the version gate allows commit; nil allows every commit.
	Allowed func(commit string) bool
	// CheckFree refuses (with an error wrapping ErrNoSpace) when writing n more bytes
	// would leave too little disk; nil checks nothing.
	CheckFree func(n int64) error
	Now       func() time.Time
}

// Put reads a release upload (a tar stream) for commit and publishes it. created is
// false when this exact release was already published. Nothing is left behind when
// it fails.
func (s *Store) Put(ctx context.Context, commit string, body io.Reader, opts PutOptions) (m Manifest, created bool, err error) {
	tr := tar.NewReader(body)
	manifest, sig, err := readHead(tr)
	if err != nil {
		return m, false, err
	}
	if m, err = Verify(manifest, sig, opts.Keys); err != nil {
		return m, false, err
	}
	if m.Commit != commit {
		return m, false, fmt.Errorf("%w: the manifest is for commit %s, the path names %s", ErrBadUpload, m.Commit, commit)
	}
	if opts.Allowed != nil && !opts.Allowed(m.Commit) {
		return m, false, fmt.Errorf("%w: %s is not on the receiver's allow-list (serve.gate): add it, or publish an allowed commit", ErrNotAllowed, m.Commit)
	}
	var total int64
	for _, t := range m.Targets {
		total += t.Size
	}
	if opts.CheckFree != nil {
		if err := opts.CheckFree(total); err != nil {
			return m, false, err
		}
	}
	if err := os.MkdirAll(s.tmp, 0o750); err != nil {
		return m, false, err
	}
	stage, err := os.MkdirTemp(s.tmp, "release-")
	if err != nil {
		return m, false, noSpace(err)
	}
	defer func() {
		if stage != "" {
			_ = os.RemoveAll(stage)
		}
	}()
	if err := receiveBinaries(ctx, tr, m, stage); err != nil {
		return m, false, err
	}
	for name, data := range map[string][]byte{ManifestName: manifest, SignatureName: sig} {
		if err := writeSynced(filepath.Join(stage, name), data); err != nil {
			return m, false, noSpace(err)
		}
	}
	if err := fsutil.SyncDir(stage); err != nil {
		return m, false, err
	}
	if err := os.MkdirAll(s.dir, 0o750); err != nil {
		return m, false, err
	}
	final := filepath.Join(s.dir, m.Commit)
	if err := os.Rename(stage, final); err != nil {
		if !errors.Is(err, unix.EEXIST) && !errors.Is(err, unix.ENOTEMPTY) {
			return m, false, err
		}
		existing, rerr := os.ReadFile(filepath.Join(final, ManifestName))
		if rerr == nil && bytes.Equal(existing, manifest) {
			return m, false, nil
		}
		return m, false, fmt.Errorf("%w: %s holds release seq %s; a commit is published once", ErrConflict, final, seqOf(existing))
	}
	stage = ""
	if err := fsutil.SyncDir(s.dir); err != nil {
		return m, false, err
	}
	return m, true, nil
}

func seqOf(manifest []byte) string {
	m, err := Parse(manifest)
	if err != nil {
		return "(unreadable)"
	}
	return fmt.Sprint(m.Seq)
}

// readHead reads the manifest and its signature, the upload's first two entries in
// either order.
func readHead(tr *tar.Reader) (manifest, sig []byte, err error) {
	for manifest == nil || sig == nil {
		h, err := tr.Next()
		if err == io.EOF {
			return nil, nil, fmt.Errorf("%w: it must start with %s and %s", ErrBadUpload, ManifestName, SignatureName)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%w: not a tar stream: %v", ErrBadUpload, err)
		}
		var dst *[]byte
		switch h.Name {
		case ManifestName:
			dst = &manifest
		case SignatureName:
			dst = &sig
		default:
			return nil, nil, fmt.Errorf("%w: %s came before %s and %s, which must be first", ErrBadUpload, h.Name, ManifestName, SignatureName)
		}
		if *dst != nil || h.Typeflag != tar.TypeReg || h.Size > maxManifestBytes {
			return nil, nil, fmt.Errorf("%w: %s must be one regular file of at most %d bytes", ErrBadUpload, h.Name, maxManifestBytes)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %s was cut off: %v", ErrBadUpload, h.Name, err)
		}
		*dst = data
	}
	return manifest, sig, nil
}

// receiveBinaries writes each binary the manifest names into stage, hashing it as it
// arrives, and checks that every one came whole.
func receiveBinaries(ctx context.Context, tr *tar.Reader, m Manifest, stage string) error {
	seen := map[string]bool{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("%w: the stream was cut off or is not tar: %v", ErrBadUpload, err)
		}
		t, ok := m.File(h.Name)
		switch {
		case !ok:
			return fmt.Errorf("%w: %s is not a file of the manifest", ErrBadUpload, h.Name)
		case seen[h.Name]:
			return fmt.Errorf("%w: %s came twice", ErrBadUpload, h.Name)
		case h.Typeflag != tar.TypeReg || h.Size != t.Size:
			return fmt.Errorf("%w: %s: the manifest says %d bytes, the upload %d", ErrDigest, h.Name, t.Size, h.Size)
		}
		seen[h.Name] = true
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := receiveFile(filepath.Join(stage, h.Name), tr, t); err != nil {
			return err
		}
	}
	for _, t := range m.Targets {
		if !seen[t.File] {
			return fmt.Errorf("%w: %s (%s) is missing from the upload", ErrBadUpload, t.File, t.Platform())
		}
	}
	return nil
}

func receiveFile(path string, r io.Reader, t Target) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return noSpace(err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), r)
	if err != nil {
		if errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EDQUOT) {
			return noSpace(err)
		}
		return fmt.Errorf("%w: %s was cut off after %d bytes: %v", ErrBadUpload, t.File, n, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != t.SHA256 {
		return fmt.Errorf("%w: %s has SHA-256 %s, the manifest says %s", ErrDigest, t.File, got, t.SHA256)
	}
	if err := f.Sync(); err != nil {
		return noSpace(err)
	}
	return f.Close()
}

func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	return errors.Join(err, f.Close())
}

func noSpace(err error) error {
	if errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EDQUOT) {
		return fmt.Errorf("%w: %w", ErrNoSpace, err)
	}
	return err
}

// Published is a release in the store: its manifest, as signed, and its signature.
type Published struct {
	Manifest
	// Raw and Signature are manifest.json and its .minisig, byte for byte: a host
	// verifies Raw itself and trusts nothing else of this answer.
	Raw         []byte    `json:"manifest"`
	Signature   string    `json:"signature"`
	PublishedAt time.Time `json:"published_at"`
}

// Get returns the published release of commit (40 hex digits); the error wraps
// fs.ErrNotExist when there is none.
func (s *Store) Get(commit string) (Published, error) {
	var p Published
	if !validCommitDir(commit) {
		return p, fmt.Errorf("release %q: %w", commit, fs.ErrNotExist)
	}
	dir := filepath.Join(s.dir, commit)
	raw, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if err != nil {
		return p, fmt.Errorf("release %s: %w", commit, err)
	}
	sig, err := os.ReadFile(filepath.Join(dir, SignatureName))
	if err != nil {
		return p, fmt.Errorf("release %s: %w", commit, err)
	}
	m, err := Parse(raw)
	if err != nil {
		return p, fmt.Errorf("release %s: %w", commit, err)
	}
	p = Published{Manifest: m, Raw: raw, Signature: string(sig)}
	if st, err := os.Stat(dir); err == nil {
		p.PublishedAt = st.ModTime().UTC()
	}
	return p, nil
}

// List returns every published release, highest seq first. A folder that is not a
// release (unreadable, hand-edited) is skipped and named in skipped.
func (s *Store) List() (rels []Published, skipped []string, err error) {
	entries, err := os.ReadDir(s.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	for _, e := range entries {
		p, err := s.Get(e.Name())
		if err != nil {
			skipped = append(skipped, e.Name())
			continue
		}
		rels = append(rels, p)
	}
	sort.SliceStable(rels, func(i, j int) bool { return rels[i].Seq > rels[j].Seq })
	return rels, skipped, nil
}

// FilePath is where a published binary is, checked to be one the manifest names;
// the error wraps fs.ErrNotExist otherwise.
func (s *Store) FilePath(commit, file string) (string, error) {
	if !validCommitDir(commit) || !(ValidFile(file) || file == ManifestName || file == SignatureName) {
		return "", fmt.Errorf("release file %s/%s: %w", commit, file, fs.ErrNotExist)
	}
	return filepath.Join(s.dir, commit, file), nil
}

func validCommitDir(c string) bool {
	if len(c) != 40 {
		return false
	}
	for _, r := range c {
		if !('0' <= r && r <= '9' || 'a' <= r && r <= 'f') {
			return false
		}
	}
	return true
}

// Newest picks the release a host should run: among those whose commit allowed
// accepts, the newest by position on the gate's git ref (pos: 0 is the ref's tip)
// when any is there, else the highest seq. A release on the ref wins over one that
// is only on the allow-list file: the ref is the line of history the maintainer
// releases from, the file the exceptions.
func Newest(rels []Published, allowed func(commit string) bool, pos map[string]int) (Published, bool) {
	best, found := Published{}, false
	better := func(a, b Published) bool { // a newer than b
		pa, aOn := pos[a.Commit]
		pb, bOn := pos[b.Commit]
		switch {
		case aOn && bOn && pa != pb:
			return pa < pb
		case aOn != bOn:
			return aOn
		}
		return a.Seq > b.Seq
	}
	for _, r := range rels {
		if !allowed(r.Commit) {
			continue
		}
		if !found || better(r, best) {
			best, found = r, true
		}
	}
	return best, found
}

package ca

import (
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/renameio/v2"

	"github.com/cis490/cis490/internal/fsutil"
)

// A key and its certificate are replaced together, in one rename, so that whoever
// reads them (a client per connection, the receiver per handshake, a kill -9 at any
// moment) finds the old pair or the new one, never a key beside another key's
// certificate:
//
//   - cert_file and key_file the same file (the certificate chain and the key in one
//     PEM, as `ca init` writes the Pi's): a new file beside it, fsynced, renamed over it.
//   - two files: they become symlinks into a folder of pairs beside cert_file,
//     .<cert_file's name>.pairs/, through its "current" symlink:
//
//     client.pem     -> .client.pem.pairs/current/cert.pem
//     client-key.pem -> .client.pem.pairs/current/key.pem
//     .client.pem.pairs/current -> pair-1234 (a folder: cert.pem, key.pem)
//
//     A new pair is written in a new folder; replacing "current" (renameio.Symlink:
//     a rename) switches both files at once. The first time, plain files are copied
//     into a pair folder that "current" names before they are replaced by the
//     symlinks, so every step in between shows the old pair.

// pairsDir is the folder of pairs beside certFile.
func pairsDir(certFile string) string {
	return filepath.Join(filepath.Dir(certFile), "."+filepath.Base(certFile)+".pairs")
}

// Staged is a new pair written beside its place but not yet in it: CertFile and
// KeyFile are where it can be tried (a handshake) before Commit puts it in place or
// Discard removes it.
type Staged struct {
	CertFile, KeyFile string
	commit            func() error
	discard           func()
}

// Commit puts the staged pair in place in one rename.
func (s *Staged) Commit() error { return s.commit() }

// Discard removes the staged pair; the one in place stays.
func (s *Staged) Discard() { s.discard() }

// WritePair replaces certFile and keyFile with certPEM and keyPEM in one step.
func WritePair(certFile, keyFile string, certPEM, keyPEM []byte) error {
	s, err := StagePair(certFile, keyFile, certPEM, keyPEM)
	if err != nil {
		return err
	}
	if err := s.Commit(); err != nil {
		s.Discard()
		return err
	}
	return nil
}

// StagePair writes a new pair for certFile and keyFile where Commit can put it in
// place in one rename. The key is 0600. One pair at a time: callers hold a lock.
func StagePair(certFile, keyFile string, certPEM, keyPEM []byte) (*Staged, error) {
	if filepath.Clean(certFile) == filepath.Clean(keyFile) {
		return stageCombined(certFile, append(append([]byte{}, certPEM...), keyPEM...))
	}
	return stageLinked(certFile, keyFile, certPEM, keyPEM)
}

func stageCombined(path string, data []byte) (*Staged, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	sweepTemps(path)
	f, err := renameio.NewPendingFile(path, renameio.WithTempDir(dir), renameio.WithStaticPermissions(0o600))
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Cleanup()
		return nil, err
	}
	if err := f.Sync(); err != nil {
		_ = f.Cleanup()
		return nil, err
	}
	return &Staged{
		CertFile: f.Name(), KeyFile: f.Name(),
		commit: func() error {
			if err := f.CloseAtomicallyReplace(); err != nil {
				return err
			}
			return fsutil.SyncDir(dir)
		},
		discard: func() { _ = f.Cleanup() },
	}, nil
}

func stageLinked(certFile, keyFile string, certPEM, keyPEM []byte) (*Staged, error) {
	pairs := pairsDir(certFile)
	if err := os.MkdirAll(pairs, 0o700); err != nil {
		return nil, err
	}
	pruneStale(pairs) // left by a run killed before its Commit
	sweepTemps(certFile)
	sweepTemps(keyFile)
	gen, err := newPairDir(pairs, certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	return &Staged{
		CertFile: filepath.Join(gen, "cert.pem"), KeyFile: filepath.Join(gen, "key.pem"),
		commit: func() error {
			if err := linkInPlace(certFile, keyFile, pairs); err != nil {
				return err
			}
			if err := swapCurrent(pairs, filepath.Base(gen)); err != nil {
				return err
			}
			pruneStale(pairs)
			return nil
		},
		discard: func() { _ = os.RemoveAll(gen) },
	}, nil
}

// newPairDir writes a pair into a new folder of pairs, fsynced.
func newPairDir(pairs string, certPEM, keyPEM []byte) (string, error) {
	gen, err := os.MkdirTemp(pairs, "pair-")
	if err != nil {
		return "", err
	}
	if err := writeSynced(filepath.Join(gen, "cert.pem"), certPEM, 0o644); err != nil {
		os.RemoveAll(gen)
		return "", err
	}
	if err := writeSynced(filepath.Join(gen, "key.pem"), keyPEM, 0o600); err != nil {
		os.RemoveAll(gen)
		return "", err
	}
	if err := errors.Join(fsutil.SyncDir(gen), fsutil.SyncDir(pairs)); err != nil {
		os.RemoveAll(gen)
		return "", err
	}
	return gen, nil
}

// linkInPlace makes certFile and keyFile the symlinks through pairs/current, once.
// Plain files that are a pair are first copied into a pair folder that current names,
// so that each replacement below leaves a whole pair in place.
func linkInPlace(certFile, keyFile, pairs string) error {
	certTarget, err := linkTarget(certFile, pairs, "cert.pem")
	if err != nil {
		return err
	}
	keyTarget, err := linkTarget(keyFile, pairs, "key.pem")
	if err != nil {
		return err
	}
	if isLink(certFile, certTarget) && isLink(keyFile, keyTarget) {
		return nil
	}
	if _, err := tls.LoadX509KeyPair(certFile, keyFile); err == nil {
		certPEM, err1 := os.ReadFile(certFile)
		keyPEM, err2 := os.ReadFile(keyFile)
		if err := errors.Join(err1, err2); err != nil {
			return err
		}
		old, err := newPairDir(pairs, certPEM, keyPEM)
		if err != nil {
			return err
		}
		if err := swapCurrent(pairs, filepath.Base(old)); err != nil {
			return err
		}
	}
	for _, l := range []struct{ path, target string }{{certFile, certTarget}, {keyFile, keyTarget}} {
		if isLink(l.path, l.target) {
			continue
		}
		if err := renameio.Symlink(l.target, l.path); err != nil {
			return fmt.Errorf("link %s into %s: %w", l.path, pairs, err)
		}
		if err := fsutil.SyncDir(filepath.Dir(l.path)); err != nil {
			return err
		}
	}
	return nil
}

// linkTarget is the relative target of path's symlink to pairs/current/name.
func linkTarget(path, pairs, name string) (string, error) {
	rel, err := filepath.Rel(filepath.Dir(path), filepath.Join(pairs, "current", name))
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return rel, nil
}

func isLink(path, target string) bool {
	got, err := os.Readlink(path)
	return err == nil && got == target
}

// swapCurrent points pairs/current at the pair folder gen, in one rename.
func swapCurrent(pairs, gen string) error {
	if err := renameio.Symlink(gen, filepath.Join(pairs, "current")); err != nil {
		return fmt.Errorf("switch %s to the new pair: %w", pairs, err)
	}
	return fsutil.SyncDir(pairs)
}

// pruneStale removes the pair folders "current" does not name, and what an
// interrupted renameio.Symlink left.
func pruneStale(pairs string) {
	current, _ := os.Readlink(filepath.Join(pairs, "current"))
	entries, err := os.ReadDir(pairs)
	if err != nil {
		return
	}
	for _, e := range entries {
		name := e.Name()
		if name == current || name == "current" || !(strings.HasPrefix(name, "pair-") || strings.HasPrefix(name, ".current")) {
			continue
		}
		_ = os.RemoveAll(filepath.Join(pairs, name))
	}
}

// sweepTemps removes what a run killed mid-way left beside path: renameio's
// temporary files and folders, named "." + path's name + digits (a key among them).
func sweepTemps(path string) {
	dir, prefix := filepath.Dir(path), "."+filepath.Base(path)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), prefix)
		if ok && rest != "" && strings.Trim(rest, "0123456789") == "" {
			_ = os.RemoveAll(filepath.Join(dir, e.Name()))
		}
	}
}

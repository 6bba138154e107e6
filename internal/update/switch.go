package update

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/cis490/cis490/internal/fsutil"
)

// tempPattern names the files an update writes beside the binary: hidden, and
// recognisable, so a run after a crash removes what the crashed one left.
func tempPattern(bin string) string { return "." + filepath.Base(bin) + ".update-*" }

// newTemp creates an empty temp file beside bin, executable once complete.
func newTemp(bin string) (*os.File, error) {
	return os.CreateTemp(filepath.Dir(bin), tempPattern(bin))
}

// sweep removes what an interrupted run left beside bin and in the state folder.
// Only ever called under the lock.
func sweep(bin, stateDir string) (removed []string) {
	for _, pattern := range []string{filepath.Join(filepath.Dir(bin), tempPattern(bin)), filepath.Join(stateDir, previousFile+".tmp-*")} {
		matches, _ := filepath.Glob(pattern)
		for _, m := range matches {
			if os.Remove(m) == nil {
				removed = append(removed, m)
			}
		}
	}
	return removed
}

// place makes the complete, fsynced file tmp the binary at bin: one rename(2), so
// bin is the old file or the new one at every moment, never neither, never part.
func place(tmp, bin string) error {
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	if err := os.Rename(tmp, bin); err != nil {
		return fmt.Errorf("switch %s: %w", bin, err)
	}
	return fsutil.SyncDir(filepath.Dir(bin))
}

// copyTo copies src to a new temp file made by create, fsynced, and returns its name.
// On error nothing is left.
func copyTo(src string, create func() (*os.File, error)) (string, error) {
	in, err := os.Open(src)
	if err != nil {
		return "", err
	}
	defer in.Close()
	out, err := create()
	if err != nil {
		return "", err
	}
	_, err = io.Copy(out, in)
	if err == nil {
		err = out.Sync()
	}
	if err = errors.Join(err, out.Close()); err != nil {
		_ = os.Remove(out.Name())
		return "", fmt.Errorf("copy %s: %w", src, err)
	}
	return out.Name(), nil
}

// keepPrevious saves bin as state_dir/cis490.previous before it is replaced, written
// whole and renamed into place: the binary to roll back to.
func keepPrevious(bin, stateDir string) error {
	tmp, err := copyTo(bin, func() (*os.File, error) { return os.CreateTemp(stateDir, previousFile+".tmp-*") })
	if err != nil {
		return fmt.Errorf("keep the previous binary: %w", err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, filepath.Join(stateDir, previousFile)); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return fsutil.SyncDir(stateDir)
}

// restorePrevious puts state_dir/cis490.previous back at bin: copied beside bin, then
// renamed over it, so bin stays whole throughout.
func restorePrevious(bin, stateDir string) error {
	tmp, err := copyTo(filepath.Join(stateDir, previousFile), func() (*os.File, error) { return newTemp(bin) })
	if err != nil {
		return fmt.Errorf("roll back: %w", err)
	}
	if err := place(tmp, bin); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("roll back: %w", err)
	}
	return nil
}

// short is a commit for people: its first 12 digits.
func short(commit string) string {
	if len(commit) > 12 {
		return commit[:12]
	}
	if commit == "" {
		return "(unstamped)"
	}
	return commit
}

func joinIDs(ids []string) string { return strings.Join(ids, ", ") }

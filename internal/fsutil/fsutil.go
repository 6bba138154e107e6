// Package fsutil holds the file-system steps every writer of cis490 shares (making a
// rename or a new file's directory entry durable, noticing a line a crash cut short at
// the end of an append-only file) and how sizes are shown to people.
package fsutil

import (
	"errors"
	"fmt"
	"os"
)

// SyncDir fsyncs a directory, which makes the renames, links and new files in it
// survive a power cut.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	if err := errors.Join(d.Sync(), d.Close()); err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}

// EndsTorn reports whether f is non-empty and does not end in a newline: a crash cut
// its last line short, and the next line appended must start on a line of its own.
func EndsTorn(f *os.File) (bool, error) {
	fi, err := f.Stat()
	if err != nil || fi.Size() == 0 {
		return false, err
	}
	last := make([]byte, 1)
	if _, err := f.ReadAt(last, fi.Size()-1); err != nil {
		return false, err
	}
	return last[0] != '\n', nil
}

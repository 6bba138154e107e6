package alerts

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/cis490/cis490/internal/fsutil"
)

// Append adds lines to the file at path, creating it (and its folder) when needed, and
// fsyncs before returning: a notification that was reported as sent is on disk. All
// lines go out in one write on an O_APPEND file, so they never interleave with another
// writer's.
func Append(path string, lines ...Alert) error {
	if len(lines) == 0 {
		return nil
	}
	var buf []byte
	for _, a := range lines {
		b, err := json.Marshal(a)
		if err != nil {
			return fmt.Errorf("encode alert %s: %w", a.DedupKey, err)
		}
		buf = append(append(buf, b...), '\n')
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("alerts file %s: %w", path, err)
	}
	_, statErr := os.Stat(path)
	created := errors.Is(statErr, fs.ErrNotExist)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("alerts file %s: %w", path, err)
	}
	torn, err := fsutil.EndsTorn(f)
	if err != nil {
		f.Close()
		return fmt.Errorf("alerts file %s: %w", path, err)
	}
	if torn {
		// A crash cut the last line short: end it, so the new line is not glued to
		// its remains (readers then skip only the torn part).
		buf = append([]byte{'\n'}, buf...)
	}
	_, err = f.Write(buf)
	if err = errors.Join(err, f.Sync(), f.Close()); err != nil {
		return fmt.Errorf("append to alerts file %s: %w", path, err)
	}
	if created {
		return fsutil.SyncDir(dir)
	}
	return nil
}

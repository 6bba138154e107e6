package alerts

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
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
	torn, err := endsTorn(f)
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
		return syncDir(dir)
	}
	return nil
}

func endsTorn(f *os.File) (bool, error) {
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

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}

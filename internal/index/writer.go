package index

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/cis490/cis490/internal/fsutil"
)

// ErrClosed is returned by Append after Close.
var ErrClosed = errors.New("index: writer closed")

// syncInterval bounds what a power cut can cost. An fsync per Append would make every
// heartbeat wait for a flush (tens of milliseconds on the Pi's SD card, and wear on it);
// the index is an observation log, so losing at most a second of lines is the better
// trade. Episodes themselves are made durable by the store before their 2xx.
const syncInterval = time.Second

// Writer appends entries to the day files of one directory. It is safe for concurrent use.
type Writer struct {
	dir  string
	stop chan struct{}
	done chan struct{}

	mu    sync.Mutex
	cur   *os.File // the file of day, kept open between appends
	day   string
	dirty bool // written since the last fsync
	// mayBeTorn: a write to cur failed, so its last line may have been cut (a full
	// disk writes part of it). The next append ends that line first.
	mayBeTorn bool
	syncErr   error // a failed fsync nobody has been told about yet
	closed    bool
}

// OpenWriter creates dir if needed and starts the background fsync.
func OpenWriter(dir string) (*Writer, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("index: %w", err)
	}
	w := &Writer{dir: dir, stop: make(chan struct{}), done: make(chan struct{})}
	go w.syncLoop()
	return w, nil
}

// Append writes e as one line to the file of e's UTC day (now, if e.TS is zero).
func (w *Writer) Append(e Entry) error {
	if e.TS.IsZero() {
		e.TS = time.Now()
	}
	e.TS = e.TS.UTC()
	line, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("index: encode entry: %w", err)
	}
	if len(line) > MaxLineBytes {
		return fmt.Errorf("index: entry of %d bytes is over the %d-byte line limit", len(line), MaxLineBytes)
	}
	line = append(line, '\n')
	day := dayOf(e.TS)

	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	if w.cur != nil && day < w.day {
		// A request that began before midnight and finished after: rare enough that
		// its file is opened for this one line rather than kept open.
		return appendOnce(dayPath(w.dir, day), line)
	}
	if w.cur == nil || day != w.day {
		f, err := openDay(dayPath(w.dir, day))
		if err != nil {
			return err
		}
		if w.cur != nil {
			w.retire()
		}
		w.cur, w.day = f, day
	}
	if w.mayBeTorn {
		torn, err := fsutil.EndsTorn(w.cur)
		if err != nil {
			return fmt.Errorf("index: check %s for a torn line: %w", w.cur.Name(), err)
		}
		if torn {
			// In the same write as the line: both land or the tail stays torn, and
			// this flag stays set for the next try.
			line = append([]byte{'\n'}, line...)
		}
	}
	// One write(2) on an O_APPEND file: the line lands whole and never interleaves
	// with another writer's.
	if _, err := w.cur.Write(line); err != nil {
		w.mayBeTorn = true
		return fmt.Errorf("index: append to %s: %w", w.cur.Name(), err)
	}
	w.mayBeTorn, w.dirty = false, true
	return nil
}

// Sync flushes the open file to disk and reports any background fsync failure since
// the last Sync.
func (w *Writer) Sync() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	err := w.syncErr
	w.syncErr = nil
	if w.cur != nil {
		err = errors.Join(err, w.cur.Sync())
		w.dirty = false
	}
	if err != nil {
		return fmt.Errorf("index: sync: %w", err)
	}
	return nil
}

// Close stops the background fsync, then syncs and closes the open file.
func (w *Writer) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	w.mu.Unlock()

	close(w.stop)
	<-w.done

	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cur != nil {
		w.retire()
	}
	if w.syncErr != nil {
		return fmt.Errorf("index: sync: %w", w.syncErr)
	}
	return nil
}

// retire syncs and closes the current file. A failure is kept for the next Sync or
// Close rather than returned from Append: the entry being appended is not at risk.
func (w *Writer) retire() {
	if err := errors.Join(w.cur.Sync(), w.cur.Close()); err != nil {
		w.syncErr = errors.Join(w.syncErr, err)
	}
	w.cur, w.day, w.dirty, w.mayBeTorn = nil, "", false, false
}

func (w *Writer) syncLoop() {
	defer close(w.done)
	tick := time.NewTicker(syncInterval)
	defer tick.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-tick.C:
		}
		w.mu.Lock()
		f, dirty := w.cur, w.dirty
		w.dirty = false
		w.mu.Unlock()
		if !dirty {
			continue
		}
		// Outside the lock, so requests do not queue behind a slow flush. If the file
		// was retired meanwhile, retire already synced it: ErrClosed is harmless.
		if err := f.Sync(); err != nil && !errors.Is(err, os.ErrClosed) {
			w.mu.Lock()
			w.syncErr = errors.Join(w.syncErr, err)
			w.mu.Unlock()
		}
	}
}

func openDay(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("index: %w", err)
	}
	if err := endTornLine(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("index: repair torn line in %s: %w", path, err)
	}
	return f, nil
}

// endTornLine ends a line torn by a crash, so the next line is not glued to its remains
// (the reader then skips only the torn part).
func endTornLine(f *os.File) error {
	torn, err := fsutil.EndsTorn(f)
	if err != nil || !torn {
		return err
	}
	_, err = f.Write([]byte{'\n'})
	return err
}

// appendOnce writes line to path and syncs it there and then: the background fsync
// only covers the file kept open.
func appendOnce(path string, line []byte) error {
	f, err := openDay(path)
	if err != nil {
		return err
	}
	_, err = f.Write(line)
	err = errors.Join(err, f.Sync(), f.Close())
	if err != nil {
		return fmt.Errorf("index: append to %s: %w", path, err)
	}
	return nil
}

package alerts

import (
	"context"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// DefaultPoll is how often a follower looks at the file when no change notification
// arrives: inotify wakes it at once, polling is the safety net (network file systems,
// a watch that could not be set up, a folder created later).
const DefaultPoll = time.Second

// Follower waits for the file of a Reader to change.
type Follower struct {
	r       *Reader
	poll    time.Duration
	watcher *fsnotify.Watcher
	started bool
}

// NewFollower watches r's file; poll <= 0 means DefaultPoll.
func NewFollower(r *Reader, poll time.Duration) *Follower {
	if poll <= 0 {
		poll = DefaultPoll
	}
	return &Follower{r: r, poll: poll}
}

// Follow hands fn every line the file has and gets, until ctx is done (then it returns
// ctx's error) or fn fails.
func (f *Follower) Follow(ctx context.Context, fn func(line []byte) error) error {
	defer f.Close()
	for {
		if err := f.r.Lines(fn); err != nil {
			return err
		}
		if err := f.wait(ctx); err != nil {
			return err
		}
	}
}

// Close stops watching.
func (f *Follower) Close() {
	if f.watcher != nil {
		f.watcher.Close()
		f.watcher = nil
	}
}

// wait returns when the file may have changed: a notification about its name in its
// folder (write, create, rename, remove), or the poll interval.
func (f *Follower) wait(ctx context.Context) error {
	if !f.started {
		f.started = true
		f.watch()
	}
	tick := time.NewTimer(f.poll)
	defer tick.Stop()
	var events <-chan fsnotify.Event
	var errs <-chan error
	if f.watcher != nil {
		events, errs = f.watcher.Events, f.watcher.Errors
	}
	base := filepath.Base(f.r.path)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
			return nil
		case ev, ok := <-events:
			if !ok {
				return nil
			}
			if filepath.Base(ev.Name) == base {
				return nil
			}
		case _, ok := <-errs:
			if !ok {
				return nil
			}
			// An overflowed queue may have dropped the event we wait for: look now.
			return nil
		}
	}
}

// watch sets up inotify on the file's folder (the file itself is replaced on
// rotation). A failure leaves the follower polling.
func (f *Follower) watch() {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return
	}
	if err := w.Add(filepath.Dir(f.r.path)); err != nil {
		w.Close()
		return
	}
	f.watcher = w
}

package gate

import (
	"context"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

const (
	// debounce lets an editor finish its burst of events (truncate, write, rename)
	// before the file is read, so a half-written list is rarely loaded.
	debounce = 100 * time.Millisecond
	// refreshTimeout stops a hung source (a stuck git, a dead NFS mount) from
	// holding back the refreshes that follow.
	refreshTimeout = 30 * time.Second
)

// Run refreshes the gate every Options.Refresh and whenever an allow-list file changes,
// until ctx is done.
func (g *Gate) Run(ctx context.Context) {
	events, errs, stop := g.watch()
	defer stop()
	// Loading after the watch is in place means no edit can slip in between.
	g.refreshNow(ctx)

	ticker := time.NewTicker(g.refresh)
	defer ticker.Stop()
	var settled <-chan time.Time // nil until a file change is pending
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			g.refreshNow(ctx)
		case <-settled:
			settled = nil
			g.refreshNow(ctx)
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			if g.watched(ev.Name) {
				settled = time.After(debounce)
			}
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			g.log.Warn().Err(err).Msg("watching gate allow-list files")
		}
	}
}

func (g *Gate) refreshNow(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, refreshTimeout)
	defer cancel()
	_ = g.Refresh(ctx) // each failure is logged and counted by Refresh
}

// watch watches the directory of every file source rather than the file itself: editors
// and `mv` replace the file, and a watch on the old inode would go quiet. Without any
// watch the periodic refresh still works, so failures here are only logged.
func (g *Gate) watch() (<-chan fsnotify.Event, <-chan error, func()) {
	dirs := map[string]bool{}
	for _, p := range g.filePaths() {
		dirs[filepath.Dir(p)] = true
	}
	if len(dirs) == 0 {
		return nil, nil, func() {}
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		g.log.Warn().Err(err).Msg("cannot watch gate allow-list files; relying on periodic refresh")
		return nil, nil, func() {}
	}
	for dir := range dirs {
		if err := w.Add(dir); err != nil {
			g.log.Warn().Err(err).Str("dir", dir).Msg("cannot watch gate allow-list folder; relying on periodic refresh")
		}
	}
	return w.Events, w.Errors, func() { _ = w.Close() }
}

func (g *Gate) watched(name string) bool {
	name = filepath.Clean(name)
	for _, p := range g.filePaths() {
		if p == name {
			return true
		}
	}
	return false
}

func (g *Gate) filePaths() []string {
	var paths []string
	for _, src := range g.sources {
		if f, ok := src.(*fileSource); ok {
			paths = append(paths, filepath.Clean(f.path))
		}
	}
	return paths
}

package ship

import (
	"context"
	"errors"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/cis490/cis490/internal/spool"
)

// HeartbeatEvery is how often --watch heartbeats (and re-runs a full pass), the same
// period as the ship timer, so fleet health sees a watching host exactly like a timed one.
const HeartbeatEvery = 5 * time.Minute

// settle is how long outbox/ must be quiet before a pass starts, so a burst of new
// files is shipped in one pass.
const settle = 200 * time.Millisecond

// Watch holds the spool lock and ships files as they appear in outbox/, with a full
// pass (sweep and heartbeat included) every period. It returns when ctx is done.
// report is called after each pass.
func Watch(ctx context.Context, opts Options, period time.Duration, report func(Summary, error)) error {
	unlock, err := Lock(opts.SpoolDir)
	if err != nil {
		return err
	}
	defer unlock()
	sp := spool.New(opts.SpoolDir)
	if err := sp.Prepare(); err != nil {
		return err
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer w.Close()
	if err := w.Add(sp.Path(spool.Outbox)); err != nil {
		return err
	}
	log := opts.Logger
	log.Info().Str("outbox", sp.Path(spool.Outbox)).Str("heartbeat", period.String()).Msg("watching the outbox")

	tick := time.NewTicker(period)
	defer tick.Stop()
	var settleC <-chan time.Time
	pass := func() {
		sum, err := passLocked(ctx, opts)
		if report != nil && ctx.Err() == nil {
			report(sum, err)
		}
	}
	pass()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return errors.New("outbox watcher closed")
			}
			if ev.Has(fsnotify.Create|fsnotify.Write) && !spool.InProgress(filepath.Base(ev.Name)) {
				settleC = time.After(settle)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return errors.New("outbox watcher closed")
			}
			log.Warn().Err(err).Msg("outbox watcher; the periodic pass still ships everything")
		case <-settleC:
			settleC = nil
			pass()
		case <-tick.C:
			pass()
		}
	}
}

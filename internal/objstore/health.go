package objstore

import (
	"context"
	"errors"
	"sync"
	"time"
)

// healthState follows the requests to the store: the latest success, and the first
// and latest failure since it.
type healthState struct {
	backend string

	mu           sync.Mutex
	lastOK       time.Time
	lastErr      string
	lastErrAt    time.Time
	failingSince time.Time
}

func (h *healthState) ok(now time.Time) {
	h.mu.Lock()
	h.lastOK, h.failingSince = now, time.Time{}
	h.mu.Unlock()
}

func (h *healthState) failed(now time.Time, err error) {
	h.mu.Lock()
	if h.failingSince.IsZero() {
		h.failingSince = now
	}
	h.lastErr, h.lastErrAt = err.Error(), now
	h.mu.Unlock()
}

func (h *healthState) get() Health {
	h.mu.Lock()
	defer h.mu.Unlock()
	return Health{Backend: h.backend, OK: h.failingSince.IsZero(), LastOK: h.lastOK, LastError: h.lastErr,
		LastErrorAt: h.lastErrAt, FailingSince: h.failingSince}
}

// observe records the outcome of one request to the store. A request cut because its
// ctx ended says nothing about the store, unless the stall watchdog cut it; expected
// answers (404 on a HEAD, 412 on a conditional write) are successes.
func (s *Store) observe(ctx context.Context, op string, err error) {
	switch {
	case err == nil:
		s.state.ok(time.Now())
	case ctx.Err() != nil && !errors.Is(context.Cause(ctx), errStalled):
		// the client went away or the receiver is stopping
	default:
		s.state.failed(time.Now(), err)
		if s.opts.OnError != nil {
			s.opts.OnError(op)
		}
	}
}

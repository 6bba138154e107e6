package tokens

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rs/zerolog"
)

// Store serves lookups from a tokens file and reloads it when it changes, so that
// `cis490 token new`, `revoke` and `rotate` take effect on a running receiver without a
// restart. A rotated token's expiry is checked at each lookup, not at reload.
type Store struct {
	path     string
	log      zerolog.Logger
	interval time.Duration
	clock    func() time.Time
	set      atomic.Pointer[Set]
	due      atomic.Int64 // UnixNano of the next stat

	mu   sync.Mutex // one reload at a time; guards seen
	seen stamp
}

// stamp tells whether the file changed. The inode catches the atomic replace done by
// Append even when mtime and size happen to match.
type stamp struct {
	mtime int64
	size  int64
	ino   uint64
}

// OpenStore loads the tokens file at path; it must load.
func OpenStore(path string, log zerolog.Logger) (*Store, error) {
	return openStore(path, log, time.Second, time.Now)
}

func openStore(path string, log zerolog.Logger, interval time.Duration, clock func() time.Time) (*Store, error) {
	st, err := statFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokens file: %w", err)
	}
	set, err := Load(path)
	if err != nil {
		return nil, err
	}
	s := &Store{path: path, log: log, interval: interval, clock: clock, seen: st}
	s.set.Store(set)
	s.due.Store(clock().Add(interval).UnixNano())
	return s, nil
}

// Len is how many tokens the file held at its last good load.
func (s *Store) Len() int { return s.set.Load().Len() }

// Lookup returns the identity of a live token, first reloading the file if it changed
// (checked at most once per interval, by one caller; the others use the current set
// meanwhile).
func (s *Store) Lookup(token string) (Identity, bool) {
	now := s.clock()
	if due := s.due.Load(); now.UnixNano() >= due && s.due.CompareAndSwap(due, now.UnixNano()+int64(s.interval)) {
		s.refresh()
	}
	return s.set.Load().Lookup(token, now)
}

// refresh keeps the last good set when the file is gone or broken: a typo while editing
// must not lock the whole fleet out. Each change is logged once.
func (s *Store) refresh() {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := statFile(s.path)
	if err != nil {
		if s.seen != (stamp{}) {
			s.log.Warn().Err(err).Msg("tokens file unreadable; keeping the tokens loaded before")
		}
		s.seen = stamp{}
		return
	}
	if st == s.seen {
		return
	}
	s.seen = st
	set, err := Load(s.path)
	if err != nil {
		s.log.Warn().Err(err).Msg("tokens file changed but is invalid; keeping the tokens loaded before")
		return
	}
	s.set.Store(set)
	s.log.Info().Str("file", s.path).Int("tokens", set.Len()).Msg("tokens file reloaded")
}

func statFile(path string) (stamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return stamp{}, err
	}
	st := stamp{mtime: fi.ModTime().UnixNano(), size: fi.Size()}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.ino = sys.Ino
	}
	return st, nil
}

package objstore

import "sync"

// keyLocks is one lock per key in use, for servers without conditional writes: the
// uploads of one episode then run one at a time on this receiver, and each after the
// first finds the object stored. It cannot order two receivers sharing a prefix,
// which the configuration rules out (one receiver per prefix).
type keyLocks struct {
	mu    sync.Mutex
	locks map[string]*keyLock
}

type keyLock struct {
	mu    sync.Mutex
	users int
}

func (l *keyLocks) lock(key string) (unlock func()) {
	l.mu.Lock()
	if l.locks == nil {
		l.locks = map[string]*keyLock{}
	}
	k := l.locks[key]
	if k == nil {
		k = &keyLock{}
		l.locks[key] = k
	}
	k.users++
	l.mu.Unlock()
	k.mu.Lock()
	return func() {
		k.mu.Unlock()
		l.mu.Lock()
		if k.users--; k.users == 0 {
			delete(l.locks, key)
		}
		l.mu.Unlock()
	}
}

// inflightSet is the multipart uploads this process has open: SweepStale leaves
// them alone, however old (a slow upload may take longer than StaleAfter).
type inflightSet struct {
	mu  sync.Mutex
	ids map[string]struct{}
}

func (s *inflightSet) add(id string) {
	s.mu.Lock()
	if s.ids == nil {
		s.ids = map[string]struct{}{}
	}
	s.ids[id] = struct{}{}
	s.mu.Unlock()
}

func (s *inflightSet) remove(id string) {
	s.mu.Lock()
	delete(s.ids, id)
	s.mu.Unlock()
}

func (s *inflightSet) has(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.ids[id]
	return ok
}

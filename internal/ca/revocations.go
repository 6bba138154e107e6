package ca

import (
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// revocationsRecheck is how often, at most, a handshake looks at revoked.jsonl again
// (one stat): a `cert revoke` takes effect within it.
const revocationsRecheck = 500 * time.Millisecond

// Revocations is revoked.jsonl as the handshake needs it: serial → from when it is
// refused. It is reloaded when the file changes, looked at no more than every half
// second by one caller; the others use the set loaded before.
type Revocations struct {
	path  string
	clock func() time.Time
	set   atomic.Pointer[map[string]time.Time]
	due   atomic.Int64 // UnixNano of the next stat

	mu   sync.Mutex // one reload at a time; guards seen
	seen fileStamp
}

// fileStamp tells whether a file changed; the inode catches a replaced file even
// when its time and size match.
type fileStamp struct {
	mtime, size int64
	ino         uint64
}

func statStamp(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	st := fileStamp{mtime: fi.ModTime().UnixNano(), size: fi.Size()}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.ino = sys.Ino
	}
	return st, nil
}

// OpenRevocations loads dir's revoked.jsonl (none is an empty list).
func OpenRevocations(dir string, clock func() time.Time) *Revocations {
	if clock == nil {
		clock = time.Now
	}
	r := &Revocations{path: filepath.Join(dir, RevokedFile), clock: clock}
	empty := map[string]time.Time{}
	r.set.Store(&empty)
	r.reload()
	return r
}

// Revoked says whether serial is refused at the clock's now.
func (r *Revocations) Revoked(serial *big.Int) bool {
	now := r.clock()
	if due := r.due.Load(); now.UnixNano() >= due && r.due.CompareAndSwap(due, now.Add(revocationsRecheck).UnixNano()) {
		r.reload()
	}
	set := *r.set.Load()
	if len(set) == 0 {
		return false
	}
	at, ok := set[SerialString(serial)]
	return ok && !now.Before(at)
}

// changed makes the next Revoked look at the file: this process just wrote it.
func (r *Revocations) changed() { r.due.Store(0) }

// reload keeps the set loaded before when the file cannot be read: a revocation once
// loaded is never forgotten because of a read error.
func (r *Revocations) reload() {
	r.mu.Lock()
	defer r.mu.Unlock()
	st, err := statStamp(r.path)
	if err != nil || st == r.seen {
		return
	}
	lines, _, err := readLines[Revocation](r.path)
	if err != nil {
		return
	}
	r.seen = st
	now := r.clock()
	set := make(map[string]time.Time, len(lines))
	for _, l := range lines {
		if l.Serial == "" || (!l.NotAfter.IsZero() && now.After(l.NotAfter)) {
			continue // an expired certificate is refused by the handshake anyway
		}
		if at, ok := set[l.Serial]; !ok || l.At.Before(at) {
			set[l.Serial] = l.At
		}
	}
	r.set.Store(&set)
}

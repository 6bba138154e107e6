package store

import (
	"fmt"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Free space (SPEC §3.3: 507 rather than fall below min_free_bytes, for bodies without
// Content-Length too). Each upload holds a reservation: space granted to it and not
// yet written. statfs counts what is written, reservations what is still to come, and
// a grant is refused when the two together would leave less than MinFreeBytes. An
// upload that declared its length is granted all of it before its body is read, so
// it is refused at once or not for want of space that others took meanwhile; a body
// of unknown length is granted each chunk before that chunk is written.

// CheckFree reports ErrNoSpace when writing need more bytes, on top of what uploads
// in flight have reserved, would leave less than MinFreeBytes free.
func (s *Store) CheckFree(need int64) error {
	// Reserved before free: a write that ends in between is then counted twice (its
	// reservation is handed back only after it is on disk), never not at all.
	reserved := s.reserved.Load()
	free, err := s.FreeBytes()
	if err != nil {
		return err
	}
	avail := int64(min(free, 1<<62))
	if avail-reserved-max(need, 0) < s.opts.MinFreeBytes {
		return fmt.Errorf("%w: %d bytes free in %s, %d reserved by uploads in flight, need %d and must keep min_free_bytes %d",
			ErrNoSpace, avail, s.dir, reserved, need, s.opts.MinFreeBytes)
	}
	return nil
}

// FreeBytes is the space available to the (unprivileged) service user.
func (s *Store) FreeBytes() (uint64, error) {
	var st unix.Statfs_t
	if err := s.statfs(s.dir, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", s.dir, err)
	}
	return st.Bavail * uint64(st.Bsize), nil
}

type reservation struct {
	s       *Store
	granted int64        // the body's first granted bytes are covered; the request goroutine's
	held    atomic.Int64 // granted and not yet written
}

// reserve starts an upload's reservation with n bytes (none when n ≤ 0; free space
// must still be above the floor).
func (s *Store) reserve(n int64) (*reservation, error) {
	r := &reservation{s: s}
	if err := r.grow(max(n, 0)); err != nil {
		return nil, err
	}
	return r, nil
}

// cover grows the reservation to the body's first total bytes, before they are written.
func (r *reservation) cover(total int64) error {
	if total <= r.granted {
		return nil
	}
	return r.grow(total - r.granted)
}

func (r *reservation) grow(n int64) error {
	// One grant at a time, or two could pass the check against the same free space.
	r.s.grantMu.Lock()
	defer r.s.grantMu.Unlock()
	if err := r.s.CheckFree(n); err != nil {
		return err
	}
	r.s.reserved.Add(n)
	r.held.Add(n)
	r.granted += n
	return nil
}

// wrote hands back the part of the reservation that n bytes just written take up: the
// file system's free space counts them from now on.
func (r *reservation) wrote(n int64) {
	r.held.Add(-n)
	r.s.reserved.Add(-n)
}

// release hands back what was granted and never written. Call it once the upload's
// writes have all ended.
func (r *reservation) release() {
	r.s.reserved.Add(-r.held.Swap(0))
}

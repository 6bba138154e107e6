package ship

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/cis490/cis490/internal/spool"
)

// PartialMaxAge is how long an in-progress file may sit in outbox/ before it is taken
// for the leftover of a producer that died.
const PartialMaxAge = time.Hour

// Swept counts what a sweep did.
type Swept struct {
	Partial int `json:"partial"` // abandoned in-progress files removed
	Stale   int `json:"stale"`   // finished tarballs older than max_age moved to rejected/
	Pruned  int `json:"pruned"`  // sent/ files older than keep_sent removed
}

// sweep tidies the spool before shipping. A stale tarball is never deleted: it goes
// to rejected/ with a reason, where the maintainer decides.
func (r *shipper) sweep() (Swept, error) {
	var sw Swept
	now := r.opts.Now()
	files, err := r.spool.List(spool.Outbox)
	if err != nil {
		return sw, err
	}
	for _, f := range files {
		age := now.Sub(f.ModTime)
		switch {
		case spool.InProgress(f.Name) && age > PartialMaxAge:
			if err := os.Remove(f.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return sw, err
			}
			r.log.Warn().Str("file", f.Name).Str("age", age.Round(time.Second).String()).Msg("removed an in-progress file abandoned for over an hour")
			sw.Partial++
		case !spool.InProgress(f.Name) && age > r.opts.MaxAge:
			why := spool.Reason{RejectedAt: now.UTC(), Reason: fmt.Sprintf("stale: waited %s in outbox/, longer than ship.max_age (%s)", age.Round(time.Minute), r.opts.MaxAge)}
			if err := r.spool.Reject(f, why); errors.Is(err, spool.ErrReplaced) {
				continue // a producer put a new file there since the listing: it is not stale
			} else if err != nil {
				return sw, err
			}
			r.log.Warn().Str("file", f.Name).Str("age", age.Round(time.Second).String()).Msg("moved a stale tarball to rejected/")
			sw.Stale++
		}
	}
	sent, err := r.spool.List(spool.Sent)
	if err != nil {
		return sw, err
	}
	for _, f := range sent {
		if now.Sub(f.ModTime) > r.opts.KeepSent {
			if err := os.Remove(f.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return sw, err
			}
			sw.Pruned++
		}
	}
	return sw, nil
}

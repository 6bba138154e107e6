package spool

import (
	"errors"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// UnitDir is the one spool the lab-host units (cis490-ship.service,
// cis490-doctor-check.service) may write: their ReadWritePaths=, under
// ProtectSystem=strict, which makes every other folder read-only to them.
const UnitDir = "/var/spool/cis490"

// Problem is what keeps the spool from being used at all, with what to do about it:
// its folder does not exist, or it is on a read-only file system (under the units,
// any spool but UnitDir).
type Problem struct {
	Dir string
	// ReadOnly: on a read-only file system; otherwise the folder does not exist.
	ReadOnly bool
	Err      error // what the system said
}

// Summary is what is wrong, in one line.
func (p *Problem) Summary() string {
	if p.ReadOnly {
		return "ship.spool_dir " + p.Dir + " is on a read-only file system"
	}
	return "ship.spool_dir " + p.Dir + " does not exist"
}

// Hint is what to do about it.
func (p *Problem) Hint() string {
	hint := `run "cis490 install lab-host" to create it (or set ship.spool_dir)`
	if !p.ReadOnly {
		return hint
	}
	hint += "; cis490-ship.service may write only " + UnitDir + " (ProtectSystem=strict)"
	if p.Dir == UnitDir {
		return hint + ", and only when it exists as the service starts: if it did, its file system is mounted read-only"
	}
	return hint + ": keep the spool there, or add ReadWritePaths=" + p.Dir + " in a drop-in (systemctl edit cis490-ship.service; the same for cis490-doctor-check.service)"
}

func (p *Problem) Error() string { return p.Summary() + ": " + p.Hint() }

func (p *Problem) Unwrap() error { return p.Err }

// Problem checks the spool's folder itself: nil when it exists and is not on a
// read-only file system. Nothing is created.
func (s Spool) Problem() *Problem {
	if _, err := os.Stat(s.Dir); err != nil {
		return s.Diagnose(err)
	}
	// access(2) answers EROFS for a read-only mount whatever the permissions, so the
	// spool is refused before anything in it is touched.
	if err := unix.Access(s.Dir, unix.W_OK); errors.Is(err, unix.EROFS) {
		return &Problem{Dir: s.Dir, ReadOnly: true, Err: &fs.PathError{Op: "access", Path: s.Dir, Err: err}}
	}
	return nil
}

// Diagnose turns err, met while using the spool, into a Problem when it is one: a
// read-only file system, or the spool's folder gone. Otherwise nil.
func (s Spool) Diagnose(err error) *Problem {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EROFS):
		return &Problem{Dir: s.Dir, ReadOnly: true, Err: err}
	case errors.Is(err, fs.ErrNotExist):
		if _, statErr := os.Stat(s.Dir); errors.Is(statErr, fs.ErrNotExist) {
			return &Problem{Dir: s.Dir, Err: err}
		}
	}
	return nil
}

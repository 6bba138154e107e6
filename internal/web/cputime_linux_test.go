package web

import (
	"time"

	"golang.org/x/sys/unix"
)

// threadCPU is the CPU time the calling OS thread has used: a render's own cost,
// whatever else the machine runs. The caller locks its goroutine to the thread.
// (getrusage counts in scheduler ticks, too coarse for a millisecond.)
func threadCPU() time.Duration {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts) != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

//go:build race

package store

// raceEnabled: the race detector's instrumentation allocates where plain code does
// not, so allocation counts are checked without it.
const raceEnabled = true

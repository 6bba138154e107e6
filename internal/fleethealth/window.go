package fleethealth

import (
	"time"

	"github.com/cis490/cis490/internal/index"
)

// ReadStats counts what a check read of the index.
type ReadStats struct {
	Files   int `json:"files"`
	Lines   int `json:"lines"`   // non-blank lines of those files
	Outside int `json:"outside"` // passed over by their ts, outside the window
	Entries int `json:"entries"` // decoded
	Skipped int `json:"skipped"` // garbage, torn or overlong lines
}

// readWindow gathers the facts of every entry in the index folder dir with
// from <= ts <= to. index.ReadWindow reads them on every core into one windowFacts a
// worker, in no order, which is why every fact is one that merging can build.
func readWindow(dir string, from, to time.Time) (*windowFacts, ReadStats, error) {
	newPart := func() *windowFacts { return newWindowFacts(to) }
	parts, st, err := index.ReadWindow(dir, from, to, newPart, (*windowFacts).add)
	all := newWindowFacts(to)
	for _, p := range parts {
		all.merge(p)
	}
	for _, f := range all.hosts {
		f.prune()
	}
	return all, ReadStats(st), err
}

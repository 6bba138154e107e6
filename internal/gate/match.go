package gate

import (
	"maps"
	"slices"
	"strings"
)

// minCommitLen is the shortest abbreviation that may match (SPEC §3.2).
const minCommitLen = 7

// snapshot is one immutable view of the merged allow-list. Refresh swaps in a new one;
// nothing modifies a snapshot after it is stored.
type snapshot struct {
	open    bool // no sources configured
	waiting bool // sources configured, none loaded yet
	sorted  []string
	set     map[string]struct{}
}

func newSnapshot(lists [][]string) *snapshot {
	set := make(map[string]struct{})
	for _, list := range lists {
		for _, c := range list {
			set[c] = struct{}{}
		}
	}
	return &snapshot{sorted: slices.Sorted(maps.Keys(set)), set: set}
}

// lookup finds an entry that is a prefix of commit or has commit as a prefix. Every
// entry and commit has at least minCommitLen digits, so the shorter one always does.
func (s *snapshot) lookup(commit string) (string, bool) {
	// Entries that equal or extend commit sort immediately at or after it.
	i, _ := slices.BinarySearch(s.sorted, commit)
	if i < len(s.sorted) && strings.HasPrefix(s.sorted[i], commit) {
		return s.sorted[i], true
	}
	// Entries that abbreviate commit: at most 33 map lookups, longest first.
	for n := len(commit) - 1; n >= minCommitLen; n-- {
		if _, ok := s.set[commit[:n]]; ok {
			return commit[:n], true
		}
	}
	return "", false
}

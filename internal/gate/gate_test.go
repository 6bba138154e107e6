package gate

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// listSource is a Source whose answer a test can change between refreshes.
type listSource struct {
	name string
	mu   sync.Mutex
	list []string
	err  error
}

func (s *listSource) Name() string { return s.name }

func (s *listSource) Load(context.Context) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.list...), s.err
}

func (s *listSource) set(list []string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.list, s.err = list, err
}

func testLogger(t *testing.T) zerolog.Logger { return zerolog.New(zerolog.NewTestWriter(t)) }

func newTestGate(t *testing.T, sources ...Source) *Gate {
	return New(sources, Options{Logger: testLogger(t)})
}

const (
	full  = "abcdef1234567890abcdef1234567890abcdef12"
	other = "0123456789abcdef0123456789abcdef01234567"
)

func TestCheck(t *testing.T) {
	t.Parallel()
	loaded := newTestGate(t, &listSource{name: "a", list: []string{full, "1234567", "FEDCBA9876"}})
	require.NoError(t, loaded.Refresh(t.Context()))
	open := newTestGate(t)
	broken := newTestGate(t, &listSource{name: "broken", err: errors.New("boom")})
	require.Error(t, broken.Refresh(t.Context()))

	for _, tc := range []struct {
		name   string
		gate   *Gate
		commit string
		want   Decision
	}{
		{"full", loaded, full, Decision{Stamped: true, Commit: full, Allowed: true, Reason: ReasonAllowed, Match: full}},
		{"commit abbreviates entry", loaded, "abcdef1", Decision{Stamped: true, Commit: "abcdef1", Allowed: true, Reason: ReasonAllowed, Match: full}},
		{"entry abbreviates commit", loaded, "1234567" + strings.Repeat("0", 33), Decision{Stamped: true, Commit: "1234567" + strings.Repeat("0", 33), Allowed: true, Reason: ReasonAllowed, Match: "1234567"}},
		{"uppercase entry", loaded, "fedcba9876ab", Decision{Stamped: true, Commit: "fedcba9876ab", Allowed: true, Reason: ReasonAllowed, Match: "fedcba9876"}},
		{"uppercase commit", loaded, strings.ToUpper(full), Decision{Stamped: true, Commit: full, Allowed: true, Reason: ReasonAllowed, Match: full}},
		{"six digits never match", loaded, "abcdef", Decision{Stamped: true, Commit: "abcdef", Reason: ReasonMalformed}},
		{"diverges after prefix", loaded, "abcdef1234567890f", Decision{Stamped: true, Commit: "abcdef1234567890f", Reason: ReasonNotAllowed}},
		{"not allowed", loaded, other, Decision{Stamped: true, Commit: other, Reason: ReasonNotAllowed}},
		{"unstamped", loaded, "", Decision{Allowed: true, Reason: ReasonUnstamped}},
		{"malformed", loaded, "not-a-commit", Decision{Stamped: true, Commit: "not-a-commit", Reason: ReasonMalformed}},
		{"too long", loaded, full + "0", Decision{Stamped: true, Commit: full + "0", Reason: ReasonMalformed}},
		{"open gate", open, other, Decision{Stamped: true, Commit: other, Allowed: true, Reason: ReasonOpen}},
		{"open gate unstamped", open, "", Decision{Allowed: true, Reason: ReasonUnstamped}},
		{"open gate malformed", open, "xyz", Decision{Stamped: true, Commit: "xyz", Reason: ReasonMalformed}},
		{"no list yet", broken, other, Decision{Stamped: true, Commit: other, Allowed: true, Reason: ReasonNoListYet}},
		{"never refreshed", newTestGate(t, &listSource{name: "idle"}), other, Decision{Stamped: true, Commit: other, Allowed: true, Reason: ReasonNoListYet}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tc.want, tc.gate.Check(tc.commit))
		})
	}
}

func TestSixDigitEntryIsRejected(t *testing.T) {
	t.Parallel()
	g := newTestGate(t, &listSource{name: "short", list: []string{"abcdef"}})
	err := g.Refresh(t.Context())
	require.ErrorContains(t, err, `"abcdef"`)
	assert.Equal(t, ReasonNoListYet, g.Check(full).Reason, "a bad list must not become the list")
}

// TestLookupMatchesBruteForce checks the indexed lookup against the rule as written,
// on a list large enough for the binary search to matter.
func TestLookupMatchesBruteForce(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	hex := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = "0123456789abcdef"[rng.IntN(4)] // a small alphabet makes shared prefixes common
		}
		return string(b)
	}
	var entries []string
	for range 5000 {
		entries = append(entries, hex(7+rng.IntN(34)))
	}
	snap := newSnapshot([][]string{entries})
	matches := func(commit string) bool {
		for _, e := range entries {
			if strings.HasPrefix(e, commit) || strings.HasPrefix(commit, e) {
				return true
			}
		}
		return false
	}
	for range 5000 {
		commit := hex(7 + rng.IntN(34))
		match, ok := snap.lookup(commit)
		require.Equal(t, matches(commit), ok, commit)
		if ok {
			assert.True(t, strings.HasPrefix(match, commit) || strings.HasPrefix(commit, match), "%s vs %s", match, commit)
		}
	}
}

func TestRefreshMergesSourcesAndKeepsLastGoodList(t *testing.T) {
	t.Parallel()
	a := &listSource{name: "a", list: []string{full}}
	b := &listSource{name: "b", list: []string{other, full}}
	g := newTestGate(t, a, b)
	require.NoError(t, g.Refresh(t.Context()))
	assert.Equal(t, 2, g.Stats().Entries, "the union, without duplicates")

	a.set(nil, errors.New("disk on fire"))
	err := g.Refresh(t.Context())
	require.ErrorContains(t, err, "gate source a: disk on fire")
	assert.True(t, g.Check(full).Allowed, "a failing source keeps its last good list")
	assert.True(t, g.Check(other).Allowed)

	st := g.Stats()
	assert.Equal(t, uint64(1), st.RefreshErrors)
	require.Len(t, st.Sources, 2)
	assert.Equal(t, SourceStats{Name: "a", Kind: "other", Entries: 1, Loaded: true, LastOK: st.Sources[0].LastOK, LastError: err.Error(),
		FailingSince: st.Sources[0].FailingSince, Errors: 1}, st.Sources[0])
	assert.False(t, st.Sources[0].LastOK.IsZero())
	assert.Empty(t, st.Sources[1].LastError)

	a.set([]string{"1234567"}, nil)
	b.set([]string{other}, nil)
	require.NoError(t, g.Refresh(t.Context()))
	assert.False(t, g.Check(full[:10]).Allowed, "a recovered source replaces its old list")
	assert.True(t, g.Check("1234567abc").Allowed)
	st = g.Stats()
	assert.Empty(t, st.Sources[0].LastError, "LastError clears once the source is healthy")
	assert.Equal(t, uint64(1), st.RefreshErrors, "the counter is cumulative")
}

func TestCheckDuringRefresh(t *testing.T) {
	t.Parallel()
	src := &listSource{name: "a", list: []string{full}}
	g := newTestGate(t, src)
	require.NoError(t, g.Refresh(t.Context()))

	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for j := range 200 {
				src.set([]string{full, fmt.Sprintf("%07x", i*1000+j)}, nil)
				_ = g.Refresh(context.Background())
			}
		})
		wg.Go(func() {
			for range 2000 {
				if !g.Check(full).Allowed {
					t.Error("an entry present in every list was refused mid-refresh")
					return
				}
			}
		})
	}
	wg.Wait()
}

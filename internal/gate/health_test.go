package gate

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/protocol"
)

// clock is a settable time for Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// Each source's state says whether it ever loaded, when it last did, and since when
// it has been failing: /healthz and fleet health's gate-stale read it.
func TestSourceStatsTrackFailingSince(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 28, 18, 0, 0, 0, time.UTC)
	clk := &clock{t: t0}
	src := &listSource{name: "list", list: []string{full}}
	g := New([]Source{src}, Options{Logger: testLogger(t), Now: clk.now})

	steps := []struct {
		name            string
		at              time.Time
		err             error
		loaded          bool
		lastOK, failing time.Time
	}{
		{"loads", t0, nil, true, t0, time.Time{}},
		{"first failure starts the clock", t0.Add(time.Minute), errors.New("boom"), true, t0, t0.Add(time.Minute)},
		{"a second failure keeps it", t0.Add(2 * time.Minute), errors.New("boom again"), true, t0, t0.Add(time.Minute)},
		{"a success stops it", t0.Add(3 * time.Minute), nil, true, t0.Add(3 * time.Minute), time.Time{}},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			clk.set(s.at)
			src.set([]string{full}, s.err)
			_ = g.Refresh(t.Context())
			st := g.Stats().Sources
			require.Len(t, st, 1)
			assert.Equal(t, s.loaded, st[0].Loaded)
			assert.Equal(t, s.lastOK, st[0].LastOK)
			assert.Equal(t, s.failing, st[0].FailingSince)
		})
	}
}

func TestSourceNeverLoaded(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 28, 18, 0, 0, 0, time.UTC)
	g := New([]Source{&listSource{name: "broken", err: errors.New("boom")}}, Options{Logger: testLogger(t), Now: func() time.Time { return t0 }})
	before := g.Stats().Sources[0]
	assert.False(t, before.Loaded)
	assert.True(t, before.FailingSince.IsZero(), "not tried yet is not failing")

	require.Error(t, g.Refresh(t.Context()))
	after := g.Stats().Sources[0]
	assert.False(t, after.Loaded)
	assert.True(t, after.LastOK.IsZero())
	assert.Equal(t, t0, after.FailingSince)
}

// Kind names a source by what it is, never by its path: /healthz shows it to anyone.
func TestSourceKind(t *testing.T) {
	t.Parallel()
	list := filepath.Join(t.TempDir(), "allowlist")
	require.NoError(t, os.WriteFile(list, []byte(full+"\n"), 0o600))
	g := newTestGate(t, NewFileSource(list), NewGitSource(t.TempDir(), "main", 10), &listSource{name: "custom"})
	_ = g.Refresh(t.Context())
	var kinds []string
	for _, s := range g.Stats().Sources {
		kinds = append(kinds, s.Kind)
	}
	assert.Equal(t, []string{protocol.GateSourceAllowlistFile, protocol.GateSourceGit, "other"}, kinds)
}

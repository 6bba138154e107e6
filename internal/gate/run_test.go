package gate

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	waitFor = 5 * time.Second
	tick    = 10 * time.Millisecond
)

// startRun runs g until the test ends, and waits for Run to return so it never logs
// after the test is over.
func startRun(t *testing.T, g *Gate) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		g.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

func requireAllowed(t *testing.T, g *Gate, commit, msg string) {
	t.Helper()
	require.Eventually(t, func() bool { return g.Check(commit).Reason == ReasonAllowed }, waitFor, tick, msg)
}

func TestRunRefreshesPeriodically(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "allowlist")
	writeFile(t, path, full+"\n")
	// An in-memory source has no file to watch: only the timer can pick up its change.
	mem := &listSource{name: "mem"}
	g := New([]Source{NewFileSource(path), mem}, Options{Refresh: 50 * time.Millisecond, Logger: testLogger(t)})
	startRun(t, g)
	requireAllowed(t, g, full, "Run loads the list when it starts")

	writeFile(t, path, full+"\n"+other+"\n")
	mem.set([]string{"1234567"}, nil)
	requireAllowed(t, g, other, "the edited file is picked up")
	requireAllowed(t, g, "1234567", "the unwatched source is picked up by the timer")
}

// With an hour between refreshes, only the file watch can explain a quick pickup.
func TestRunWatchesFile(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		edit func(t *testing.T, path, content string)
	}{
		{"in place", writeFile},
		{"rename-replace", func(t *testing.T, path, content string) {
			tmp := filepath.Join(filepath.Dir(path), ".allowlist.swp")
			writeFile(t, tmp, content)
			require.NoError(t, os.Rename(tmp, path))
		}},
		{"mv from another folder", func(t *testing.T, path, content string) {
			tmp := filepath.Join(t.TempDir(), "new-list")
			writeFile(t, tmp, content)
			require.NoError(t, os.Rename(tmp, path))
		}},
		{"delete and recreate", func(t *testing.T, path, content string) {
			require.NoError(t, os.Remove(path))
			writeFile(t, path, content)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "allowlist")
			writeFile(t, path, full+"\n")
			g := New([]Source{NewFileSource(path)}, Options{Refresh: time.Hour, Logger: testLogger(t)})
			startRun(t, g)
			requireAllowed(t, g, full, "Run loads the list when it starts")

			tc.edit(t, path, other+"\n")
			require.Eventually(t, func() bool {
				return g.Check(other).Allowed && !g.Check(full).Allowed
			}, waitFor, tick, "the new list replaces the old one")

			tc.edit(t, path, full+"\n")
			requireAllowed(t, g, full, "a second edit is seen too")
		})
	}
}

func TestRunPicksUpFileCreatedLater(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "allowlist")
	g := New([]Source{NewFileSource(path)}, Options{Refresh: time.Hour, Logger: testLogger(t)})
	startRun(t, g)
	require.Eventually(t, func() bool { return g.Stats().RefreshErrors > 0 }, waitFor, tick)
	assert.Equal(t, ReasonNoListYet, g.Check(full).Reason)

	writeFile(t, path, full+"\n")
	requireAllowed(t, g, full, "the new file is loaded without waiting for the timer")
}

// Not parallel: it counts the process's goroutines.
func TestRunStopsPromptly(t *testing.T) {
	before := runtime.NumGoroutine()
	path := filepath.Join(t.TempDir(), "allowlist")
	writeFile(t, path, full+"\n")
	g := New([]Source{NewFileSource(path)}, Options{Refresh: time.Hour, Logger: testLogger(t)})

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		g.Run(ctx)
	}()
	requireAllowed(t, g, full, "Run is up")

	cancel()
	select {
	case <-done:
	case <-time.After(time.Second):
		require.FailNow(t, "Run did not return within a second of cancel")
	}
	// A plain poll: Eventually runs its condition on goroutines of its own.
	for deadline := time.Now().Add(waitFor); runtime.NumGoroutine() > before; time.Sleep(tick) {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			require.FailNow(t, "Run left goroutines behind", "%s", buf[:runtime.Stack(buf, true)])
		}
	}
}

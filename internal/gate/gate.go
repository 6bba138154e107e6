// Package gate holds the receiver's commit allow-list (SPEC §3.2): which code commits a
// lab host may run and still upload. Lists come from sources that are merged and
// refreshed live; Check answers from an immutable snapshot so requests never wait.
package gate

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/cis490/cis490/internal/protocol"
)

// Reasons a Decision carries.
const (
	ReasonAllowed    = "allowed"
	ReasonNotAllowed = "not-allowed"
	ReasonOpen       = "open"        // no sources configured
	ReasonNoListYet  = "no-list-yet" // no source has loaded yet: fail open, never lock the fleet out
	ReasonUnstamped  = "unstamped"
	ReasonMalformed  = "malformed"
)

// DefaultRefresh is used when Options.Refresh is not positive.
const DefaultRefresh = time.Minute

// Source yields a list of allowed commits.
type Source interface {
	Name() string
	Load(ctx context.Context) ([]string, error)
}

// Options configure a Gate.
type Options struct {
	Refresh time.Duration
	Logger  zerolog.Logger
	// Now is the clock the sources' refresh times are read from; nil means time.Now.
	Now func() time.Time
}

// Decision is the gate's answer for one commit stamp.
type Decision struct {
	Stamped bool
	Commit  string // lowercased; kept even when malformed so the caller can record it
	Allowed bool
	Reason  string
	Match   string // the allow-list entry that matched
}

// Stats describe the gate for metrics and diagnostics.
type Stats struct {
	Entries       int
	RefreshErrors uint64
	Sources       []SourceStats
}

// SourceStats describe one source. LastError is empty while the source is healthy.
type SourceStats struct {
	Name string
	// Kind is protocol.GateSourceAllowlistFile or GateSourceGit ("other" for a source
	// of neither kind): what the source is, without its path, for /healthz.
	Kind      string
	Entries   int
	Loaded    bool
	LastOK    time.Time
	LastError string
	// FailingSince is when the refreshes that failed since the last good one began;
	// zero while the source is fine. Fleet health's gate-stale counts from it.
	FailingSince time.Time
	Errors       uint64
}

// Gate is the merged, live allow-list.
type Gate struct {
	sources []Source
	refresh time.Duration
	log     zerolog.Logger
	now     func() time.Time
	snap    atomic.Pointer[snapshot]

	// refreshMu serializes refreshes so a slow, older load never overwrites a newer one.
	refreshMu sync.Mutex
	mu        sync.Mutex // guards the fields below; never held while loading
	state     []sourceState
	errors    uint64
}

type sourceState struct {
	list         []string
	loaded       bool
	lastOK       time.Time
	lastErr      string
	failingSince time.Time
	errors       uint64
}

// New returns a gate over sources. It holds no list until Refresh or Run loads one.
func New(sources []Source, opts Options) *Gate {
	g := &Gate{
		sources: sources,
		refresh: opts.Refresh,
		log:     opts.Logger,
		now:     opts.Now,
		state:   make([]sourceState, len(sources)),
	}
	if g.now == nil {
		g.now = time.Now
	}
	if g.refresh <= 0 {
		g.refresh = DefaultRefresh
	}
	if len(sources) == 0 {
		g.snap.Store(&snapshot{open: true})
	} else {
		g.snap.Store(&snapshot{waiting: true})
	}
	return g
}

// Check decides whether commit may pass. It is safe for concurrent use and never blocks.
func (g *Gate) Check(commit string) Decision {
	if commit == "" {
		return Decision{Allowed: true, Reason: ReasonUnstamped}
	}
	c, ok := protocol.NormalizeCommit(commit)
	d := Decision{Stamped: true, Commit: c}
	if !ok {
		d.Reason = ReasonMalformed
		return d
	}
	s := g.snap.Load()
	switch {
	case s.open:
		d.Allowed, d.Reason = true, ReasonOpen
	case s.waiting:
		d.Allowed, d.Reason = true, ReasonNoListYet
	default:
		d.Match, d.Allowed = s.lookup(c)
		d.Reason = ReasonNotAllowed
		if d.Allowed {
			d.Reason = ReasonAllowed
		}
	}
	return d
}

// Refresh reloads every source now. A source that fails keeps its last good list; the
// returned error joins every failure.
func (g *Gate) Refresh(ctx context.Context) error {
	g.refreshMu.Lock()
	defer g.refreshMu.Unlock()

	lists := make([][]string, len(g.sources))
	errs := make([]error, len(g.sources))
	for i, src := range g.sources {
		lists[i], errs[i] = load(ctx, src)
		if errs[i] != nil {
			g.log.Warn().Str("source", src.Name()).Err(errs[i]).Msg("gate source failed to refresh; keeping its last good list")
		}
	}

	g.mu.Lock()
	before := g.snap.Load()
	now := g.now()
	for i := range g.sources {
		st := &g.state[i]
		if errs[i] != nil {
			st.errors++
			g.errors++
			st.lastErr = errs[i].Error()
			if st.failingSince.IsZero() {
				st.failingSince = now
			}
			continue
		}
		st.list, st.loaded, st.lastOK, st.lastErr, st.failingSince = lists[i], true, now, "", time.Time{}
	}
	after := g.buildLocked()
	g.snap.Store(after)
	g.mu.Unlock()

	switch {
	case after.waiting:
		g.log.Error().Msg("no gate source has loaded yet; the gate lets every commit through until one does")
	case before.waiting || len(before.sorted) != len(after.sorted):
		g.log.Info().Int("entries", len(after.sorted)).Msg("gate allow-list loaded")
	}
	return errors.Join(errs...)
}

// load normalizes what a source returns so the snapshot can rely on valid, lowercase ids.
func load(ctx context.Context, src Source) ([]string, error) {
	list, err := src.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("gate source %s: %w", src.Name(), err)
	}
	for i, entry := range list {
		c, ok := protocol.NormalizeCommit(entry)
		if !ok {
			return nil, fmt.Errorf("gate source %s: not a commit (7 to 40 hex digits): %q", src.Name(), entry)
		}
		list[i] = c
	}
	return list, nil
}

func (g *Gate) buildLocked() *snapshot {
	if len(g.sources) == 0 {
		return &snapshot{open: true}
	}
	var lists [][]string
	for _, st := range g.state {
		if st.loaded {
			lists = append(lists, st.list)
		}
	}
	if lists == nil {
		return &snapshot{waiting: true}
	}
	return newSnapshot(lists)
}

// Stats returns a copy of the gate's counters.
func (g *Gate) Stats() Stats {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := Stats{
		Entries:       len(g.snap.Load().sorted),
		RefreshErrors: g.errors,
		Sources:       make([]SourceStats, len(g.sources)),
	}
	for i, st := range g.state {
		s.Sources[i] = SourceStats{
			Name:         g.sources[i].Name(),
			Kind:         kind(g.sources[i]),
			Entries:      len(st.list),
			Loaded:       st.loaded,
			LastOK:       st.lastOK,
			LastError:    st.lastErr,
			FailingSince: st.failingSince,
			Errors:       st.errors,
		}
	}
	return s
}

func kind(src Source) string {
	switch src.(type) {
	case *fileSource:
		return protocol.GateSourceAllowlistFile
	case *gitSource:
		return protocol.GateSourceGit
	}
	return "other"
}

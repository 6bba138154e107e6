package fleethealth

import (
	"fmt"
	"time"

	"github.com/cis490/cis490/internal/silences"
	"github.com/cis490/cis490/internal/tokens"
)

// inputs gathers what an evaluation knows beyond the index and the reports: who is
// expected (the roster), what is silenced, and the receiver's own facts.
func inputs(opts Options, now time.Time) (fleetInputs, error) {
	in := fleetInputs{receiver: opts.Receiver}
	if opts.TokensFile != "" {
		set, err := tokens.Load(opts.TokensFile)
		if err != nil {
			// An empty roster would forget every host at once (each one retired):
			// better no check than that.
			return in, fmt.Errorf("the roster: %w; fleet-health check reads serve.tokens_file to know which hosts are expected: make it readable by the receiver's user, or fix it (`cis490 token list` says what it holds)", err)
		}
		in.roster = map[string]time.Time{}
		for _, h := range set.Hosts(now) {
			in.roster[h.Host] = h.Created
		}
	}
	set, stats, err := silences.Load(silences.Path(opts.DataDir))
	if err != nil {
		// Too many notifications beat none: a silence that cannot be read is no
		// reason to keep quiet about the rest of the fleet.
		opts.Logger.Error().Err(err).Msg("the silences cannot be read: this check notifies as if there were none; make silences.jsonl readable by the receiver's user")
		return in, nil
	}
	if stats.Skipped > 0 {
		opts.Logger.Warn().Int("skipped", stats.Skipped).Str("file", silences.Path(opts.DataDir)).
			Msg("the silences file has lines that are not silences (torn or garbage); they were skipped")
	}
	in.silenced = func(host, symptom string) (SilenceRef, bool) {
		s, ok := set.Match(host, symptom, now)
		return SilenceRef{ID: s.ID, Until: s.End, Reason: s.Reason}, ok
	}
	return in, nil
}

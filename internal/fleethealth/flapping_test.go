package fleethealth

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/alerts"
)

// flaps makes lab-07 heartbeat at :00 and :05 and at :30 and :35 of each hour from
// 18:00: with silent_after 10m it is silent from :15 to :30 and from :45 to :00.
func flaps(f *fleet) {
	f.cfg.SilentAfter = 10 * time.Minute
	f.report("lab-07", "ok", t0)
	for at := t0; at.Before(t0.Add(5 * time.Hour)); at = at.Add(mins(5)) {
		if at.Sub(t0)%(30*time.Minute) < 10*time.Minute {
			f.req("lab-07", "heartbeat", 204, at, commitOK)
		}
	}
}

// A symptom that comes and goes every half hour writes no more than one firing line
// per repeat_interval (nor two in one UTC hour); one back within repeat_interval of
// its resolution is flapping (marked * here); each episode announced is resolved once.
func TestFlappingFiresAtMostOncePerRepeatInterval(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		repeat time.Duration
		firing []string
	}{
		{time.Hour, []string{"18:15", "19:15*", "20:15*", "21:15*"}},
		{50 * time.Minute, []string{"18:15", "19:15*", "20:15*", "21:15*"}},
		// Back 15 minutes after each resolution, but :45 is the hour of :15's line;
		// at :15 the last resolution is 45 minutes old: not flapping.
		{20 * time.Minute, []string{"18:15", "19:15", "20:15", "21:15"}},
	} {
		t.Run(tc.repeat.String(), func(t *testing.T) {
			t.Parallel()
			f := newFleet(t)
			f.cfg.RepeatInterval = tc.repeat
			flaps(f)
			f.every(t0, t0.Add(4*time.Hour), mins(5))
			lines := f.lines()
			assertUniqueFiringKeys(t, lines)
			var fired []time.Time
			var at []string
			resolved := 0
			for _, l := range lines {
				switch l.Status {
				case alerts.StatusFiring:
					if len(fired) > 0 {
						assert.GreaterOrEqual(t, l.TS.Sub(fired[len(fired)-1]), tc.repeat, "two firing lines within repeat_interval")
					}
					fired = append(fired, l.TS)
					at = append(at, l.TS.Format("15:04")+map[bool]string{true: "*"}[l.Flapping])
				case alerts.StatusResolved:
					resolved++
				}
			}
			assert.Equal(t, tc.firing, at)
			assert.Equal(t, len(fired), resolved, "every announced episode is resolved once: %v", statuses(lines))
		})
	}
}

// A symptom back later than repeat_interval after its resolution is a new episode,
// not a flapping one, and fires at once.
func TestBackAfterTheIntervalIsNotFlapping(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	quiet(f) // silent from 18:00
	f.check(t0)
	f.req("lab-07", "heartbeat", 204, t0.Add(mins(3)), commitOK)
	f.check(t0.Add(mins(5)))  // resolved at 18:05
	f.check(t0.Add(mins(40))) // silent again since 18:33, within the hour of 18:00's line: held back
	f.check(t0.Add(mins(65)))
	lines := f.lines()
	require.Equal(t, []string{"firing lab-07/silent@18:00", "resolved lab-07/silent@18:05", "firing lab-07/silent@19:05"}, statuses(lines))
	assert.True(t, lines[2].Flapping, "back 28 minutes after its resolution")
	assert.Equal(t, t0.Add(mins(33)), lines[2].Since)

	g := newFleet(t)
	quiet(g)
	g.check(t0)
	g.req("lab-07", "heartbeat", 204, t0.Add(mins(3)), commitOK)
	g.check(t0.Add(mins(5)))
	g.req("lab-07", "heartbeat", 204, t0.Add(mins(50)), commitOK)
	g.check(t0.Add(mins(55)))
	g.check(t0.Add(mins(125))) // silent since 19:20, 75 minutes after its resolution
	lines = g.lines()
	require.Equal(t, []string{"firing lab-07/silent@18:00", "resolved lab-07/silent@18:05", "firing lab-07/silent@20:05"}, statuses(lines))
	assert.False(t, lines[2].Flapping)
}

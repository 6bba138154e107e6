package receiver

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/fleethealth"
)

// countingCache evaluates "the fleet" as a document stamped with its evaluation time,
// counting evaluations; fail makes the next one fail.
type countingCache struct {
	*fleetCache
	clock time.Time
	n     atomic.Int32
	fail  bool
}

func newCountingCache(ttl time.Duration, t0 time.Time) *countingCache {
	c := &countingCache{clock: t0}
	c.fleetCache = &fleetCache{ttl: ttl, now: func() time.Time { return c.clock },
		compute: func(now time.Time) (fleethealth.Fleet, error) {
			c.n.Add(1)
			if c.fail {
				c.fail = false
				return fleethealth.Fleet{}, errors.New("the index is unreadable")
			}
			return fleethealth.Fleet{GeneratedAt: now}, nil
		}}
	return c
}

func TestFleetCacheReusesAnEvaluationForItsTTL(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 28, 18, 0, 0, 0, time.UTC)
	type step struct {
		at        time.Duration // from t0
		fail      bool
		evaluated int32 // evaluations so far
		generated time.Duration
	}
	for _, tc := range []struct {
		name  string
		ttl   time.Duration
		steps []step
	}{
		{"within the ttl: once", 5 * time.Second, []step{
			{at: 0, evaluated: 1, generated: 0},
			{at: 4 * time.Second, evaluated: 1, generated: 0},
			{at: 4999 * time.Millisecond, evaluated: 1, generated: 0},
			{at: 5 * time.Second, evaluated: 2, generated: 5 * time.Second},
			{at: 6 * time.Second, evaluated: 2, generated: 5 * time.Second},
		}},
		{"a failure is not kept", 5 * time.Second, []step{
			{at: 0, fail: true, evaluated: 1},
			{at: time.Second, evaluated: 2, generated: time.Second},
			{at: 2 * time.Second, evaluated: 2, generated: time.Second},
		}},
		{"a clock set back further than the ttl evaluates again", 5 * time.Second, []step{
			{at: time.Hour, evaluated: 1, generated: time.Hour},
			{at: time.Hour - 4*time.Second, evaluated: 1, generated: time.Hour},
			{at: 0, evaluated: 2, generated: 0},
		}},
		{"no ttl: every request", -1, []step{
			{at: 0, evaluated: 1, generated: 0},
			{at: 0, evaluated: 2, generated: 0},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newCountingCache(tc.ttl, t0)
			for i, s := range tc.steps {
				c.clock, c.fail = t0.Add(s.at), s.fail
				v, err := c.get()
				if s.fail {
					assert.Error(t, err, "step %d", i)
				} else {
					require.NoError(t, err, "step %d", i)
					assert.Equal(t, t0.Add(s.generated), v.GeneratedAt, "step %d", i)
				}
				assert.Equal(t, s.evaluated, c.n.Load(), "step %d: evaluations", i)
			}
		})
	}
}

// Requests that come while the fleet is being evaluated wait for that evaluation:
// eight at once evaluate once.
func TestFleetCacheConcurrentRequestsEvaluateOnce(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 28, 18, 0, 0, 0, time.UTC)
	const n = 8
	asked := make(chan struct{}, n)
	release := make(chan struct{})
	var evaluations atomic.Int32
	c := &fleetCache{ttl: 5 * time.Second,
		// Every request reads the clock first: once all n have, all are in get.
		now: func() time.Time { asked <- struct{}{}; return t0 },
		compute: func(now time.Time) (fleethealth.Fleet, error) {
			evaluations.Add(1)
			<-release
			return fleethealth.Fleet{GeneratedAt: now}, nil
		}}
	type answer struct {
		v   fleethealth.Fleet
		err error
	}
	answers := make(chan answer, n)
	for range n {
		go func() {
			v, err := c.get()
			answers <- answer{v, err}
		}()
	}
	for range n {
		<-asked
	}
	close(release)
	for range n {
		a := <-answers
		require.NoError(t, a.err)
		assert.Equal(t, t0, a.v.GeneratedAt)
	}
	assert.Equal(t, int32(1), evaluations.Load())
}

// An evaluation older than the ttl but younger than stale is answered at once, and one
// new evaluation runs in the background; older than stale, the request waits for one.
func TestFleetCacheAnswersStaleWhileItEvaluatesAnew(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 28, 18, 0, 0, 0, time.UTC)
	var evaluations atomic.Int32
	release := make(chan struct{})
	var clock atomic.Int64
	clock.Store(t0.UnixNano())
	c := &fleetCache{ttl: 5 * time.Second, stale: time.Minute,
		now: func() time.Time { return time.Unix(0, clock.Load()).UTC() },
		compute: func(now time.Time) (fleethealth.Fleet, error) {
			if evaluations.Add(1) > 1 {
				<-release // the background evaluation, held until the test lets it go
			}
			return fleethealth.Fleet{GeneratedAt: now}, nil
		}}
	v, err := c.get()
	require.NoError(t, err)
	require.Equal(t, t0, v.GeneratedAt)

	clock.Store(t0.Add(10 * time.Second).UnixNano())
	for range 3 { // at once, however many ask: one background evaluation
		v, err = c.get()
		require.NoError(t, err)
		assert.Equal(t, t0, v.GeneratedAt, "the last evaluation, at once")
	}
	close(release)
	c.background.Wait()
	assert.Equal(t, int32(2), evaluations.Load())
	v, err = c.get()
	require.NoError(t, err)
	assert.Equal(t, t0.Add(10*time.Second), v.GeneratedAt, "the background evaluation is kept")

	clock.Store(t0.Add(10*time.Second + time.Minute).UnixNano())
	v, err = c.get()
	require.NoError(t, err)
	assert.Equal(t, t0.Add(10*time.Second+time.Minute), v.GeneratedAt, "too old: the request waits for a new one")
	assert.Equal(t, int32(3), evaluations.Load())
}

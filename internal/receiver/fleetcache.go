package receiver

import (
	"sync"
	"time"

	"github.com/cis490/cis490/internal/fleethealth"
)

// DefaultFleetCache is how long GET /v1/fleet answers with the same evaluation.
const DefaultFleetCache = 5 * time.Second

// fleetCache keeps GET /v1/fleet's latest evaluation for a few seconds. One takes
// most of a second on a Pi at 300 hosts (it decodes a day of index), and the fleet
// page and a few `cis490 fleet --watch` would each pay for it at once. Requests that
// come while one is evaluated wait for it rather than evaluate too: the lock is held
// while computing, so concurrent requests compute once. A failed evaluation is not
// kept: the next request tries again.
type fleetCache struct {
	ttl     time.Duration // 0 or less: every request evaluates
	now     func() time.Time
	compute func(now time.Time) (fleethealth.Fleet, error)

	mu   sync.Mutex
	at   time.Time // the evaluation time of v
	v    fleethealth.Fleet
	have bool
}

// get answers the fleet as of now, or as of at most ttl before.
func (c *fleetCache) get() (fleethealth.Fleet, error) {
	// Read before the lock: one that waited for an evaluation that began after it
	// came takes that one.
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	// A clock set back by more than ttl is no reason to keep an answer from its future.
	if age := now.Sub(c.at); c.have && age < c.ttl && age > -c.ttl {
		return c.v, nil
	}
	v, err := c.compute(now)
	if err != nil {
		return v, err
	}
	c.at, c.v, c.have = now, v, true
	return v, nil
}

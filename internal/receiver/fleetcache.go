package receiver

import (
	"sync"
	"time"

	"github.com/cis490/cis490/internal/fleethealth"
)

// DefaultFleetCache is how long GET /v1/fleet answers with the same evaluation.
const DefaultFleetCache = 5 * time.Second

// DefaultFleetStale is how old an evaluation GET /v1/fleet still answers at once, while
// it evaluates anew in the background: one fleet-health period, so a page or a
// `cis490 fleet --watch` that asks every minute never waits for an evaluation, and
// never sees one older than its previous request.
const DefaultFleetStale = fleethealth.RunInterval

// fleetCache keeps GET /v1/fleet's latest evaluation for a few seconds. One takes
// most of a second on a Pi at 300 hosts (it decodes a day of index), and the fleet
// page and a few `cis490 fleet --watch` would each pay for it at once. Requests that
// come while one is evaluated wait for it rather than evaluate too: the lock is held
// while computing, so concurrent requests compute once. A failed evaluation is not
// kept: the next request tries again. An evaluation older than ttl but younger than
// stale is answered at once while a new one runs in the background (at most one), so
// only a request after a long quiet waits.
type fleetCache struct {
	ttl     time.Duration // 0 or less: every request evaluates
	stale   time.Duration // 0 or less: an evaluation older than ttl is never answered
	now     func() time.Time
	compute func(now time.Time) (fleethealth.Fleet, error)

	mu         sync.Mutex
	at         time.Time // the evaluation time of v
	v          fleethealth.Fleet
	have       bool
	refreshing bool           // a background evaluation is running
	background sync.WaitGroup // tests wait for it
}

// get answers the fleet as of now, or as of at most ttl before.
func (c *fleetCache) get() (fleethealth.Fleet, error) {
	// Read before the lock: one that waited for an evaluation that began after it
	// came takes that one.
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	// A clock set back by more than ttl is no reason to keep an answer from its future.
	if age := now.Sub(c.at); c.have && age > -c.ttl {
		switch {
		case age < c.ttl:
			return c.v, nil
		case age < c.stale:
			if !c.refreshing {
				c.refreshing = true
				c.background.Add(1)
				go c.refresh(now)
			}
			return c.v, nil
		}
	}
	v, err := c.compute(now)
	if err != nil {
		return v, err
	}
	c.at, c.v, c.have = now, v, true
	return v, nil
}

// refresh evaluates the fleet as of now without holding up requests, and keeps the
// result unless a newer one came meanwhile.
func (c *fleetCache) refresh(now time.Time) {
	defer c.background.Done()
	v, err := c.compute(now)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.refreshing = false
	if err == nil && now.After(c.at) {
		c.at, c.v = now, v
	}
}

// forget drops the kept evaluation: the next request evaluates anew. A silence made
// or ended shows in the very next GET /v1/fleet, not up to a fleet-health period later.
func (c *fleetCache) forget() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.have = false
}

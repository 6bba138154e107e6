package receiver

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// cutWait bounds how long the handlers cut at the end of serve.drain_timeout may take
// to return (their reads fail at once; the store then removes their files). With the
// default drain_timeout of 80 s the whole stop stays under the unit's
// TimeoutStopSec=90s.
const cutWait = 5 * time.Second

// shutdown stops httpSrv the way SIGTERM promises (SPEC §3.3): no new connections, idle
// ones closed, new requests 503, and requests in flight get timeout to finish. Those
// still running then are cut: their contexts cancelled and their connections closed,
// so that each upload's handler logs it and the store removes its file from tmp/
// before the process exits. A drain that had to cut uploads is still a clean stop.
func (s *Server) shutdown(log zerolog.Logger, httpSrv *http.Server, cancelRequests context.CancelFunc, timeout time.Duration) error {
	s.Drain()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if httpSrv.Shutdown(ctx) == nil {
		return nil
	}
	s.cutting.Store(true)
	cancelRequests()
	_ = httpSrv.Close()
	waitCtx, cancelWait := context.WithTimeout(context.Background(), cutWait)
	defer cancelWait()
	if err := s.requests.wait(waitCtx); err != nil {
		return fmt.Errorf("shutdown: %d requests still running %v after serve.drain_timeout (%v) cut them; leftovers in tmp/ are swept at the next start",
			s.requests.count(), cutWait, timeout)
	}
	log.Warn().Int64("cut_uploads", s.cut.Load()).Str("drain_timeout", timeout.String()).
		Msg("serve.drain_timeout reached: the requests still in flight were cut (each cut upload is logged above)")
	return nil
}

// requestCounter counts the handlers running, so that a shutdown can wait for those
// it cut: http.Server.Close does not.
type requestCounter struct {
	mu   sync.Mutex
	n    int
	idle chan struct{} // closed when n drops to 0, while someone waits
}

func (c *requestCounter) track(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.n++
		c.mu.Unlock()
		defer c.done()
		next.ServeHTTP(w, r)
	})
}

func (c *requestCounter) done() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n--; c.n == 0 && c.idle != nil {
		close(c.idle)
		c.idle = nil
	}
}

func (c *requestCounter) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// wait returns once no handler runs, or ctx's error.
func (c *requestCounter) wait(ctx context.Context) error {
	c.mu.Lock()
	if c.n == 0 {
		c.mu.Unlock()
		return nil
	}
	if c.idle == nil {
		c.idle = make(chan struct{})
	}
	idle := c.idle
	c.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

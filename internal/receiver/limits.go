package receiver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/rs/zerolog/hlog"

	"github.com/cis490/cis490/internal/protocol"
)

// busyRetryAfter is the Retry-After of an upload refused for a limit, in seconds.
const busyRetryAfter = 10

// limited admits an upload under serve.max_uploads and max_uploads_per_host, holds its
// body to the minimum rate, and logs it if it is dropped or cut by shutdown. It runs
// after authentication and the gate, so refused requests never take a slot.
func (s *Server) limited(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c := callerOf(r)
		sha, err := declaredSHA256(r.Header)
		if c.Host == "" || c.Role == roleAdmin || err != nil {
			next(w, r) // refused before its body is read: nothing to limit
			return
		}
		release, err := s.uploads.acquire(r.Context(), c.Host, sha)
		if err != nil && s.episodes.Has(r.Context(), c.Host, sha) {
			// A retry of what is stored is answered without its body: no slot needed,
			// and a 503 would keep its file in the host's outbox for nothing.
			next(w, r)
			return
		}
		if err != nil {
			w.Header().Set("Retry-After", strconv.Itoa(busyRetryAfter))
			w.Header().Set("Connection", "close") // its body is left unread
			fail(w, r, http.StatusServiceUnavailable, codeBusy, fmt.Sprintf("%v: retry in %d s", err, busyRetryAfter))
			return
		}
		defer release()
		body := &minRateReader{r: r.Body, rc: http.NewResponseController(w), min: s.minBodyRate, window: s.bodyRateWindow}
		r.Body = struct {
			io.Reader
			io.Closer
		}{body, r.Body}
		sw := &statusWriter{ResponseWriter: w}
		next(sw, r)

		ok := sw.status >= 200 && sw.status < 300
		switch {
		case body.slow:
			hlog.FromRequest(r).Warn().Str("host", c.Host).Str("episode", r.Header.Get(protocol.HeaderEpisode)).Str("sha256", sha).
				Int64("bytes", body.n).Int64("min_bytes_per_second", s.minBodyRate).Str("window", s.bodyRateWindow.String()).
				Msg("upload dropped: its body arrived slower than the receiver's minimum rate")
		case !ok && s.cutting.Load():
			s.cut.Add(1)
			hlog.FromRequest(r).Warn().Str("host", c.Host).Str("episode", r.Header.Get(protocol.HeaderEpisode)).Str("sha256", sha).
				Int64("bytes", body.n).Int64("size", r.ContentLength).
				Msg("upload cut by shutdown: it was still arriving at the end of serve.drain_timeout; unless a line of the same request says what is kept of it, nothing is")
		}
	}
}

// uploadLimiter admits at most max uploads at once and perHost from one host. The
// uploads of one episode in flight at once (same host and SHA-256) share one slot: a
// retry racing its own earlier upload must not be refused for the slot that upload
// holds (the store keeps one copy of the two). Each still holds a body buffer, so
// all the bodies together stay under max+perHost.
type uploadLimiter struct {
	max, perHost int
	wait         time.Duration

	mu       sync.Mutex
	slots    int                // taken
	hosts    map[string]int     // slots taken by each host
	episodes map[episodeKey]int // uploads sharing each slot
	bodies   int                // uploads admitted, shared slots or not
	waiters  int
	freed    chan struct{} // closed, and replaced, whenever an upload ends
}

type episodeKey struct{ host, sha string }

func newUploadLimiter(max, perHost int, wait time.Duration) *uploadLimiter {
	return &uploadLimiter{max: max, perHost: perHost, wait: wait,
		hosts: map[string]int{}, episodes: map[episodeKey]int{}, freed: make(chan struct{})}
}

// acquire waits up to l.wait for the upload to be admitted. Its error is the sentence
// that says which limit was reached.
func (l *uploadLimiter) acquire(ctx context.Context, host, sha string) (release func(), err error) {
	k := episodeKey{host, sha}
	timer := time.NewTimer(l.wait)
	defer timer.Stop()
	for {
		l.mu.Lock()
		err := l.admitLocked(k)
		if err == nil {
			l.mu.Unlock()
			return sync.OnceFunc(func() { l.release(k) }), nil
		}
		freed := l.freed
		l.waiters++
		l.mu.Unlock()

		var done error
		select {
		case <-freed:
		case <-timer.C:
			done = err
		case <-ctx.Done():
			done = err
		}
		l.mu.Lock()
		l.waiters--
		l.mu.Unlock()
		if done != nil {
			return nil, done
		}
	}
}

func (l *uploadLimiter) admitLocked(k episodeKey) error {
	if l.episodes[k] > 0 {
		if l.bodies >= l.max+l.perHost {
			return fmt.Errorf("the receiver is already receiving %d upload bodies, the most it takes (serve.max_uploads plus serve.max_uploads_per_host,"+
				" room for retries that race their own upload)", l.bodies)
		}
		l.episodes[k]++
		l.bodies++
		return nil
	}
	switch {
	case l.hosts[k.host] >= l.perHost:
		return fmt.Errorf("host %s already has %d uploads in flight, the most serve.max_uploads_per_host allows", k.host, l.hosts[k.host])
	case l.slots >= l.max:
		return fmt.Errorf("the receiver already has %d uploads in flight, the most serve.max_uploads allows", l.slots)
	}
	l.slots++
	l.hosts[k.host]++
	l.episodes[k] = 1
	l.bodies++
	return nil
}

func (l *uploadLimiter) release(k episodeKey) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.bodies--
	if l.episodes[k]--; l.episodes[k] == 0 {
		delete(l.episodes, k)
		l.slots--
		if l.hosts[k.host]--; l.hosts[k.host] == 0 {
			delete(l.hosts, k.host)
		}
	}
	close(l.freed)
	l.freed = make(chan struct{})
}

func (l *uploadLimiter) waiting() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.waiters
}

var errTooSlow = errors.New("the body arrived slower than the receiver's minimum rate")

// minRateReader fails a body that arrives slower than min bytes a second, averaged
// over each window after its first bytes. A body that stops is the stall timeout's
// (countingReader); this one catches a body that crawls, which would otherwise hold
// an upload slot, a buffer and a file as long as its client likes.
type minRateReader struct {
	r      io.Reader
	rc     *http.ResponseController
	min    int64
	window time.Duration

	n        int64     // bytes so far
	start    time.Time // of the current window; zero until the first bytes
	inWindow int64
	slow     bool
}

func (b *minRateReader) Read(p []byte) (int, error) {
	if b.slow {
		return 0, errTooSlow
	}
	n, err := b.r.Read(p)
	b.n += int64(n)
	now := time.Now()
	if b.start.IsZero() {
		if n > 0 {
			b.start = now
		}
		return n, err
	}
	b.inWindow += int64(n)
	if el := now.Sub(b.start); el >= b.window {
		if float64(b.inWindow) < float64(b.min)*el.Seconds() {
			b.slow = true
			// Nothing more is read from this connection: it is dropped once answered.
			_ = b.rc.SetReadDeadline(now)
			return n, errTooSlow
		}
		b.start, b.inWindow = now, 0
	}
	return n, err
}

package receiver

import (
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// limitedServer serves with at most max connections, a new one closed for another
// after grace without a request; a request to /block says so on entered, then waits
// until release is closed.
func limitedServer(t *testing.T, max int, grace time.Duration, entered, release chan struct{}) (addr string, serveErr chan error, ln net.Listener) {
	t.Helper()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	conns := newConnLimiter(max)
	conns.newGrace = grace
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/block" {
				entered <- struct{}{}
				<-release
			}
		}),
		ConnState: conns.ConnState,
	}
	ln = conns.listen(inner)
	serveErr = make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return inner.Addr().String(), serveErr, ln
}

func get(addr, path string) chan int {
	status := make(chan int, 1)
	go func() {
		res, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Get("http://" + addr + path)
		if err != nil {
			status <- -1
			return
		}
		res.Body.Close()
		status <- res.StatusCode
	}()
	return status
}

func answer(t *testing.T, status chan int, why string) {
	t.Helper()
	select {
	case s := <-status:
		assert.Equal(t, http.StatusOK, s, why)
	case <-time.After(5 * time.Second):
		assert.Fail(t, "no answer", why)
	}
}

// At the cap, the connection idle the longest makes way for a new one.
func TestConnLimiterClosesTheLongestIdleAtTheCap(t *testing.T) {
	t.Parallel()
	addr, _, _ := limitedServer(t, 2, 0, nil, nil)
	var idle []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		defer c.Close()
		idle = append(idle, c)
		time.Sleep(10 * time.Millisecond) // the test's order of arrival, not a wait for the server
	}
	answer(t, get(addr, "/"), "a third connection is served at once, as the oldest idle one is closed")
	require.NoError(t, idle[0].SetReadDeadline(time.Now().Add(5*time.Second)))
	_, err := io.ReadAll(idle[0])
	assert.NoError(t, err, "the oldest idle connection was closed by the server")
}

// A connection that has just connected gets its grace to send a request: another is
// not let in by closing it, and waits until the grace is over.
func TestConnLimiterGivesANewConnectionTimeToSendItsRequest(t *testing.T) {
	t.Parallel()
	// A grace well over the 300 ms watched below: a loaded machine (-race -count=20 on
	// two cores) may stall the test for a while between the dial and the watch.
	const grace = 2 * time.Second
	addr, _, _ := limitedServer(t, 1, grace, nil, nil)
	start := time.Now()
	fresh, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer fresh.Close()
	second := get(addr, "/")
	assert.Never(t, func() bool { return len(second) > 0 }, 300*time.Millisecond, 10*time.Millisecond,
		"a connection within its grace is not closed for another")
	answer(t, second, "once the grace is over, the fresh connection makes way")
	assert.GreaterOrEqual(t, time.Since(start), grace)
	require.NoError(t, fresh.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, err = io.ReadAll(fresh)
	assert.NoError(t, err, "the connection that sent nothing was closed")
}

// When every connection has a request in flight, a new one waits for one to close.
func TestConnLimiterWaitsWhenEveryConnectionIsBusy(t *testing.T) {
	t.Parallel()
	entered, release := make(chan struct{}), make(chan struct{})
	addr, _, _ := limitedServer(t, 2, 0, entered, release)
	busy := []chan int{get(addr, "/block"), get(addr, "/block")}
	<-entered
	<-entered
	third := get(addr, "/")
	assert.Never(t, func() bool { return len(third) > 0 }, 300*time.Millisecond, 10*time.Millisecond,
		"a third connection is served while two have requests in flight")
	close(release)
	for _, b := range busy {
		answer(t, b, "the busy requests end")
	}
	answer(t, third, "the waiting connection is served once one closes")
}

func TestConnLimiterCloseEndsTheWaitForRoom(t *testing.T) {
	t.Parallel()
	entered, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	addr, serveErr, ln := limitedServer(t, 1, 0, entered, release)
	_ = get(addr, "/block")
	<-entered
	waiting, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer waiting.Close()
	require.Eventually(t, ln.(*limitListener).waiting.Load, 5*time.Second, time.Millisecond, "the second connection waits for room")
	require.NoError(t, ln.Close())
	select {
	case err := <-serveErr:
		assert.ErrorIs(t, err, net.ErrClosed)
	case <-time.After(5 * time.Second):
		assert.Fail(t, "Serve did not end when its listener closed")
	}
	require.NoError(t, waiting.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, err = io.ReadAll(waiting)
	assert.NoError(t, err, "the connection that waited for room is closed")
}

// A keep-alive connection just answered is spared for idleConnGrace (its next request
// may be on its way, not yet read), and one room() closed does not come back to the
// count when net/http reports it active a moment later.
func TestConnLimiterSparesAConnectionJustAnswered(t *testing.T) {
	t.Parallel()
	l := newConnLimiter(1)
	a, b := net.Pipe()
	defer b.Close()
	l.ConnState(a, http.StateNew)
	l.ConnState(a, http.StateActive)
	l.ConnState(a, http.StateIdle) // answered just now
	ok, retry := l.room()
	assert.False(t, ok, "a connection answered just now is not closed for another")
	assert.Greater(t, retry, time.Duration(0))
	assert.LessOrEqual(t, retry, idleConnGrace)

	l.mu.Lock()
	l.conns[a] = connSince{idle: true, since: time.Now().Add(-idleConnGrace)} // idle for its grace
	l.mu.Unlock()
	ok, _ = l.room()
	assert.True(t, ok, "an idle connection past its grace makes way")
	l.ConnState(a, http.StateActive) // net/http read a request on it before it saw the close
	l.mu.Lock()
	n := len(l.conns)
	l.mu.Unlock()
	assert.Zero(t, n, "a connection closed for another is not counted again")
}

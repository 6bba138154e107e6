package client

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// A retried upload that gets further each time is not given up on after
// ship.retries cuts: the count of attempts starts again after each bit of progress,
// and ends ship.retries retries after the last.
func TestRetryCountsAfreshAfterProgress(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
	}))
	defer srv.Close()
	c := newTestClient(t, testConfig(t, srv.URL)) // ship.retries = 3
	var tries []int
	res, err := c.Retry(context.Background(), "/v1/episodes", false, func(ctx context.Context, a *Attempt) (*http.Response, error) {
		tries = append(tries, a.N)
		if a.N == 3 || a.N == 6 {
			a.Progressed()
		}
		return c.Send(ctx, Request{Method: http.MethodPut, Path: "/v1/episodes"})
	})
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusBadGateway, res.StatusCode, "the last answer")
	assert.Equal(t, []int{1, 2, 3, 4, 5, 6, 7, 8, 9}, tries, "attempts 6 to 9: the last progress, then 3 retries")
}

// An attempt's Permanent error ends the retries at once, named with the URL.
func TestRetryStopsAtAPermanentError(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, testConfig(t, "http://127.0.0.1:1"))
	calls := 0
	_, err := c.Retry(context.Background(), "/v1/episodes", false, func(context.Context, *Attempt) (*http.Response, error) {
		calls++
		return nil, Permanent(errors.New("the file changed"))
	})
	require.Error(t, err)
	assert.Equal(t, 1, calls)
	assert.Contains(t, err.Error(), "the file changed")
	assert.Contains(t, err.Error(), "http://127.0.0.1:1/v1/episodes")
}

// A resumed upload that only lacks its end sends Content-Length: 0, not a chunked
// body of unknown length.
func TestEmptyBodyIsContentLengthZero(t *testing.T) {
	t.Parallel()
	var length atomic.Int64
	var chunked atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		length.Store(r.ContentLength)
		chunked.Store(len(r.TransferEncoding) > 0)
		w.WriteHeader(http.StatusCreated)
	}))
	defer srv.Close()
	c := newTestClient(t, testConfig(t, srv.URL))
	res, err := c.Send(context.Background(), Request{Method: http.MethodPut, Path: "/v1/episodes", Body: bodyOf(nil)})
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, int64(0), length.Load())
	assert.False(t, chunked.Load())
}

// The transport's connections give up bytes unacknowledged for receiver.timeout
// (TCP_USER_TIMEOUT), so a link that went away is noticed in that time, and a cut
// upload resumed, instead of after TCP's own retries (about 15 minutes).
func TestConnectionsGiveUpAfterReceiverTimeout(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close() // the kernel completes the handshakes: nothing need accept
	cfg := testConfig(t, "http://"+ln.Addr().String())
	cfg.Receiver.Timeout = 2500 * time.Millisecond
	c := newTestClient(t, cfg)
	conn, err := c.http.Transport.(*http.Transport).DialContext(context.Background(), "tcp", ln.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	raw, err := conn.(*net.TCPConn).SyscallConn()
	require.NoError(t, err)
	var got int
	var serr error
	require.NoError(t, raw.Control(func(fd uintptr) { got, serr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT) }))
	require.NoError(t, serr)
	assert.Equal(t, 2500, got, "milliseconds")
}

// The log line before a retry says what happened.
func TestRetryLogsWhy(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	var logs strings.Builder
	c := newTestClient(t, testConfig(t, srv.URL))
	c.log = c.log.Output(&logs)
	res, err := c.Do(context.Background(), Request{Method: http.MethodGet, Path: "/v1/whoami"})
	require.NoError(t, err)
	res.Body.Close()
	assert.Contains(t, logs.String(), "receiver answered 503 Service Unavailable; retrying")
	assert.Contains(t, logs.String(), `"attempt":1`)
}

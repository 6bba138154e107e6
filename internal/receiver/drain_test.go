package receiver_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/config"
	"github.com/cis490/cis490/internal/index"
	"github.com/cis490/cis490/internal/protocol"
	"github.com/cis490/cis490/internal/receiver"
	"github.com/cis490/cis490/internal/testutil"
)

// running is receiver.Run on a loopback port, as `cis490 serve` runs it.
type running struct {
	url  string
	addr string
	data string
	logs *testutil.SyncBuffer
	stop context.CancelFunc
	errc chan error
}

func startRun(t *testing.T, serve func(*config.Serve)) *running {
	t.Helper()
	cfg := config.Default()
	cfg.Serve.Listen = "127.0.0.1:0"
	cfg.Serve.DataDir = filepath.Join(t.TempDir(), "data")
	cfg.Serve.MinFreeBytes = 0
	if serve != nil {
		serve(&cfg.Serve)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{data: cfg.Serve.DataDir, logs: &testutil.SyncBuffer{}, stop: cancel, errc: make(chan error, 1)}
	addrc := make(chan net.Addr, 1)
	go func() {
		r.errc <- receiver.Run(ctx, cfg, zerolog.New(r.logs), func(a net.Addr) { addrc <- a })
	}()
	select {
	case a := <-addrc:
		r.addr, r.url = a.String(), "http://"+a.String()
	case err := <-r.errc:
		cancel()
		require.NoError(t, err, "Run ended before listening")
		require.FailNow(t, "Run ended before listening")
	case <-time.After(10 * time.Second):
		cancel()
		require.FailNow(t, "Run did not start listening", r.logs.String())
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.errc:
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after its context ended")
		}
	})
	return r
}

// wait returns what Run returned, or fails after limit.
func (r *running) wait(t *testing.T, limit time.Duration) error {
	t.Helper()
	select {
	case err := <-r.errc:
		r.errc <- err // for the cleanup
		return err
	case <-time.After(limit):
		require.FailNow(t, "Run did not return", "within %v:\n%s", limit, r.logs.String())
		return nil
	}
}

func (r *running) waitLog(t *testing.T, msg string) {
	t.Helper()
	require.Eventually(t, func() bool { return strings.Contains(r.logs.String(), msg) }, 5*time.Second, 5*time.Millisecond,
		"no %q in the log", msg)
}

// At the end of drain_timeout, uploads still in flight are cut: their handlers are
// stopped, what they had written to tmp/ is removed, each is logged, and Run ends
// without an error. An upload that ends within the window is answered as usual.
func TestDrainCutsUploadsStillInFlightAtItsEnd(t *testing.T) {
	t.Parallel()
	const drain = 500 * time.Millisecond
	r := startRun(t, func(s *config.Serve) { s.DrainTimeout = drain })
	client := &http.Client{Transport: &http.Transport{}}
	slowData := episodeData("slow")
	// On a connection of its own: an http.Client would wait for its body to end
	// before it reports the connection closed.
	slow, err := net.Dial("tcp", r.addr)
	require.NoError(t, err)
	defer slow.Close()
	_, err = fmt.Fprintf(slow, "PUT /v1/episodes HTTP/1.1\r\nHost: x\r\n%s: lab-01\r\n%s: slow.tar\r\n%s: %s\r\nContent-Length: %d\r\n\r\n",
		protocol.HeaderHost, protocol.HeaderEpisode, protocol.HeaderSHA256, sum(slowData), len(slowData))
	require.NoError(t, err)
	_, err = slow.Write(slowData[:1000])
	require.NoError(t, err)
	quick := startUpload(t, client, r.url, "lab-02", "quick.tar", episodeData("quick"))
	waitUploadsIn(t, r.data, 2)

	stopped := time.Now()
	r.stop()
	r.waitLog(t, "shutting down")
	res, err := quick.finish()
	require.NoError(t, err)
	assert.Equal(t, http.StatusCreated, res.status, "an upload that ends within drain_timeout is stored: %s", res.body)

	require.NoError(t, r.wait(t, drain+5*time.Second), "a drain that had to cut uploads is still a clean stop")
	assert.GreaterOrEqual(t, time.Since(stopped), drain, "in-flight uploads had their whole drain_timeout")
	require.NoError(t, slow.SetReadDeadline(time.Now().Add(5*time.Second)))
	reply, err := io.ReadAll(slow)
	var ne net.Error
	assert.False(t, errors.As(err, &ne) && ne.Timeout(), "the cut upload's connection is closed")
	assert.NotContains(t, string(reply), "HTTP/1.1 2", "the cut upload is not answered as a success")
	assert.Empty(t, files(t, filepath.Join(r.data, "tmp")), "nothing is left of the cut upload")
	assert.Len(t, files(t, filepath.Join(r.data, "episodes")), 2, "only the quick upload, and its sidecar")

	cut := logLine(t, r.logs.String(), "upload cut by shutdown")
	assert.Equal(t, "lab-01", cut["host"])
	assert.Equal(t, "slow.tar", cut["episode"])
	assert.Equal(t, sum(slowData), cut["sha256"])
	assert.EqualValues(t, 1000, cut["bytes"])
	assert.NotEmpty(t, cut["req_id"])
	assert.Contains(t, r.logs.String(), `"message":"stopped"`)

	// Cut by the receiver, not refused: the index says 503, which fleet health counts
	// neither as the host's success nor as a refusal of it.
	var cutStatus int
	_, err = index.Read(filepath.Join(r.data, "index"), stopped.Add(-time.Hour), time.Now().Add(time.Hour), func(e index.Entry) error {
		if e.Route == "episodes" && e.SHA256 == sum(slowData) {
			cutStatus = e.Status
		}
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, http.StatusServiceUnavailable, cutStatus)
}

func heartbeatAsync(url string) chan int {
	answered := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, url+"/v1/heartbeat", nil)
		req.Header.Set(protocol.HeaderHost, "lab-01")
		res, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
		if err != nil {
			answered <- -1
			return
		}
		res.Body.Close()
		answered <- res.StatusCode
	}()
	return answered
}

// serve.max_connections: idle connections make way for a new one; connections with
// a request in flight do not, and a new one waits until one closes.
func TestMaxConnections(t *testing.T) {
	t.Parallel()
	t.Run("idle ones make way", func(t *testing.T) {
		t.Parallel()
		r := startRun(t, func(s *config.Serve) { s.MaxConnections = 2 })
		for range 2 {
			c, err := net.Dial("tcp", r.addr)
			require.NoError(t, err)
			defer c.Close()
		}
		select {
		case status := <-heartbeatAsync(r.url):
			assert.Equal(t, http.StatusNoContent, status)
		case <-time.After(5 * time.Second): // idle connections are let go after 10 s otherwise
			assert.Fail(t, "a heartbeat waited behind idle connections")
		}
	})
	t.Run("busy ones do not", func(t *testing.T) {
		t.Parallel()
		r := startRun(t, func(s *config.Serve) { s.MaxConnections = 2 })
		client := &http.Client{Transport: &http.Transport{}}
		a := startUpload(t, client, r.url, "lab-01", "a.tar", episodeData("a"))
		b := startUpload(t, client, r.url, "lab-02", "b.tar", episodeData("b"))
		waitUploadsIn(t, r.data, 2)
		answered := heartbeatAsync(r.url)
		assert.Never(t, func() bool { return len(answered) > 0 }, 300*time.Millisecond, 10*time.Millisecond,
			"a third connection is served while two have uploads in flight")
		res, err := a.finish()
		require.NoError(t, err)
		assert.Equal(t, http.StatusCreated, res.status)
		select {
		case status := <-answered:
			assert.Equal(t, http.StatusNoContent, status)
		case <-time.After(5 * time.Second):
			assert.Fail(t, "the waiting connection was not served once an upload ended")
		}
		res, err = b.finish()
		require.NoError(t, err)
		assert.Equal(t, http.StatusCreated, res.status)
	})
}

func TestRunRefusesLimitsThatAreNotPositive(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		key string
		set func(*config.Serve)
	}{
		{"serve.max_uploads", func(s *config.Serve) { s.MaxUploads = 0 }},
		{"serve.max_uploads_per_host", func(s *config.Serve) { s.MaxUploadsPerHost = -1 }},
		{"serve.max_connections", func(s *config.Serve) { s.MaxConnections = 0 }},
		{"serve.drain_timeout", func(s *config.Serve) { s.DrainTimeout = 0 }},
	} {
		t.Run(tc.key, func(t *testing.T) {
			cfg := config.Default()
			cfg.Serve.Listen = "127.0.0.1:0"
			cfg.Serve.DataDir = filepath.Join(t.TempDir(), "data")
			tc.set(&cfg.Serve)
			err := receiver.Run(t.Context(), cfg, zerolog.Nop(), nil)
			var ce *receiver.ConfigError
			require.ErrorAs(t, err, &ce)
			assert.Contains(t, err.Error(), tc.key)
			assert.NoDirExists(t, cfg.Serve.DataDir, "refused before the data folder is touched")
		})
	}
}

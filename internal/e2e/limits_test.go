package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/protocol"
)

// serveWith starts `cis490 serve` on loopback in open mode with these [serve] keys.
func serveWith(t *testing.T, keys string) (*Server, string) {
	t.Helper()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	cfg := filepath.Join(dir, "lab-host.toml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf("[serve]\nlisten = \"127.0.0.1:0\"\ndata_dir = %q\nmin_free_bytes = 0\n%s", data, keys)), 0o600))
	return StartServe(t, bin, Env(t), "http", "--config", cfg), data
}

// beginUpload sends an upload's headers and the first part of its body on a
// connection of its own, and leaves the rest to the test.
func beginUpload(t *testing.T, addr, host, name string, body []byte, first int) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	_, err = fmt.Fprintf(conn, "PUT /v1/episodes HTTP/1.1\r\nHost: x\r\n%s: %s\r\n%s: %s\r\n%s: %s\r\nContent-Length: %d\r\n\r\n",
		protocol.HeaderHost, host, protocol.HeaderEpisode, name, protocol.HeaderSHA256, sum(body), len(body))
	require.NoError(t, err)
	_, err = conn.Write(body[:first])
	require.NoError(t, err)
	return conn
}

// waitTmpFiles waits until n uploads are in progress: each has a file in tmp/, or in
// tmp/partial/<host>/ when it is resumable (beside its .state once it has one).
func waitTmpFiles(t *testing.T, data string, n int) {
	t.Helper()
	require.Eventually(t, func() bool {
		in := 0
		_ = filepath.WalkDir(filepath.Join(data, "tmp"), func(_ string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && !strings.HasSuffix(d.Name(), ".state") {
				in++
			}
			return nil
		})
		return in == n
	}, 5*time.Second, 10*time.Millisecond, "%d uploads in progress", n)
}

// SIGTERM with one upload that ends within drain_timeout and one that does not: the
// first is stored and answered 201, the second is cut when the window closes (logged,
// nothing left in tmp/), and the process exits 0 right after the window.
func TestServeDrainTimeoutCutsTheUploadsLeftAndExitsZero(t *testing.T) {
	t.Parallel()
	srv, data := serveWith(t, "drain_timeout = \"2s\"\n")
	slowBody := bytes.Repeat([]byte("cut short "), 100000)
	quickBody := bytes.Repeat([]byte("in time "), 100000)
	slow := beginUpload(t, srv.Addr, "lab-01", "slow.tar", slowBody, 4096)
	quick := beginUpload(t, srv.Addr, "lab-02", "quick.tar", quickBody, 4096)
	waitTmpFiles(t, data, 2)
	// Connected before SIGTERM, its request sent after: net/http drops a request it
	// reads once Shutdown has begun, closing the connection unanswered (the 503 of
	// refuseDraining is only for the instant before). What a client sees is written
	// down here so that a change of it shows.
	early, err := net.Dial("tcp", srv.Addr)
	require.NoError(t, err)
	defer early.Close()

	signalled := time.Now()
	srv.Signal()
	require.Eventually(t, func() bool { return srv.HasLog("shutting down") }, 5*time.Second, 10*time.Millisecond)
	// Closed or reset, never answered: on a loaded machine the receiver may not have
	// accepted the connection before its listener closed, and the kernel then resets
	// it, so the write or the read sees ECONNRESET instead of an EOF.
	_, err = fmt.Fprintf(early, "POST /v1/heartbeat HTTP/1.1\r\nHost: x\r\n%s: lab-03\r\nContent-Length: 0\r\n\r\n", protocol.HeaderHost)
	if err == nil {
		require.NoError(t, early.SetReadDeadline(time.Now().Add(5*time.Second)))
		var dropped []byte
		dropped, err = io.ReadAll(early)
		assert.Empty(t, string(dropped), "a request read during the drain is not answered")
	}
	var ne net.Error
	assert.False(t, errors.As(err, &ne) && ne.Timeout(), "the connection is closed, not left hanging: %v", err)
	if err != nil {
		assert.True(t, errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE), "closed or reset, nothing else: %v", err)
	}
	_, err = net.DialTimeout("tcp", srv.Addr, time.Second)
	assert.Error(t, err, "no new connection during the drain")
	_, err = quick.Write(quickBody[4096:])
	require.NoError(t, err)
	require.NoError(t, quick.SetReadDeadline(time.Now().Add(10*time.Second)))
	reply, err := io.ReadAll(quick)
	require.NoError(t, err)
	assert.Contains(t, string(reply), "201 Created", "the upload that ended within the window")

	code := srv.Wait(t)
	took := time.Since(signalled)
	assert.Equal(t, 0, code, "a drain that had to cut an upload is still a clean stop:\n%s", srv.Logs())
	assert.GreaterOrEqual(t, took, 2*time.Second, "in-flight uploads get the whole drain_timeout")
	assert.Less(t, took, 4*time.Second, "the process ends right after drain_timeout")
	entries, err := os.ReadDir(filepath.Join(data, "tmp"))
	require.NoError(t, err)
	assert.Empty(t, entries, "nothing is left of the cut upload in tmp/")
	_, err = os.Stat(filepath.Join(data, "episodes", "lab-02", sum(quickBody)))
	assert.NoError(t, err)
	_, err = os.Stat(filepath.Join(data, "episodes", "lab-01", sum(slowBody)))
	assert.ErrorIs(t, err, os.ErrNotExist)

	var cut map[string]any
	for _, l := range strings.Split(srv.Logs(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && strings.HasPrefix(fmt.Sprint(m["message"]), "upload cut by shutdown") {
			cut = m
		}
	}
	require.NotNil(t, cut, "a log line names the cut upload:\n%s", srv.Logs())
	assert.Equal(t, "lab-01", cut["host"])
	assert.Equal(t, "slow.tar", cut["episode"])
	assert.EqualValues(t, 4096, cut["bytes"])
	assert.Equal(t, "warn", cut["level"])
	assert.NotEmpty(t, cut["req_id"])

	require.NoError(t, slow.SetReadDeadline(time.Now().Add(5*time.Second)))
	reply, _ = io.ReadAll(slow)
	assert.NotContains(t, string(reply), "HTTP/1.1 2", "the cut upload is not answered as a success")
}

func heartbeatAsync(url string) chan int {
	answered := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, url+"/v1/heartbeat", nil)
		req.Header.Set(protocol.HeaderHost, "lab-03")
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

func readStatus(t *testing.T, conn net.Conn) string {
	t.Helper()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
	line := make([]byte, 12)
	_, err := io.ReadFull(conn, line)
	require.NoError(t, err)
	return string(line)
}

// The limits of serve.max_uploads and serve.max_connections, as a client meets them.
func TestServeLimitsUploadsAndConnections(t *testing.T) {
	t.Parallel()
	srv, data := serveWith(t, "max_uploads = 1\nmax_connections = 2\n")
	body := bytes.Repeat([]byte("holds the slot "), 100000)
	holder := beginUpload(t, srv.Addr, "lab-01", "holder.tar", body, 4096)
	waitTmpFiles(t, data, 1)

	// Another upload waits a second for the slot, then is told to come back.
	other := []byte("another episode")
	req, err := http.NewRequest(http.MethodPut, srv.URL+"/v1/episodes", bytes.NewReader(other))
	require.NoError(t, err)
	req.Header.Set(protocol.HeaderHost, "lab-02")
	req.Header.Set(protocol.HeaderEpisode, "other.tar")
	req.Header.Set(protocol.HeaderSHA256, sum(other))
	res, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
	require.NoError(t, err)
	var answer map[string]any
	require.NoError(t, json.NewDecoder(res.Body).Decode(&answer))
	res.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, res.StatusCode)
	assert.Equal(t, "busy", answer["code"])
	assert.Contains(t, answer["error"], "serve.max_uploads")
	assert.NotEmpty(t, res.Header.Get("Retry-After"))

	// A retry of the holder's episode shares its slot; with the two connections busy,
	// a heartbeat's connection waits until one of them is not.
	retry := beginUpload(t, srv.Addr, "lab-01", "holder.tar", body, 4096)
	waitTmpFiles(t, data, 2)
	answered := heartbeatAsync(srv.URL)
	assert.Never(t, func() bool { return len(answered) > 0 }, 300*time.Millisecond, 10*time.Millisecond,
		"a third connection is served while two have uploads in flight")
	_, err = holder.Write(body[4096:])
	require.NoError(t, err)
	assert.Equal(t, "HTTP/1.1 201", readStatus(t, holder))
	select {
	case status := <-answered:
		assert.Equal(t, http.StatusNoContent, status, "served once a connection had no request in flight")
	case <-time.After(5 * time.Second):
		assert.Fail(t, "the waiting connection was never served")
	}
	_, err = retry.Write(body[4096:])
	require.NoError(t, err)
	assert.Equal(t, "HTTP/1.1 200", readStatus(t, retry), "the retry is a duplicate")

	// Connections that send nothing make way for one that does, within seconds.
	var idle []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", srv.Addr)
		require.NoError(t, err)
		defer c.Close()
		idle = append(idle, c)
	}
	select {
	case status := <-heartbeatAsync(srv.URL):
		assert.Equal(t, http.StatusNoContent, status)
	case <-time.After(5 * time.Second): // 10 s when it waits for them to time out
		assert.Fail(t, "a heartbeat waited behind idle connections")
	}
	for _, c := range idle {
		c.Close() // else shutdown gives them 5 s to send a request
	}
	assert.Equal(t, 0, srv.Stop(t))
}

func TestServeRefusesLimitsThatAreNotPositive(t *testing.T) {
	t.Parallel()
	for _, key := range []string{"max_uploads = 0", "max_uploads_per_host = 0", "max_connections = -1", "drain_timeout = \"0s\""} {
		t.Run(key, func(t *testing.T) {
			dir := t.TempDir()
			cfg, data := filepath.Join(dir, "lab-host.toml"), filepath.Join(dir, "data")
			require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf("[serve]\nlisten = \"127.0.0.1:0\"\ndata_dir = %q\n%s\n", data, key)), 0o600))
			r := Run(t, bin, Env(t), nil, "serve", "--config", cfg)
			assert.Equal(t, 2, r.Code, r.Stderr)
			assert.Contains(t, r.Stderr, "serve."+strings.Fields(key)[0])
			assert.NoDirExists(t, data)
		})
	}
}

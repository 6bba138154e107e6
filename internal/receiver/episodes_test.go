package receiver_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/protocol"
)

func TestUploadCreatedThenDuplicate(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	data := []byte("episode bytes\x00\x01\x02")
	r := h.upload(req{host: "Lab-07", commit: "abcdef1"}, "ep-1.tar", data)
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	assert.Equal(t, "created", r.json["status"])
	assert.Equal(t, "lab-07", r.json["host"], "host names are compared lowercased")
	assert.Equal(t, "ep-1.tar", r.json["episode"])
	assert.Equal(t, sum(data), r.json["sha256"])
	assert.EqualValues(t, len(data), r.json["size"])
	assert.NotEmpty(t, r.json["received_at"])

	stored, err := os.ReadFile(filepath.Join(h.data, "episodes", "lab-07", sum(data)))
	require.NoError(t, err)
	assert.Equal(t, data, stored, "stored exactly as received")
	meta, err := os.ReadFile(filepath.Join(h.data, "episodes", "lab-07", sum(data)+".json"))
	require.NoError(t, err)
	assert.Contains(t, string(meta), `"commit":"abcdef1"`)

	for i := 0; i < 3; i++ {
		r = h.upload(req{host: "lab-07"}, "ep-1-again.tar", data)
		require.Equal(t, http.StatusOK, r.status)
		assert.Equal(t, "duplicate", r.json["status"])
		assert.Equal(t, "ep-1.tar", r.json["episode"], "a duplicate reports the stored copy")
	}
	assert.Len(t, files(t, filepath.Join(h.data, "episodes")), 2, "one tarball and its metadata")
	assert.Empty(t, files(t, filepath.Join(h.data, "tmp")))

	// Another host sending the same bytes has its own copy.
	r = h.upload(req{host: "lab-08"}, "ep-1.tar", data)
	assert.Equal(t, http.StatusCreated, r.status)
}

// A receiver killed between linking an episode and writing its .json leaves the
// tarball without metadata (put in place by hand here, as the crash leaves it). The
// client was never answered and retries: it must hear the name it sent, and the
// metadata must be written then.
func TestRetryAfterCrashWritesMissingMetadata(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	data := []byte("linked, then the receiver was killed")
	dir := filepath.Join(h.data, "episodes", "lab-07")
	require.NoError(t, os.MkdirAll(dir, 0o750))
	path := filepath.Join(dir, sum(data))
	require.NoError(t, os.WriteFile(path, data, 0o640))
	at := time.Date(2025, 6, 7, 8, 9, 10, 0, time.UTC)
	require.NoError(t, os.Chtimes(path, at, at))

	for range 2 {
		r := h.upload(req{host: "lab-07", commit: "abcdef1"}, "ep-crash.tar", data)
		require.Equal(t, http.StatusOK, r.status, string(r.body))
		assert.Equal(t, "duplicate", r.json["status"])
		assert.Equal(t, "ep-crash.tar", r.json["episode"])
		assert.EqualValues(t, len(data), r.json["size"])
		assert.Equal(t, "2025-06-07T08:09:10Z", r.json["received_at"], "when its bytes arrived")

		raw, err := os.ReadFile(path + ".json")
		require.NoError(t, err, "the retry writes the missing metadata")
		var meta map[string]any
		require.NoError(t, json.Unmarshal(raw, &meta))
		assert.True(t, strings.HasPrefix(meta["remote"].(string), "127.0.0.1:"), "remote %v", meta["remote"])
		delete(meta, "remote")
		assert.Equal(t, map[string]any{
			"episode": "ep-crash.tar", "size": float64(len(data)), "received_at": "2025-06-07T08:09:10Z",
			"commit": "abcdef1", "repaired": true,
		}, meta)
	}
	assert.Len(t, files(t, filepath.Join(h.data, "episodes")), 2, "one tarball and its metadata")
	assert.Empty(t, files(t, filepath.Join(h.data, "tmp")))
}

func TestConcurrentIdenticalUploadsStoreOneCopy(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	data := bytes.Repeat([]byte("0123456789abcdef"), 256<<10) // 4 MiB: long enough to overlap
	const n = 20
	statuses := make([]int, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			httpReq, _ := http.NewRequest(http.MethodPut, h.ts.URL+"/v1/episodes", bytes.NewReader(data))
			httpReq.Header.Set(protocol.HeaderHost, "lab-07")
			httpReq.Header.Set(protocol.HeaderEpisode, "big.tar")
			httpReq.Header.Set(protocol.HeaderSHA256, sum(data))
			res, err := h.client.Do(httpReq)
			if err != nil {
				statuses[i] = -1
				return
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			statuses[i] = res.StatusCode
		}()
	}
	close(start)
	wg.Wait()
	count := map[int]int{}
	for _, s := range statuses {
		count[s]++
	}
	assert.Equal(t, map[int]int{http.StatusCreated: 1, http.StatusOK: n - 1}, count)
	assert.ElementsMatch(t, []string{filepath.Join("lab-07", sum(data)), filepath.Join("lab-07", sum(data)+".json")},
		files(t, filepath.Join(h.data, "episodes")))
	assert.Empty(t, files(t, filepath.Join(h.data, "tmp")))
}

func TestContentDigestAccepted(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	data := []byte("digest via RFC 9530")
	raw := sha256.Sum256(data)
	hdr := map[string]string{
		protocol.HeaderSHA256: "", protocol.HeaderDigest: "sha-512=:AAAA:, sha-256=:" + base64.StdEncoding.EncodeToString(raw[:]) + ":",
	}
	r := h.upload(req{host: "lab-07", header: hdr}, "ep.tar", data)
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	assert.Equal(t, sum(data), r.json["sha256"])

	hdr[protocol.HeaderDigest] = "sha-256=:not-base64:"
	r = h.upload(req{host: "lab-07", header: hdr}, "ep2.tar", []byte("other"))
	assert.Equal(t, http.StatusBadRequest, r.status)
}

func TestRefusedUploadsKeepNothing(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{maxEpisode: 1024})
	data := []byte("the real body")
	other := sum([]byte("something else"))
	for _, tc := range []struct {
		name   string
		hdr    map[string]string
		body   []byte
		status int
		code   string
	}{
		{"digest mismatch", map[string]string{protocol.HeaderSHA256: other}, data, http.StatusUnprocessableEntity, "digest_mismatch"},
		{"over the limit", nil, bytes.Repeat([]byte("x"), 2048), http.StatusRequestEntityTooLarge, "too_large"},
		{"missing digest", map[string]string{protocol.HeaderSHA256: ""}, data, http.StatusBadRequest, "bad_request"},
		{"uppercase digest", map[string]string{protocol.HeaderSHA256: strings.ToUpper(sum(data))}, data, http.StatusBadRequest, "bad_request"},
		{"headers disagree", map[string]string{protocol.HeaderDigest: "sha-256=:" + base64.StdEncoding.EncodeToString(make([]byte, 32)) + ":"}, data, http.StatusBadRequest, "bad_request"},
		{"missing episode", map[string]string{protocol.HeaderEpisode: ""}, data, http.StatusBadRequest, "bad_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := h.upload(req{host: "lab-07", header: tc.hdr}, "ep.tar", tc.body)
			assert.Equal(t, tc.status, r.status, string(r.body))
			assert.Equal(t, tc.code, r.json["code"])
			assert.NotEmpty(t, r.json["error"])
		})
	}
	t.Run("over the limit without Content-Length", func(t *testing.T) {
		body := io.MultiReader(bytes.NewReader(bytes.Repeat([]byte("y"), 4096)))
		r := h.do(req{method: http.MethodPut, path: "/v1/episodes", body: body, host: "lab-07", header: map[string]string{
			protocol.HeaderEpisode: "chunked.tar", protocol.HeaderSHA256: sum(bytes.Repeat([]byte("y"), 4096)),
		}})
		assert.Equal(t, http.StatusRequestEntityTooLarge, r.status)
	})
	assert.Empty(t, files(t, filepath.Join(h.data, "episodes")))
	assert.Empty(t, files(t, filepath.Join(h.data, "tmp")))
}

func TestClientDisconnectMidUploadKeepsNothing(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	conn, err := net.Dial("tcp", h.ts.Listener.Addr().String())
	require.NoError(t, err)
	_, err = io.WriteString(conn, "PUT /v1/episodes HTTP/1.1\r\nHost: x\r\n"+protocol.HeaderHost+": lab-07\r\n"+
		protocol.HeaderEpisode+": cut.tar\r\n"+protocol.HeaderSHA256+": "+sum([]byte("never"))+"\r\nContent-Length: 1000000\r\n\r\n")
	require.NoError(t, err)
	_, err = conn.Write(bytes.Repeat([]byte("z"), 300000))
	require.NoError(t, err)
	// Wait until the upload is in tmp/, then hang up.
	require.Eventually(t, func() bool { return len(files(t, filepath.Join(h.data, "tmp"))) == 1 }, 5*time.Second, 10*time.Millisecond)
	require.NoError(t, conn.Close())
	require.Eventually(t, func() bool {
		for _, e := range h.indexLines() {
			if e.Route == "episodes" {
				return true
			}
		}
		return false
	}, 5*time.Second, 20*time.Millisecond, "the cut-off upload is recorded in the index")
	assert.Empty(t, files(t, filepath.Join(h.data, "episodes")))
	assert.Empty(t, files(t, filepath.Join(h.data, "tmp")))
}

func TestStalledUploadIsDropped(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{}) // stall timeout 2 s
	conn, err := net.Dial("tcp", h.ts.Listener.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	_, err = io.WriteString(conn, "PUT /v1/episodes HTTP/1.1\r\nHost: x\r\n"+protocol.HeaderHost+": lab-07\r\n"+
		protocol.HeaderEpisode+": slow.tar\r\n"+protocol.HeaderSHA256+": "+sum([]byte("never"))+"\r\nContent-Length: 100\r\n\r\nabc")
	require.NoError(t, err)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, err = io.ReadAll(conn) // returns once the server gives up on the silent client
	var ne net.Error
	require.False(t, errors.As(err, &ne) && ne.Timeout(), "the server must drop a client that stops sending")
	assert.Empty(t, files(t, filepath.Join(h.data, "tmp")))
	assert.Empty(t, files(t, filepath.Join(h.data, "episodes")))
}

func TestDiskBelowMinFreeIs507(t *testing.T) {
	t.Parallel()
	// Real statfs, with a floor no disk can satisfy: the honest way to be "below
	// min_free_bytes" without filling the machine's disk.
	h := newHarness(t, setup{minFree: 1 << 62})
	r := h.upload(req{host: "lab-07"}, "ep.tar", []byte("data"))
	assert.Equal(t, http.StatusInsufficientStorage, r.status)
	assert.Equal(t, "insufficient_storage", r.json["code"])
	assert.Empty(t, files(t, filepath.Join(h.data, "episodes")))
	assert.Empty(t, files(t, filepath.Join(h.data, "tmp")))
}

func TestShuttingDownIs503(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	h.srv.Drain()
	r := h.upload(req{host: "lab-07"}, "ep.tar", []byte("data"))
	assert.Equal(t, http.StatusServiceUnavailable, r.status)
	assert.Equal(t, "shutting_down", r.json["code"])
	assert.NotEmpty(t, r.header.Get("Retry-After"))
}

func TestMaliciousNamesNeverEscapeTheDataFolder(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	data := []byte("payload")
	hosts := []string{"../etc", "..", ".", "a/b", "a%2Fb", "lab\\07", "lab 07", "läb-07", "-lab", "lab-", "lab_07",
		strings.Repeat("a", 64), strings.Repeat("a.", 130), "lab\t07", "x..y"}
	for _, host := range hosts {
		r := h.upload(req{host: host}, "ep.tar", data)
		assert.Equal(t, http.StatusBadRequest, r.status, "host %q", host)
	}
	episodes := []string{"../../etc/passwd", "..", ".hidden", "a/b", "a%2Fb", "a\\b", "é.tar", strings.Repeat("e", 201), "ep tar", "-x", ""}
	for _, ep := range episodes {
		r := h.upload(req{host: "lab-07", header: map[string]string{protocol.HeaderEpisode: ep}}, "", data)
		assert.Equal(t, http.StatusBadRequest, r.status, "episode %q", ep)
	}
	// Names in the path: host-health/{host}.
	for _, p := range []string{"/v1/host-health/..%2F..%2Fevil", "/v1/host-health/%2e%2e", "/v1/host-health/a%00b",
		"/v1/host-health/" + strings.Repeat("h", 300), "/v1/host-health/l%C3%A4b"} {
		r := h.do(req{method: http.MethodPut, path: p, body: strings.NewReader(`{"status":"ok"}`)})
		assert.True(t, r.status >= 400 && r.status < 500, "%s → %d", p, r.status)
	}
	// Header values the HTTP stack itself refuses never reach the handler either.
	conn, err := net.Dial("tcp", h.ts.Listener.Addr().String())
	require.NoError(t, err)
	_, _ = io.WriteString(conn, "PUT /v1/episodes HTTP/1.1\r\nHost: x\r\n"+protocol.HeaderHost+": lab\x0007\r\nContent-Length: 0\r\n\r\n")
	status := make([]byte, 12)
	_, _ = io.ReadFull(conn, status)
	conn.Close()
	assert.Contains(t, string(status), " 400")

	assert.Empty(t, files(t, filepath.Join(h.data, "episodes")))
	assert.Empty(t, files(t, filepath.Join(h.data, "host-health")))
	for _, f := range files(t, h.root) {
		assert.True(t, strings.HasPrefix(f, "data"+string(filepath.Separator)), "file outside the data folder: %s", f)
	}
}

func TestOpenModeWithoutHostHeaderIs400(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	r := h.upload(req{}, "ep.tar", []byte("who am I"))
	assert.Equal(t, http.StatusBadRequest, r.status)
	r = h.do(req{method: http.MethodPost, path: "/v1/heartbeat"})
	assert.Equal(t, http.StatusBadRequest, r.status)
}

// A report body that stops arriving is dropped like a stalled upload.
func TestStalledReportIsDropped(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{}) // stall timeout 2 s
	conn, err := net.Dial("tcp", h.ts.Listener.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	_, err = io.WriteString(conn, "PUT /v1/host-health/lab-07 HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"st")
	require.NoError(t, err)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, err = io.ReadAll(conn)
	var ne net.Error
	require.False(t, errors.As(err, &ne) && ne.Timeout(), "the server must drop a client that stops sending")
	assert.Empty(t, files(t, filepath.Join(h.data, "host-health")))
}

package receiver_test

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/config"
	"github.com/cis490/cis490/internal/objstore"
	"github.com/cis490/cis490/internal/objstore/objstoretest"
	"github.com/cis490/cis490/internal/protocol"
	"github.com/cis490/cis490/internal/receiver"
)

// These run the receiver's upload promises against a real S3 server (objstoretest.Each):
// versitygw here, SeaweedFS in its own job.

const s3Prefix = "pi-1/"

// s3Harness is a receiver whose episodes go to tg's bucket (5 MiB parts), with its
// metrics.
type s3Harness struct {
	*harness
	tg     *objstoretest.Target
	bucket *objstore.Store
	errs   *sync.Map // op: count, from OnError
	mode   s3Mode
}

// s3Mode is how bodies of known length go to the store: as multipart uploads, or
// (where the store checks checksums, as versitygw does) one PutObject each.
type s3Mode struct {
	name         string
	singlePutMax config.ByteSize
}

func (m s3Mode) multipart() bool { return m.singlePutMax == 0 }

// eachS3 runs test against each server of objstoretest.Servers in each mode.
func eachS3(t *testing.T, test func(t *testing.T, tg *objstoretest.Target, mode s3Mode)) {
	for _, m := range []s3Mode{{"multipart", 0}, {"single put", 5 * config.GiB}} {
		t.Run(m.name, func(t *testing.T) {
			objstoretest.Each(t, func(t *testing.T, tg *objstoretest.Target) { test(t, tg, m) })
		})
	}
}

// waitInStore waits until an upload of a multipart mode has begun in the store (a
// single PutObject shows nothing until it is done).
func (h *s3Harness) waitInStore(t *testing.T) {
	t.Helper()
	if h.mode.multipart() {
		require.Eventually(t, func() bool { return len(h.tg.Multiparts(t, s3Prefix)) == 1 }, 10*time.Second, 20*time.Millisecond,
			"the upload reached the store")
	}
}

func newS3Harness(t *testing.T, tg *objstoretest.Target, mode s3Mode, stall time.Duration) *s3Harness {
	t.Helper()
	cfg := tg.Storage(t, s3Prefix)
	cfg.PartSize = 5 << 20
	cfg.SinglePutMax = mode.singlePutMax
	h := &s3Harness{tg: tg, errs: &sync.Map{}, mode: mode}
	var err error
	h.bucket, err = objstore.New(cfg, objstore.Options{Logger: zerolog.New(zerolog.NewTestWriter(t)), StallTimeout: stall,
		OnError: func(op string) {
			n, _ := h.errs.LoadOrStore(op, new(int))
			*n.(*int)++ // tests read it after the requests ended
		}})
	require.NoError(t, err)
	require.NoError(t, h.bucket.Start(t.Context()))
	t.Cleanup(h.bucket.Close)
	h.harness = newHarness(t, setup{episodes: h.bucket})
	return h
}

func randomBody(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return b
}

func episodeKey(host string, data []byte) string {
	return s3Prefix + "episodes/" + host + "/" + sum(data)
}

func TestS3UploadCreatedThenDuplicate(t *testing.T) {
	eachS3(t, func(t *testing.T, tg *objstoretest.Target, mode s3Mode) {
		h := newS3Harness(t, tg, mode, 0)
		data := randomBody(t, 11<<20) // three parts
		first := h.upload(req{host: "lab-07", commit: "abcdef1"}, "ep-1.tar", data)
		require.Equal(t, http.StatusCreated, first.status, string(first.body))
		assert.Equal(t, "created", first.json["status"])
		assert.EqualValues(t, len(data), first.json["size"])

		key := episodeKey("lab-07", data)
		assert.Equal(t, []string{key, key + ".json"}, tg.Keys(t, s3Prefix))
		assert.True(t, bytes.Equal(data, tg.Get(t, key)))
		var side map[string]any
		require.NoError(t, json.Unmarshal(tg.Get(t, key+".json"), &side))
		assert.Equal(t, "ep-1.tar", side["episode"])
		assert.Equal(t, "abcdef1", side["commit"])
		assert.Empty(t, files(t, h.data+"/episodes"), "nothing of it in the data folder")
		assert.Empty(t, files(t, h.data+"/tmp"))

		again := h.upload(req{host: "lab-07"}, "renamed.tar", data)
		require.Equal(t, http.StatusOK, again.status)
		assert.Equal(t, "duplicate", again.json["status"])
		assert.Equal(t, "ep-1.tar", again.json["episode"], "the stored name")
		assert.Equal(t, first.json["received_at"], again.json["received_at"])

		health := h.do(req{method: http.MethodGet, path: "/healthz"})
		var hz protocol.Health
		require.NoError(t, json.Unmarshal(health.body, &hz))
		require.NotNil(t, hz.Storage)
		assert.Equal(t, "s3", hz.Storage.Backend)
		assert.True(t, hz.Storage.OK)
		assert.True(t, hz.Storage.ConditionalWrites)
		assert.NotContains(t, string(health.body), tg.Endpoint, "no address on /healthz")
	})
}

func TestS3ConcurrentIdenticalUploadsCreateOnce(t *testing.T) {
	eachS3(t, func(t *testing.T, tg *objstoretest.Target, mode s3Mode) {
		h := newS3Harness(t, tg, mode, 0)
		data := randomBody(t, 6<<20)
		const n = 20
		statuses := make([]int, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				r, _ := http.NewRequest(http.MethodPut, h.ts.URL+"/v1/episodes", bytes.NewReader(data))
				r.Header.Set(protocol.HeaderHost, "lab-07")
				r.Header.Set(protocol.HeaderEpisode, "big.tar")
				r.Header.Set(protocol.HeaderSHA256, sum(data))
				res, err := h.client.Do(r)
				if err != nil {
					statuses[i] = -1
					return
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				statuses[i] = res.StatusCode
			})
		}
		close(start)
		wg.Wait()
		count := map[int]int{}
		for _, s := range statuses {
			count[s]++
		}
		assert.Equal(t, map[int]int{http.StatusCreated: 1, http.StatusOK: n - 1}, count)
		key := episodeKey("lab-07", data)
		assert.Equal(t, []string{key, key + ".json"}, tg.Keys(t, s3Prefix))
		assert.Empty(t, tg.Multiparts(t, s3Prefix))
	})
}

func TestS3RefusedUploadsLeaveNothing(t *testing.T) {
	eachS3(t, func(t *testing.T, tg *objstoretest.Target, mode s3Mode) {
		h := newS3Harness(t, tg, mode, 0)
		data := randomBody(t, 12<<20)
		mismatch := h.upload(req{host: "lab-07", header: map[string]string{protocol.HeaderSHA256: sum([]byte("other"))}}, "bad.tar", data)
		assertAPIError(t, mismatch, http.StatusUnprocessableEntity, protocol.CodeDigestMismatch)

		tooLarge := newS3HarnessMax(t, tg, mode, 8<<20)
		r := tooLarge.upload(req{host: "lab-07"}, "big.tar", data)
		assertAPIError(t, r, http.StatusRequestEntityTooLarge, protocol.CodeTooLarge)
		chunked := tooLarge.do(req{method: http.MethodPut, path: "/v1/episodes", host: "lab-07",
			body:   io.MultiReader(bytes.NewReader(data)), // no length: sent chunked
			header: map[string]string{protocol.HeaderEpisode: "big.tar", protocol.HeaderSHA256: sum(data)}})
		assertAPIError(t, chunked, http.StatusRequestEntityTooLarge, protocol.CodeTooLarge)

		assert.Empty(t, tg.Keys(t, s3Prefix), "no object")
		assert.Empty(t, tg.Multiparts(t, s3Prefix), "no incomplete multipart upload")
	})
}

func newS3HarnessMax(t *testing.T, tg *objstoretest.Target, mode s3Mode, max int64) *harness {
	cfg := tg.Storage(t, s3Prefix)
	cfg.PartSize = 5 << 20
	cfg.SinglePutMax = mode.singlePutMax
	st, err := objstore.New(cfg, objstore.Options{Logger: zerolog.New(zerolog.NewTestWriter(t))})
	require.NoError(t, err)
	require.NoError(t, st.Start(t.Context()))
	t.Cleanup(st.Close)
	return newHarness(t, setup{episodes: st, maxEpisode: max})
}

// sendPartial starts an upload of size bytes on a raw connection and sends the first
// n of them.
func sendPartial(t *testing.T, h *harness, size, n int, data []byte) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", h.ts.Listener.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	_, err = io.WriteString(conn, "PUT /v1/episodes HTTP/1.1\r\nHost: x\r\n"+protocol.HeaderHost+": lab-07\r\n"+
		protocol.HeaderEpisode+": cut.tar\r\n"+protocol.HeaderSHA256+": "+sum(data[:size])+"\r\nContent-Length: "+strconv.Itoa(size)+"\r\n\r\n")
	require.NoError(t, err)
	_, err = conn.Write(data[:n])
	require.NoError(t, err)
	return conn
}

func waitEpisodeLine(t *testing.T, h *harness) {
	t.Helper()
	require.Eventually(t, func() bool {
		for _, e := range h.indexLines() {
			if e.Route == "episodes" {
				return true
			}
		}
		return false
	}, 10*time.Second, 20*time.Millisecond, "the upload's index line")
}

func TestS3ClientDisconnectMidUploadLeavesNothing(t *testing.T) {
	eachS3(t, func(t *testing.T, tg *objstoretest.Target, mode s3Mode) {
		h := newS3Harness(t, tg, mode, 0)
		data := randomBody(t, 12<<20)
		conn := sendPartial(t, h.harness, len(data), 7<<20, data) // past the first part
		h.waitInStore(t)
		require.NoError(t, conn.Close())
		waitEpisodeLine(t, h.harness)
		assert.Empty(t, tg.Keys(t, s3Prefix))
		assert.Empty(t, tg.Multiparts(t, s3Prefix), "aborted")
		assert.True(t, h.bucket.Health().OK, "the client's doing, not the store's")
	})
}

// readStatus reads an HTTP response off conn while a goroutine keeps sending the rest
// of the body (a client that does not stop for an early answer).
func readStatus(t *testing.T, conn net.Conn, rest []byte) *http.Response {
	t.Helper()
	go func() { _, _ = conn.Write(rest) }() // fails once the server hangs up: fine
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(30*time.Second)))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	res.Body = io.NopCloser(bytes.NewReader(body))
	return res
}

func TestS3StoreDownIs503ThenSuccessWhenBack(t *testing.T) {
	eachS3(t, func(t *testing.T, tg *objstoretest.Target, mode s3Mode) {
		if tg.Stop == nil {
			t.Skip("the server was not started by the test")
		}
		h := newS3Harness(t, tg, mode, 0)
		data := randomBody(t, 12<<20)

		// Stopped mid-upload: the part in flight fails.
		conn := sendPartial(t, h.harness, len(data), 6<<20, data)
		h.waitInStore(t)
		tg.Stop(t)
		res := readStatus(t, conn, data[6<<20:])
		assert.Equal(t, http.StatusServiceUnavailable, res.StatusCode)
		assert.Equal(t, "30", res.Header.Get("Retry-After"))
		var apiErr protocol.Error
		require.NoError(t, json.NewDecoder(res.Body).Decode(&apiErr))
		assert.Equal(t, protocol.CodeStorageUnavailable, apiErr.Code)

		// Down before the upload: the HEAD fails.
		down := h.upload(req{host: "lab-07"}, "ep.tar", data)
		assertAPIError(t, down, http.StatusServiceUnavailable, protocol.CodeStorageUnavailable)
		assert.Equal(t, "30", down.header.Get("Retry-After"))
		hz := h.do(req{method: http.MethodGet, path: "/healthz"})
		assert.Equal(t, http.StatusOK, hz.status, "the receiver itself is up")
		var health protocol.Health
		require.NoError(t, json.Unmarshal(hz.body, &health))
		require.NotNil(t, health.Storage)
		assert.False(t, health.Storage.OK)
		assert.False(t, health.Storage.FailingSince.IsZero())
		_, counted := h.errs.Load("head")
		assert.True(t, counted, "failed requests are counted by operation")
		assert.NotContains(t, h.logs.String(), tg.Secret, "no secret in a log line")
		assert.NotContains(t, string(down.body), tg.Secret)

		tg.Start(t)
		back := h.upload(req{host: "lab-07"}, "ep.tar", data)
		require.Equal(t, http.StatusCreated, back.status, string(back.body))
		assert.True(t, h.bucket.Health().OK)
		key := episodeKey("lab-07", data)
		assert.Equal(t, []string{key, key + ".json"}, tg.Keys(t, s3Prefix))
	})
}

func TestS3StalledStoreIs503(t *testing.T) {
	eachS3(t, func(t *testing.T, tg *objstoretest.Target, mode s3Mode) {
		if tg.Pause == nil {
			t.Skip("the server was not started by the test")
		}
		h := newS3Harness(t, tg, mode, time.Second)
		data := randomBody(t, 12<<20)
		conn := sendPartial(t, h.harness, len(data), 6<<20, data)
		h.waitInStore(t)
		tg.Pause(t)
		t.Cleanup(func() { tg.Resume(t) })
		res := readStatus(t, conn, data[6<<20:])
		assert.Equal(t, http.StatusServiceUnavailable, res.StatusCode, "cut by the store's stall timeout")
		tg.Resume(t)
		op := "put"
		if mode.multipart() {
			op = "upload_part"
		}
		_, counted := h.errs.Load(op)
		assert.True(t, counted, "a %s cut by the watchdog", op)
	})
}

func TestMetricsCountStorageErrors(t *testing.T) {
	m := receiver.NewMetrics(nil, nil)
	m.StorageError("head")
	m.StorageError("head")
	m.StorageError("complete")
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	assert.Contains(t, rec.Body.String(), `cis490_storage_errors_total{op="head"} 2`)
	assert.Contains(t, rec.Body.String(), `cis490_storage_errors_total{op="complete"} 1`)
}

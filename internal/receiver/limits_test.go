package receiver_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/config"
	"github.com/cis490/cis490/internal/gate"
	"github.com/cis490/cis490/internal/index"
	"github.com/cis490/cis490/internal/protocol"
	"github.com/cis490/cis490/internal/receiver"
	"github.com/cis490/cis490/internal/store"
	"github.com/cis490/cis490/internal/testutil"
)

// newLimitedHarness is an open-mode receiver like newHarness(t, setup{}), with the
// limits of serve and opts as the test sets them.
func newLimitedHarness(t *testing.T, serve func(*config.Serve), opts func(*receiver.Options)) *harness {
	t.Helper()
	root := t.TempDir()
	h := &harness{t: t, root: root, data: filepath.Join(root, "data"), logs: &testutil.SyncBuffer{}}
	log := zerolog.New(h.logs)
	cfg := config.Default().Serve
	cfg.DataDir = h.data
	if serve != nil {
		serve(&cfg)
	}
	st, err := store.Open(h.data, store.Options{Logger: log})
	require.NoError(t, err)
	h.index, err = index.OpenWriter(filepath.Join(h.data, "index"))
	require.NoError(t, err)
	t.Cleanup(func() { h.index.Close() })
	o := receiver.Options{Config: cfg, Store: st, Index: h.index, Gate: gate.New(nil, gate.Options{Logger: log}), Logger: log,
		StallTimeout: 5 * time.Second}
	if opts != nil {
		opts(&o)
	}
	h.srv = receiver.New(o)
	h.ts = httptest.NewServer(h.srv.Handler())
	h.client = h.ts.Client()
	t.Cleanup(h.ts.Close)
	return h
}

// slowUpload is a PUT /v1/episodes whose body the test sends when it chooses.
type slowUpload struct {
	pw    *io.PipeWriter
	data  []byte
	sent  int
	ended chan struct{}
	res   resp
	err   error
}

// startUpload begins uploading data as episode name of host to the receiver at base,
// sending nothing of the body yet. The test's cleanup aborts it if it is still going.
func startUpload(t *testing.T, client *http.Client, base, host, name string, data []byte) *slowUpload {
	t.Helper()
	pr, pw := io.Pipe()
	u := &slowUpload{pw: pw, data: data, ended: make(chan struct{})}
	r, err := http.NewRequest(http.MethodPut, base+"/v1/episodes", pr)
	require.NoError(t, err)
	r.ContentLength = int64(len(data))
	r.Header.Set(protocol.HeaderHost, host)
	r.Header.Set(protocol.HeaderEpisode, name)
	r.Header.Set(protocol.HeaderSHA256, sum(data))
	go func() {
		defer close(u.ended)
		res, err := client.Do(r)
		if err != nil {
			u.err = err
			return
		}
		defer res.Body.Close()
		u.res = resp{status: res.StatusCode, header: res.Header}
		u.res.body, u.err = io.ReadAll(res.Body)
		_ = json.Unmarshal(u.res.body, &u.res.json)
	}()
	t.Cleanup(func() {
		pw.CloseWithError(errors.New("the test is over"))
		<-u.ended
	})
	return u
}

// send writes the next n bytes of the body; it returns once the client took them.
func (u *slowUpload) send(n int) error {
	_, err := u.pw.Write(u.data[u.sent : u.sent+n])
	u.sent += n
	return err
}

// finish sends the rest of the body and returns the answer.
func (u *slowUpload) finish() (resp, error) {
	if _, err := u.pw.Write(u.data[u.sent:]); err != nil {
		return resp{}, err
	}
	u.sent = len(u.data)
	if err := u.pw.Close(); err != nil {
		return resp{}, err
	}
	return u.result()
}

func (u *slowUpload) result() (resp, error) {
	select {
	case <-u.ended:
		return u.res, u.err
	case <-time.After(10 * time.Second):
		return resp{}, errors.New("no answer to the upload within 10 s")
	}
}

// waitUploadsIn waits until n uploads are being received: each has its file in tmp/,
// or, resumable, in tmp/partial/<host>/ (beside its .state once it has one).
func waitUploadsIn(t *testing.T, data string, n int) {
	t.Helper()
	require.Eventually(t, func() bool {
		in := 0
		entries, _ := os.ReadDir(filepath.Join(data, "tmp"))
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), "ep-") {
				in++
			}
		}
		hosts, _ := os.ReadDir(filepath.Join(data, "tmp", "partial"))
		for _, h := range hosts {
			partials, _ := os.ReadDir(filepath.Join(data, "tmp", "partial", h.Name()))
			for _, e := range partials {
				if !strings.HasSuffix(e.Name(), ".state") {
					in++
				}
			}
		}
		return in == n
	}, 5*time.Second, 5*time.Millisecond, "%d uploads never got in", n)
}

func assertBusy(t *testing.T, r resp, key string) {
	t.Helper()
	assertAPIError(t, r, http.StatusServiceUnavailable, "busy")
	secs, err := strconv.Atoi(r.header.Get("Retry-After"))
	assert.NoError(t, err, "Retry-After in seconds: %q", r.header.Get("Retry-After"))
	assert.Positive(t, secs)
	assert.Contains(t, string(r.body), key, "the answer names the limit")
}

func episodeData(name string) []byte { return bytes.Repeat([]byte(name), 64<<10) }

func TestUploadsOverMaxUploadsAre503(t *testing.T) {
	t.Parallel()
	h := newLimitedHarness(t, func(c *config.Serve) { c.MaxUploads = 2 }, func(o *receiver.Options) { o.LimitWait = time.Millisecond })
	a := startUpload(t, h.client, h.ts.URL, "lab-01", "a.tar", episodeData("a"))
	b := startUpload(t, h.client, h.ts.URL, "lab-02", "b.tar", episodeData("b"))
	waitUploadsIn(t, h.data, 2)

	c := episodeData("c")
	assertBusy(t, h.upload(req{host: "lab-03"}, "c.tar", c), "serve.max_uploads")
	assert.NotContains(t, files(t, filepath.Join(h.data, "episodes")), filepath.Join("lab-03", sum(c)))

	r, err := a.finish()
	require.NoError(t, err)
	assert.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	assert.Equal(t, http.StatusCreated, h.upload(req{host: "lab-03"}, "c.tar", c).status, "a slot is free again")
	r, err = b.finish()
	require.NoError(t, err)
	assert.Equal(t, http.StatusCreated, r.status, "%s", r.body)
}

func TestAnUploadOverTheLimitWaitsBrieflyForASlot(t *testing.T) {
	t.Parallel()
	h := newLimitedHarness(t, func(c *config.Serve) { c.MaxUploads = 1 }, func(o *receiver.Options) { o.LimitWait = 10 * time.Second })
	a := startUpload(t, h.client, h.ts.URL, "lab-01", "a.tar", episodeData("a"))
	waitUploadsIn(t, h.data, 1)
	b := startUpload(t, h.client, h.ts.URL, "lab-02", "b.tar", episodeData("b"))
	go func() { _ = b.send(len(b.data)); b.pw.Close() }()
	require.Eventually(t, func() bool { return h.srv.UploadsWaiting() == 1 }, 5*time.Second, 5*time.Millisecond)

	r, err := a.finish()
	require.NoError(t, err)
	assert.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	r, err = b.result()
	require.NoError(t, err)
	assert.Equal(t, http.StatusCreated, r.status, "the waiting upload got the freed slot: %s", r.body)
	assert.Zero(t, h.srv.UploadsWaiting())
}

func TestUploadsOverMaxUploadsPerHostAre503(t *testing.T) {
	t.Parallel()
	h := newLimitedHarness(t, func(c *config.Serve) { c.MaxUploadsPerHost = 1 }, func(o *receiver.Options) { o.LimitWait = time.Millisecond })
	a := startUpload(t, h.client, h.ts.URL, "lab-01", "a.tar", episodeData("a"))
	waitUploadsIn(t, h.data, 1)

	assertBusy(t, h.upload(req{host: "lab-01"}, "b.tar", episodeData("b")), "serve.max_uploads_per_host")
	assert.Equal(t, http.StatusCreated, h.upload(req{host: "lab-02"}, "c.tar", episodeData("c")).status, "other hosts are not held up")

	r, err := a.finish()
	require.NoError(t, err)
	assert.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	assert.Equal(t, http.StatusCreated, h.upload(req{host: "lab-01"}, "b.tar", episodeData("b")).status)
}

// A retry racing its own earlier upload (same host, same SHA-256) is not refused for
// the slot that earlier upload holds, and both end as one copy, one 201, one 200.
func TestUploadsOfOneEpisodeCountAsOne(t *testing.T) {
	t.Parallel()
	h := newLimitedHarness(t, func(c *config.Serve) { c.MaxUploads = 1; c.MaxUploadsPerHost = 1 },
		func(o *receiver.Options) { o.LimitWait = time.Millisecond })
	data := episodeData("same")
	first := startUpload(t, h.client, h.ts.URL, "lab-01", "same.tar", data)
	retry := startUpload(t, h.client, h.ts.URL, "lab-01", "same.tar", data)
	waitUploadsIn(t, h.data, 2)

	assertBusy(t, h.upload(req{host: "lab-01"}, "other.tar", episodeData("other")), "serve.max_uploads")
	// The same SHA-256 from another host is another episode.
	assertBusy(t, h.upload(req{host: "lab-02"}, "same.tar", data), "serve.max_uploads")

	var statuses []int
	for _, u := range []*slowUpload{first, retry} {
		r, err := u.finish()
		require.NoError(t, err)
		statuses = append(statuses, r.status)
	}
	assert.ElementsMatch(t, []int{http.StatusCreated, http.StatusOK}, statuses)
	assert.ElementsMatch(t, []string{filepath.Join("lab-01", sum(data)), filepath.Join("lab-01", sum(data)+".json")},
		files(t, filepath.Join(h.data, "episodes")), "exactly one copy")
	assert.Equal(t, http.StatusCreated, h.upload(req{host: "lab-01"}, "other.tar", episodeData("other")).status,
		"the shared slot was given back once both ended")
}

// Joined uploads take no slot, but each holds a buffer: they are bounded too.
func TestJoinedUploadsAreBounded(t *testing.T) {
	t.Parallel()
	h := newLimitedHarness(t, func(c *config.Serve) { c.MaxUploads = 1; c.MaxUploadsPerHost = 1 },
		func(o *receiver.Options) { o.LimitWait = time.Millisecond })
	data := episodeData("same")
	first := startUpload(t, h.client, h.ts.URL, "lab-01", "same.tar", data)
	second := startUpload(t, h.client, h.ts.URL, "lab-01", "same.tar", data)
	waitUploadsIn(t, h.data, 2)
	assertBusy(t, h.upload(req{host: "lab-01"}, "same.tar", data), "serve.max_uploads")
	for _, u := range []*slowUpload{first, second} {
		_, err := u.finish()
		require.NoError(t, err)
	}
}

func TestTooSlowABodyIsDropped(t *testing.T) {
	t.Parallel()
	h := newLimitedHarness(t, nil, func(o *receiver.Options) {
		o.MinBodyRate, o.BodyRateWindow = 1024, 100*time.Millisecond // 102 bytes a window
	})
	data := episodeData("drip")
	u := startUpload(t, h.client, h.ts.URL, "lab-01", "drip.tar", data)
	start := time.Now()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
drip: // a byte every 10 ms is 100 B/s, never idle long enough to stall
	for time.Since(start) < 4*time.Second {
		select {
		case <-u.ended:
			break drip
		case <-tick.C:
			if err := u.send(1); err != nil {
				break drip
			}
		}
	}
	_, _ = u.result()
	require.Less(t, time.Since(start), 4*time.Second, "a body at 100 B/s was not dropped")

	var line index.Entry
	require.Eventually(t, func() bool {
		lines, err := readIndex(h)
		if err == nil && len(lines) == 1 {
			line = lines[0]
		}
		return err == nil && len(lines) == 1
	}, 5*time.Second, 10*time.Millisecond)
	assert.Equal(t, http.StatusBadRequest, line.Status)
	assert.NotEmpty(t, line.Error)
	assert.Empty(t, files(t, filepath.Join(h.data, "tmp")))
	assert.Empty(t, files(t, filepath.Join(h.data, "episodes")))
	dropped := logLine(t, h.logs.String(), "upload dropped")
	assert.Equal(t, line.ID, dropped["req_id"], "the log line names the request")
	assert.Equal(t, "lab-01", dropped["host"])
	assert.Equal(t, "drip.tar", dropped["episode"])
	assert.Positive(t, dropped["bytes"])

	// A body that keeps coming at well over the floor is received.
	steady := startUpload(t, h.client, h.ts.URL, "lab-01", "steady.tar", data)
	for steady.sent+4096 < len(data) && time.Since(start) < 10*time.Second {
		require.NoError(t, steady.send(4096))
		time.Sleep(5 * time.Millisecond) // the client's pace, not a wait for the server
	}
	r, err := steady.finish()
	require.NoError(t, err)
	assert.Equal(t, http.StatusCreated, r.status, "%s", r.body)
}

// logLine returns the first JSON log line whose message starts with msg.
func logLine(t *testing.T, logs, msg string) map[string]any {
	t.Helper()
	for _, l := range strings.Split(logs, "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && strings.HasPrefix(fmt.Sprint(m["message"]), msg) {
			return m
		}
	}
	require.Failf(t, "no log line", "no %q line in:\n%s", msg, logs)
	return nil
}

func TestAccessLogDurationCarriesItsUnit(t *testing.T) {
	t.Parallel()
	h := newLimitedHarness(t, nil, nil)
	r := h.do(req{method: http.MethodGet, path: "/healthz"})
	require.Equal(t, http.StatusOK, r.status)
	var line map[string]any
	require.Eventually(t, func() bool {
		for _, l := range strings.Split(h.logs.String(), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) == nil && m["message"] == "request" {
				line = m
				return true
			}
		}
		return false
	}, 5*time.Second, 5*time.Millisecond)
	dur, ok := line["dur"].(string)
	require.True(t, ok, "dur is a Go duration such as \"1.2ms\", not a bare number: %v", line["dur"])
	_, err := time.ParseDuration(dur)
	assert.NoError(t, err)
	assert.NotEmpty(t, line["req_id"])
}

// A retry of an episode already stored is answered 200 duplicate even while the host is
// at its limit: the answer reads no body, and a 503 would keep the file in the host's
// outbox for nothing.
func TestRetryOfAStoredEpisodeIsNotHeldByTheLimits(t *testing.T) {
	t.Parallel()
	h := newLimitedHarness(t, func(c *config.Serve) { c.MaxUploads = 1; c.MaxUploadsPerHost = 1 },
		func(o *receiver.Options) { o.LimitWait = time.Millisecond })
	stored := episodeData("stored")
	require.Equal(t, http.StatusCreated, h.upload(req{host: "lab-01"}, "stored.tar", stored).status)
	slow := startUpload(t, h.client, h.ts.URL, "lab-01", "slow.tar", episodeData("slow"))
	waitUploadsIn(t, h.data, 1)

	assertBusy(t, h.upload(req{host: "lab-01"}, "new.tar", episodeData("new")), "serve.max_uploads")
	r := h.upload(req{host: "lab-01"}, "stored.tar", stored)
	assert.Equal(t, http.StatusOK, r.status, "%s", r.body)
	assert.Equal(t, "duplicate", r.json["status"])

	done, err := slow.finish()
	require.NoError(t, err)
	assert.Equal(t, http.StatusCreated, done.status)
}

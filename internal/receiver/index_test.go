package receiver_test

import (
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/index"
	"github.com/cis490/cis490/internal/protocol"
	"github.com/cis490/cis490/internal/testutil"
)

// indexView is the part of an index line a request determines.
type indexView struct {
	Host, Route, Method string
	Status              int
	Bytes               int64
	SHA256              string
	Commit              string
	Stamped             bool
}

func viewOf(e index.Entry) indexView {
	return indexView{e.Host, e.Route, e.Method, e.Status, e.Bytes, e.SHA256, e.Commit, e.Stamped}
}

func TestIndexHasOneLinePerV1Request(t *testing.T) {
	t.Parallel()
	f := newFleet(t, setup{allow: allowList})
	base := len(f.indexLines()) // waiting for the tokens made requests too
	data1, data2, data3, data4 := []byte("first episode"), []byte("refused episode"), []byte("unauthorized"), []byte("unstamped!")
	start := time.Now().UTC()

	type step struct {
		name string
		do   func() resp
		want indexView
	}
	steps := []step{
		{"created", func() resp { return f.upload(req{token: f.labA, commit: allowedCommit}, "ep1.tar", data1) },
			indexView{"lab-a", "episodes", "PUT", 201, int64(len(data1)), sum(data1), allowedCommit, true}},
		// A duplicate is answered from the stored copy without reading the body.
		{"duplicate", func() resp { return f.upload(req{token: f.labA, commit: allowedCommit}, "ep1.tar", data1) },
			indexView{"lab-a", "episodes", "PUT", 200, 0, sum(data1), allowedCommit, true}},
		{"refused commit", func() resp { return f.upload(req{token: f.labA, commit: refusedCommit}, "ep2.tar", data2) },
			indexView{"lab-a", "episodes", "PUT", 426, 0, "", refusedCommit, true}},
		// Fleet health must see hosts whose every request is refused: the claimed host
		// and the stamp are recorded before authentication.
		{"no token", func() resp { return f.upload(req{host: "Lab-Z", commit: allowedCommit[:7]}, "ep3.tar", data3) },
			indexView{"lab-z", "episodes", "PUT", 401, 0, "", allowedCommit[:7], true}},
		{"heartbeat", func() resp {
			return f.do(req{method: http.MethodPost, path: "/v1/heartbeat", token: f.labA, commit: allowedCommit[:7], body: jsonBody("ping")})
		}, indexView{"lab-a", "heartbeat", "POST", 204, 4, "", allowedCommit[:7], true}},
		{"unstamped", func() resp { return f.upload(req{token: f.labA}, "ep4.tar", data4) },
			indexView{"lab-a", "episodes", "PUT", 201, int64(len(data4)), sum(data4), "", false}},
		{"report from refused code", func() resp {
			return f.do(req{method: http.MethodPut, path: "/v1/host-health/lab-a", token: f.labA, commit: refusedCommit, body: jsonBody(`{"status":"ok"}`)})
		}, indexView{"lab-a", "host-health", "PUT", 204, 15, "", refusedCommit, true}},
		{"unknown path", func() resp { return f.do(req{method: http.MethodGet, path: "/v1/nope", token: f.admin}) },
			indexView{"", "unknown", "GET", 404, 0, "", "", false}},
	}
	ids := make([]string, len(steps))
	for i, s := range steps {
		r := s.do()
		require.Equal(t, s.want.Status, r.status, "%s: %s", s.name, r.body)
		ids[i] = r.header.Get(protocol.HeaderRequestID)
		require.NotEmpty(t, ids[i], "%s: the response carries its request id", s.name)
		if s.name == "created" {
			hz := f.do(req{method: http.MethodGet, path: "/healthz"})
			require.Equal(t, http.StatusOK, hz.status)
		}
	}

	lines := waitIndexLen(t, f.harness, base+len(steps))
	require.Len(t, lines, base+len(steps), "one line per /v1 request, none for /healthz")
	got := lines[base:]
	for i, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			e := got[i]
			assert.Equal(t, s.want, viewOf(e))
			assert.Equal(t, s.name == "no token", e.Unverified, "only a 401 without a client certificate is indexed under a merely claimed host")
			assert.Equal(t, ids[i], e.ID, "the index line and the response share the request id")
			host, _, err := net.SplitHostPort(e.Remote)
			assert.NoError(t, err, "remote %q", e.Remote)
			assert.Equal(t, "127.0.0.1", host)
			assert.WithinRange(t, e.TS, start, time.Now().UTC())
			assert.Equal(t, time.UTC, e.TS.Location())
			assert.GreaterOrEqual(t, e.DurMS, 0.0)
			if e.Status >= 400 {
				assert.NotEmpty(t, e.Error, "a refused request says why")
			} else {
				assert.Empty(t, e.Error)
			}
		})
	}
	for _, e := range lines {
		assert.NotEqual(t, "/healthz", e.Route)
		assert.NotEqual(t, "healthz", e.Route)
	}
}

func TestRefusalsAreIndexedUnderTheRightHost(t *testing.T) {
	t.Parallel()
	f := newFleet(t, setup{})
	// lab-a's token claiming to be lab-b: the token proves lab-a is calling.
	r := f.do(req{method: http.MethodPost, path: "/v1/heartbeat", token: f.labA, host: "lab-b"})
	require.Equal(t, http.StatusForbidden, r.status)
	// Draining: the 503 is indexed like any other answer.
	f.srv.Drain()
	r = f.do(req{method: http.MethodPost, path: "/v1/heartbeat", token: f.labA})
	require.Equal(t, http.StatusServiceUnavailable, r.status)
	r = f.do(req{method: http.MethodGet, path: "/healthz"})
	assert.Equal(t, http.StatusServiceUnavailable, r.status, "load balancers see the drain too")

	var beats []index.Entry
	require.Eventually(t, func() bool {
		all, err := readIndex(f.harness)
		beats = beats[:0]
		for _, e := range all {
			if e.Route == "heartbeat" {
				beats = append(beats, e)
			}
		}
		return err == nil && len(beats) == 2
	}, 5*time.Second, 20*time.Millisecond)
	assert.Equal(t, "lab-a", beats[0].Host)
	assert.Equal(t, http.StatusForbidden, beats[0].Status)
	assert.Equal(t, http.StatusServiceUnavailable, beats[1].Status)
}

func TestHealthzWrongMethodIs405(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	r := h.do(req{method: http.MethodPost, path: "/healthz"})
	assert.Equal(t, http.StatusMethodNotAllowed, r.status)
}

// A heartbeat exists to be recorded: when its index line cannot be written (the disk
// is full), a 204 would tell the host it was seen while fleet health never sees it.
func TestHeartbeatNotAcknowledgedWhenIndexFull(t *testing.T) {
	t.Parallel()
	disk := testutil.Tmpfs(t, 1<<20)
	h := newHarness(t, setup{root: disk})
	filler := testutil.FillDisk(t, disk)
	beat := func() resp {
		return h.do(req{method: http.MethodPost, path: "/v1/heartbeat", host: "lab-07", body: jsonBody("ping")})
	}
	// The first lines may still fit in the day file's last page.
	status := http.StatusNoContent
	for i := 0; i < 100 && status == http.StatusNoContent; i++ {
		status = beat().status
	}
	assert.Equal(t, http.StatusInsufficientStorage, status)

	require.NoError(t, os.Remove(filler))
	assert.Equal(t, http.StatusNoContent, beat().status)
	lines := h.indexLines()
	last := lines[len(lines)-1]
	assert.Equal(t, indexView{"lab-07", "heartbeat", "POST", 204, 4, "", "", false}, viewOf(last))
	for _, l := range lines {
		if l.Route == "heartbeat" && l.Status == http.StatusNoContent {
			continue
		}
		assert.Equal(t, http.StatusInsufficientStorage, l.Status, "only refused heartbeats besides the answered ones: %+v", l)
	}
}

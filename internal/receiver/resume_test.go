package receiver_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/config"
	"github.com/cis490/cis490/internal/index"
	"github.com/cis490/cis490/internal/objstore/objstoretest"
	"github.com/cis490/cis490/internal/protocol"
	"github.com/cis490/cis490/internal/tokens"
)

const mib = 1 << 20 // the store's chunk: partials are kept in whole ones

// rawUpload is a PUT /v1/episodes on a connection of its own, so that a test can stop
// sending, hang up, or keep it open as a dead link would.
type rawUpload struct {
	conn net.Conn
	body []byte
}

// startRaw sends the request line and headers of host's upload of body from offset
// (Content-Length the rest), then the first n bytes of that rest.
func startRaw(t *testing.T, addr, host string, body []byte, offset int64, n int) *rawUpload {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	extra := ""
	if offset > 0 {
		extra = fmt.Sprintf("%s: %d\r\n", protocol.HeaderUploadOffset, offset)
	}
	_, err = fmt.Fprintf(conn, "PUT /v1/episodes HTTP/1.1\r\nHost: x\r\n%s: %s\r\n%s: ep.tar\r\n%s: %s\r\n%sContent-Length: %d\r\n\r\n",
		protocol.HeaderHost, host, protocol.HeaderEpisode, protocol.HeaderSHA256, sum(body), extra, int64(len(body))-offset)
	require.NoError(t, err)
	_, err = conn.Write(body[offset : offset+int64(n)])
	require.NoError(t, err)
	return &rawUpload{conn: conn, body: body}
}

// cutUpload is an upload of which only n bytes arrive before its client hangs up; it
// returns the cut request's index line once the receiver has recorded it.
func cutUpload(t *testing.T, h *harness, host string, body []byte, offset int64, n int) index.Entry {
	t.Helper()
	before := len(episodeLines(h, http.MethodPut, sum(body)))
	u := startRaw(t, h.ts.Listener.Addr().String(), host, body, offset, n)
	require.NoError(t, u.conn.Close())
	var line index.Entry
	require.Eventually(t, func() bool {
		lines := episodeLines(h, http.MethodPut, sum(body))
		if len(lines) > before {
			line = lines[len(lines)-1]
			return true
		}
		return false
	}, 10*time.Second, 5*time.Millisecond, "the cut upload is recorded")
	return line
}

func episodeLines(h *harness, method, sha string) []index.Entry {
	lines, _ := readIndex(h)
	var out []index.Entry
	for _, e := range lines {
		if e.Route == "episodes" && e.Method == method && e.SHA256 == sha {
			out = append(out, e)
		}
	}
	return out
}

func head(h *harness, host, sha string) resp {
	h.t.Helper()
	return h.do(req{method: http.MethodHead, path: "/v1/episodes/" + sha, host: host})
}

// resumeUpload PUTs body's rest from offset with Upload-Offset.
func resumeUpload(h *harness, host string, body []byte, offset int64, header map[string]string) resp {
	h.t.Helper()
	hd := map[string]string{protocol.HeaderEpisode: "ep.tar", protocol.HeaderSHA256: sum(body),
		protocol.HeaderUploadOffset: strconv.FormatInt(offset, 10)}
	for k, v := range header {
		hd[k] = v
	}
	return h.do(req{method: http.MethodPut, path: "/v1/episodes", body: bytes.NewReader(body[min(offset, int64(len(body))):]), host: host, header: hd})
}

// The whole story of issue 16 over real HTTP: an upload cut at 3.3 MiB keeps 3 MiB;
// HEAD says so (204, Upload-Offset); a PUT from there stores the episode byte for
// byte (201); HEAD then says stored (200, its size). Counted in the metrics, every
// request indexed.
func TestCutUploadResumesOverHTTP(t *testing.T) {
	t.Parallel()
	h, metrics := newMetricsHarness(t, []string{allowedCommit})
	body := randomBody(t, 5*mib+12345)
	sha := sum(body)

	cutLine := cutUpload(t, h, "lab-07", body, 0, 3*mib+300000)
	assert.Equal(t, http.StatusBadRequest, cutLine.Status)
	assert.Contains(t, cutLine.Error, "its first 3145728 bytes are kept")

	r := head(h, "lab-07", sha)
	require.Equal(t, http.StatusNoContent, r.status)
	assert.Equal(t, "3145728", r.header.Get(protocol.HeaderUploadOffset))
	assert.Equal(t, "?0", r.header.Get(protocol.HeaderUploadComplete))
	assert.Equal(t, strconv.Itoa(len(body)), r.header.Get(protocol.HeaderUploadLength), "the length the cut upload declared")
	assert.Equal(t, "no-store", r.header.Get("Cache-Control"))
	assert.Regexp(t, `^max-size=\d+, max-age=8\d{4}$`, r.header.Get(protocol.HeaderUploadLimit), "24 h less a moment")
	assert.Empty(t, files(t, filepath.Join(h.data, "episodes")), "a partial is never visible as an episode")

	r = resumeUpload(h, "lab-07", body, 3*mib, nil)
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	assert.Equal(t, "created", r.json["status"])
	assert.EqualValues(t, len(body), r.json["size"])
	stored, err := os.ReadFile(filepath.Join(h.data, "episodes", "lab-07", sha))
	require.NoError(t, err)
	assert.True(t, bytes.Equal(body, stored), "byte for byte the episode sent")
	assert.Empty(t, files(t, filepath.Join(h.data, "tmp")), "the partial is gone")

	r = head(h, "lab-07", sha)
	require.Equal(t, http.StatusOK, r.status)
	assert.Equal(t, strconv.Itoa(len(body)), r.header.Get("Content-Length"))
	assert.Equal(t, strconv.Itoa(len(body)), r.header.Get(protocol.HeaderUploadOffset))
	assert.Equal(t, "?1", r.header.Get(protocol.HeaderUploadComplete))
	assert.Empty(t, r.body)

	r = resumeUpload(h, "lab-07", body, 3*mib, nil)
	require.Equal(t, http.StatusOK, r.status, "Upload-Offset on a stored episode: it is stored, which is what the client wants")
	assert.Equal(t, "duplicate", r.json["status"])

	heads := episodeLines(h, http.MethodHead, sha)
	require.Len(t, heads, 2, "HEADs are indexed like the uploads")
	assert.Equal(t, []int{http.StatusNoContent, http.StatusOK}, []int{heads[0].Status, heads[1].Status})
	assert.Equal(t, "lab-07", heads[0].Host)
	puts := episodeLines(h, http.MethodPut, sha)
	require.Len(t, puts, 3)
	assert.EqualValues(t, len(body)-3*mib, puts[1].Bytes, "the resume sent only the rest")

	got, err := scrape(metrics.URL)
	require.NoError(t, err)
	assert.Equal(t, 1.0, value(got, "cis490_resumed_uploads_total", nil))
	assert.Equal(t, float64(3*mib), value(got, "cis490_resumed_bytes_total", nil))
}

// The bad inputs: each a clear answer, and the partial as it was.
func TestResumeBadInputs(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{maxEpisode: 64 * mib})
	body := randomBody(t, 4*mib+1)
	sha := sum(body)
	stored := randomBody(t, 1000)
	require.Equal(t, http.StatusCreated, h.upload(req{host: "lab-07"}, "stored.tar", stored).status)
	cutUpload(t, h, "lab-07", body, 0, 2*mib+5)

	for _, tc := range []struct {
		name    string
		host    string
		body    []byte
		offset  string
		status  int
		code    string
		current string // the 409's Upload-Offset
	}{
		{"beyond the partial", "lab-07", body, "3145728", http.StatusConflict, protocol.CodeUploadOffsetMismatch, "2097152"},
		{"short of the partial", "lab-07", body, "1048576", http.StatusConflict, protocol.CodeUploadOffsetMismatch, "2097152"},
		{"no partial of it", "lab-07", randomBody(t, 3*mib), "1048576", http.StatusConflict, protocol.CodeUploadOffsetMismatch, "0"},
		{"another host's partial", "lab-08", body, "2097152", http.StatusConflict, protocol.CodeUploadOffsetMismatch, "0"},
		{"negative", "lab-07", body, "-1", http.StatusBadRequest, "bad_request", ""},
		{"not a number", "lab-07", body, "2MiB", http.StatusBadRequest, "bad_request", ""},
		{"a fraction", "lab-07", body, "2097152.0", http.StatusBadRequest, "bad_request", ""},
		{"beyond max_episode_bytes", "lab-07", body, strconv.Itoa(64*mib + 1), http.StatusRequestEntityTooLarge, "too_large", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			off, _ := strconv.ParseInt(tc.offset, 10, 64)
			r := h.do(req{method: http.MethodPut, path: "/v1/episodes", host: tc.host, body: bytes.NewReader(tc.body[min(max(off, 0), int64(len(tc.body))):]),
				header: map[string]string{protocol.HeaderEpisode: "ep.tar", protocol.HeaderSHA256: sum(tc.body), protocol.HeaderUploadOffset: tc.offset}})
			assertAPIError(t, r, tc.status, tc.code)
			if tc.current != "" {
				assert.Equal(t, tc.current, r.header.Get(protocol.HeaderUploadOffset))
			}
		})
	}
	t.Run("Upload-Offset twice", func(t *testing.T) {
		hr, err := http.NewRequest(http.MethodPut, h.ts.URL+"/v1/episodes", bytes.NewReader(body[2*mib:]))
		require.NoError(t, err)
		hr.Header.Set(protocol.HeaderHost, "lab-07")
		hr.Header.Set(protocol.HeaderEpisode, "ep.tar")
		hr.Header.Set(protocol.HeaderSHA256, sha)
		hr.Header.Add(protocol.HeaderUploadOffset, "2097152")
		hr.Header.Add(protocol.HeaderUploadOffset, "2097152")
		res, err := h.client.Do(hr)
		require.NoError(t, err)
		res.Body.Close()
		assert.Equal(t, http.StatusBadRequest, res.StatusCode)
	})
	t.Run("Upload-Offset on a stored episode", func(t *testing.T) {
		r := resumeUpload(h, "lab-07", stored, 500, nil)
		assert.Equal(t, http.StatusOK, r.status)
		assert.Equal(t, "duplicate", r.json["status"])
	})
	t.Run("HEAD", func(t *testing.T) {
		assert.Equal(t, http.StatusNotFound, head(h, "lab-07", sum([]byte("never sent"))).status)
		assert.Equal(t, http.StatusNotFound, head(h, "lab-08", sha).status, "a partial is its host's")
		assert.Equal(t, http.StatusBadRequest, head(h, "lab-07", "ABCDEF").status)
		assert.Equal(t, http.StatusBadRequest, head(h, "lab-07", strings.ToUpper(sha)).status)
		assert.Equal(t, http.StatusBadRequest, h.do(req{method: http.MethodHead, path: "/v1/episodes/" + sha}).status, "open mode names the host")
		r := h.do(req{method: http.MethodPut, path: "/v1/episodes/" + sha, host: "lab-07"})
		assertAPIError(t, r, http.StatusMethodNotAllowed, "method_not_allowed")
		assert.Equal(t, http.MethodHead, r.header.Get("Allow"))
	})

	r := head(h, "lab-07", sha)
	require.Equal(t, http.StatusNoContent, r.status)
	assert.Equal(t, "2097152", r.header.Get(protocol.HeaderUploadOffset), "the partial as it was")
	r = resumeUpload(h, "lab-07", body, 2*mib, nil)
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
}

// With tokens: HEAD is a host's, for its own episodes; the admin is refused, and so
// is an unknown token.
func TestHeadEpisodeIsTheHostsOwn(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{tokens: true})
	tokA, tokB := h.mint(tokens.Identity{Host: "lab-a"}), h.mint(tokens.Identity{Host: "lab-b"})
	admin := h.mint(tokens.Identity{Admin: "root"})
	waitForToken(t, h, nil, admin)
	body := []byte("lab-a's episode")
	r := h.do(req{method: http.MethodPut, path: "/v1/episodes", token: tokA, body: bytes.NewReader(body),
		header: map[string]string{protocol.HeaderEpisode: "a.tar", protocol.HeaderSHA256: sum(body)}})
	require.Equal(t, http.StatusCreated, r.status)
	path := "/v1/episodes/" + sum(body)
	assert.Equal(t, http.StatusOK, h.do(req{method: http.MethodHead, path: path, token: tokA}).status)
	assert.Equal(t, http.StatusNotFound, h.do(req{method: http.MethodHead, path: path, token: tokB}).status, "lab-b has no such episode")
	assert.Equal(t, http.StatusForbidden, h.do(req{method: http.MethodHead, path: path, token: admin}).status)
	assert.Equal(t, http.StatusUnauthorized, h.do(req{method: http.MethodHead, path: path, token: "nope"}).status)
	assert.Equal(t, http.StatusUnauthorized, h.do(req{method: http.MethodHead, path: path}).status)
}

// The version gate holds for HEAD as for the upload it resumes.
func TestHeadEpisodeIsGated(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{allow: []string{allowedCommit}})
	sha := sum([]byte("x"))
	assert.Equal(t, http.StatusUpgradeRequired, h.do(req{method: http.MethodHead, path: "/v1/episodes/" + sha, host: "lab-07", commit: refusedCommit}).status)
	assert.Equal(t, http.StatusNotFound, h.do(req{method: http.MethodHead, path: "/v1/episodes/" + sha, host: "lab-07", commit: allowedCommit}).status)
}

// Two clients continuing the same partial at once: the first holds it while its body
// arrives, the second is answered 409 with the partial's offset; the first then
// completes it.
func TestConcurrentResumesOverHTTP(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{stall: time.Minute})
	body := randomBody(t, 6*mib+7)
	sha := sum(body)
	cutUpload(t, h, "lab-07", body, 0, 2*mib+1)

	first := startRaw(t, h.ts.Listener.Addr().String(), "lab-07", body, 2*mib, mib+10) // holds after 3 MiB + 10
	state := filepath.Join(h.data, "tmp", "partial", "lab-07", sha+".state")
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(state)
		return err == nil && bytes.Contains(b, []byte(`"offset":3145728`))
	}, 10*time.Second, 5*time.Millisecond, "the first resume is receiving")

	r := resumeUpload(h, "lab-07", body, 2*mib, nil)
	assertAPIError(t, r, http.StatusConflict, protocol.CodeUploadOffsetMismatch)
	assert.Equal(t, "3145728", r.header.Get(protocol.HeaderUploadOffset), "where the partial stands as far as it is recorded")
	assert.Contains(t, r.json["error"], "another request is continuing")

	_, err := first.conn.Write(body[3*mib+10:])
	require.NoError(t, err)
	res, err := http.ReadResponse(bufio.NewReader(first.conn), nil)
	require.NoError(t, err)
	defer res.Body.Close()
	assert.Equal(t, http.StatusCreated, res.StatusCode)
	stored, err := os.ReadFile(filepath.Join(h.data, "episodes", "lab-07", sha))
	require.NoError(t, err)
	assert.True(t, bytes.Equal(body, stored))
}

// A link that dies without a word leaves the receiver reading a connection nobody
// writes to (up to the stall timeout, a minute here). The client's HEAD takes the
// partial over at once: the old request is interrupted, keeps what it had, and the
// offset answered is the one the resume is accepted at.
func TestHeadTakesOverAHungUpload(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{stall: time.Minute})
	body := randomBody(t, 5*mib+99)
	sha := sum(body)
	startRaw(t, h.ts.Listener.Addr().String(), "lab-07", body, 0, 2*mib+40000) // and then nothing
	state := filepath.Join(h.data, "tmp", "partial", "lab-07", sha+".state")
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(state)
		return err == nil && bytes.Contains(b, []byte(`"offset":2097152`))
	}, 10*time.Second, 5*time.Millisecond, "the upload is receiving")

	start := time.Now()
	r := head(h, "lab-07", sha)
	require.Equal(t, http.StatusNoContent, r.status)
	assert.Less(t, time.Since(start), 10*time.Second, "answered without waiting for the stall timeout")
	assert.Equal(t, "2097152", r.header.Get(protocol.HeaderUploadOffset))
	r = resumeUpload(h, "lab-07", body, 2*mib, nil)
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	stored, err := os.ReadFile(filepath.Join(h.data, "episodes", "lab-07", sha))
	require.NoError(t, err)
	assert.True(t, bytes.Equal(body, stored))
	puts := episodeLines(h, http.MethodPut, sha)
	require.Len(t, puts, 2)
	assert.Contains(t, puts[0].Error, "took it over", "the interrupted request says why")
}

// A torn state file: HEAD says there is nothing (404), a resume is told to start over
// (409 at 0), and the upload from the first byte is stored. A resume whose whole
// digest does not match is 422, and the partial goes.
func TestUntrustedOrWrongPartialStartsOver(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	body := randomBody(t, 3*mib+1)
	sha := sum(body)
	cutUpload(t, h, "lab-07", body, 0, 2*mib)
	state := filepath.Join(h.data, "tmp", "partial", "lab-07", sha+".state")
	b, err := os.ReadFile(state)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(state, b[:len(b)-10], 0o640))
	assert.Equal(t, http.StatusNotFound, head(h, "lab-07", sha).status)
	r := resumeUpload(h, "lab-07", body, 2*mib, nil)
	assertAPIError(t, r, http.StatusConflict, protocol.CodeUploadOffsetMismatch)
	assert.Equal(t, "0", r.header.Get(protocol.HeaderUploadOffset))
	require.Equal(t, http.StatusCreated, h.upload(req{host: "lab-07"}, "ep.tar", body).status)

	other := randomBody(t, 3*mib+2)
	cutUpload(t, h, "lab-07", other, 0, 2*mib)
	wrong := bytes.Clone(other)
	wrong[len(wrong)-1] ^= 1
	r = h.do(req{method: http.MethodPut, path: "/v1/episodes", host: "lab-07", body: bytes.NewReader(wrong[2*mib:]),
		header: map[string]string{protocol.HeaderEpisode: "ep.tar", protocol.HeaderSHA256: sum(other), protocol.HeaderUploadOffset: "2097152"}})
	assertAPIError(t, r, http.StatusUnprocessableEntity, "digest_mismatch")
	assert.Equal(t, http.StatusNotFound, head(h, "lab-07", sum(other)).status, "the partial went with it")
	assert.Empty(t, files(t, filepath.Join(h.data, "tmp")))
}

// A resume is held to min_free_bytes like a new upload: 507, the partial kept.
func TestResumeBelowMinFreeIs507(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	h := newHarness(t, setup{root: root})
	body := randomBody(t, 3*mib+1)
	cutUpload(t, h, "lab-07", body, 0, 2*mib)
	low := newHarness(t, setup{root: root, minFree: 1 << 62}) // the same data folder, no room
	r := resumeUpload(low, "lab-07", body, 2*mib, nil)
	assertAPIError(t, r, http.StatusInsufficientStorage, "insufficient_storage")
	r = head(low, "lab-07", sum(body))
	require.Equal(t, http.StatusNoContent, r.status)
	assert.Equal(t, "2097152", r.header.Get(protocol.HeaderUploadOffset), "kept for when there is room")
}

// With a store that keeps no partials (an S3 bucket), a cut upload leaves nothing:
// HEAD is 404 and a resume is told to start over (409, Upload-Offset: 0).
func TestS3KeepsNoPartials(t *testing.T) {
	eachS3(t, func(t *testing.T, tg *objstoretest.Target, mode s3Mode) {
		h := newS3Harness(t, tg, mode, 0)
		body := randomBody(t, 3*mib+5)
		cutUpload(t, h.harness, "lab-07", body, 0, 2*mib+5)
		assert.Equal(t, http.StatusNotFound, head(h.harness, "lab-07", sum(body)).status)
		r := resumeUpload(h.harness, "lab-07", body, 2*mib, nil)
		assertAPIError(t, r, http.StatusConflict, protocol.CodeUploadOffsetMismatch)
		assert.Equal(t, "0", r.header.Get(protocol.HeaderUploadOffset))
		require.Equal(t, http.StatusCreated, resumeUpload(h.harness, "lab-07", body, 0, nil).status)
		r = head(h.harness, "lab-07", sum(body))
		require.Equal(t, http.StatusOK, r.status)
		assert.Equal(t, strconv.Itoa(len(body)), r.header.Get("Content-Length"))
		assert.Empty(t, files(t, filepath.Join(h.data, "tmp")))
	})
}

// serve.drain_timeout cuts an upload still arriving at shutdown: its full chunks are
// kept, and the receiver started again continues it.
func TestDrainKeepsThePartial(t *testing.T) {
	t.Parallel()
	r := startRun(t, func(s *config.Serve) { s.DrainTimeout = 300 * time.Millisecond })
	body := randomBody(t, 4*mib+3)
	sha := sum(body)
	startRaw(t, r.addr, "lab-07", body, 0, 2*mib+77)
	state := filepath.Join(r.data, "tmp", "partial", "lab-07", sha+".state")
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(state)
		return err == nil && bytes.Contains(b, []byte(`"offset":2097152`))
	}, 10*time.Second, 5*time.Millisecond, "the upload is receiving")
	r.stop()
	require.NoError(t, r.wait(t, 10*time.Second))
	assert.Contains(t, r.logs.String(), "kept as a partial")

	again := startRun(t, func(s *config.Serve) { s.DataDir = r.data })
	hr, err := http.NewRequestWithContext(context.Background(), http.MethodHead, again.url+"/v1/episodes/"+sha, nil)
	require.NoError(t, err)
	hr.Header.Set(protocol.HeaderHost, "lab-07")
	res, err := http.DefaultClient.Do(hr)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusNoContent, res.StatusCode)
	require.Equal(t, "2097152", res.Header.Get(protocol.HeaderUploadOffset))

	put, err := http.NewRequest(http.MethodPut, again.url+"/v1/episodes", bytes.NewReader(body[2*mib:]))
	require.NoError(t, err)
	put.Header.Set(protocol.HeaderHost, "lab-07")
	put.Header.Set(protocol.HeaderEpisode, "ep.tar")
	put.Header.Set(protocol.HeaderSHA256, sha)
	put.Header.Set(protocol.HeaderUploadOffset, "2097152")
	res, err = http.DefaultClient.Do(put)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	require.Equal(t, http.StatusCreated, res.StatusCode)
	stored, err := os.ReadFile(filepath.Join(r.data, "episodes", "lab-07", sha))
	require.NoError(t, err)
	assert.True(t, bytes.Equal(body, stored))
}

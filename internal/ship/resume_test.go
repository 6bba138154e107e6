package ship

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/client"
	"github.com/cis490/cis490/internal/config"
	"github.com/cis490/cis490/internal/gate"
	"github.com/cis490/cis490/internal/index"
	"github.com/cis490/cis490/internal/protocol"
	"github.com/cis490/cis490/internal/receiver"
	"github.com/cis490/cis490/internal/spool"
	"github.com/cis490/cis490/internal/store"
	"github.com/cis490/cis490/internal/testutil"
)

// Resumable uploads against the real receiver (in-process, open mode, its data folder
// in a temp folder), with the link between ship and it cut by a real-socket proxy.

// checkpoint is how much the receiver may have to be sent again per cut: it keeps a
// cut body up to its last whole chunk (SPEC §3.3; store's checkpoint interval).
const checkpoint = 1 << 20

type testReceiver struct {
	srv  *httptest.Server
	data string
}

func startReceiver(t *testing.T) *testReceiver {
	t.Helper()
	data := filepath.Join(t.TempDir(), "data")
	log := zerolog.New(zerolog.NewTestWriter(t))
	sc := config.Default().Serve
	sc.DataDir = data
	sc.MinFreeBytes = 0
	st, err := store.Open(data, store.Options{Logger: log})
	require.NoError(t, err)
	ix, err := index.OpenWriter(filepath.Join(data, "index"))
	require.NoError(t, err)
	srv := httptest.NewServer(receiver.New(receiver.Options{Config: sc, Store: st, Index: ix, Gate: gate.New(nil, gate.Options{Logger: log}), Logger: log}).Handler())
	t.Cleanup(func() {
		srv.Close()
		ix.Close()
	})
	return &testReceiver{srv: srv, data: data}
}

// lines stops the receiver (waiting for every request in flight) and returns its
// index lines about episodes.
func (r *testReceiver) lines(t *testing.T) []index.Entry {
	t.Helper()
	r.srv.Close()
	var out []index.Entry
	now := time.Now()
	_, err := index.Read(filepath.Join(r.data, "index"), now.Add(-time.Hour), now.Add(time.Hour), func(e index.Entry) error {
		if e.Route == "episodes" {
			out = append(out, e)
		}
		return nil
	})
	require.NoError(t, err)
	return out
}

// cutter is a cutting proxy to target (the receiver, or a proxy in front of it) that
// waits at each cut for the receiver to have indexed the cut PUT (a 400: the body
// ended early), so that what it kept of it is recorded before ship asks.
func (r *testReceiver) cutter(t *testing.T, target string, cuts ...int64) *cutter {
	c := newCutter(t, target, cuts...)
	c.settle = func(i int) {
		deadline := time.Now().Add(10 * time.Second)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for r.cutLines() <= i {
			if time.Now().After(deadline) {
				t.Errorf("the receiver did not index cut %d within 10 s", i+1)
				return
			}
			<-tick.C
		}
	}
	return c
}

// cutLines counts the PUTs the receiver saw end before their body did.
func (r *testReceiver) cutLines() int {
	n := 0
	now := time.Now()
	_, _ = index.Read(filepath.Join(r.data, "index"), now.Add(-time.Hour), now.Add(time.Hour), func(e index.Entry) error {
		if e.Route == "episodes" && e.Method == http.MethodPut && e.Status == http.StatusBadRequest {
			n++
		}
		return nil
	})
	return n
}

func (r *testReceiver) stored(host, sha string) string {
	return filepath.Join(r.data, "episodes", host, sha)
}

// put stores data as host's episode directly, not through the test's proxy.
func (r *testReceiver) put(t *testing.T, host string, data []byte) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, r.srv.URL+"/v1/episodes", bytes.NewReader(data))
	require.NoError(t, err)
	req.Header.Set(protocol.HeaderHost, host)
	req.Header.Set(protocol.HeaderEpisode, "other-run.tar")
	req.Header.Set(protocol.HeaderSHA256, sha(data))
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	return res.StatusCode
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return b
}

// resumeHost is a spool with one episode in its outbox and a client for url.
type resumeHost struct {
	dir, file string
	data      []byte
	opts      Options
	logs      *testutil.SyncBuffer
	progress  *recordedProgress
}

func newResumeHost(t *testing.T, url string, size int) *resumeHost {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, spool.Outbox), 0o750))
	h := &resumeHost{dir: dir, file: filepath.Join(dir, spool.Outbox, "ep-1.tar"), data: randomBytes(t, size),
		logs: &testutil.SyncBuffer{}, progress: &recordedProgress{}}
	require.NoError(t, os.WriteFile(h.file, h.data, 0o640))
	cfg := config.Default()
	cfg.Host, cfg.Receiver.URL, cfg.Receiver.Timeout, cfg.Ship.Retries = "lab-07", url, 5*time.Second, 3
	c, err := client.New(cfg, client.Options{Retries: -1, Logger: zerolog.New(h.logs), InitialBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
	require.NoError(t, err)
	h.opts = options(c, dir)
	h.opts.Logger = zerolog.New(h.logs)
	h.opts.Progress = h.progress
	return h
}

func (h *resumeHost) ship(t *testing.T) Summary {
	t.Helper()
	sum, err := Once(context.Background(), h.opts)
	require.NoError(t, err, h.logs.String())
	return sum
}

// messages are the log lines' messages.
func (h *resumeHost) messages() []string {
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(h.logs.String()), "\n") {
		var m struct{ Message string }
		if json.Unmarshal([]byte(line), &m) == nil {
			out = append(out, m.Message)
		}
	}
	return out
}

// recordedProgress keeps every value the progress bar was set to.
type recordedProgress struct {
	mu    sync.Mutex
	total int64
	sets  []int64
}

func (p *recordedProgress) Start(_ int, bytes int64) { p.total = bytes }
func (p *recordedProgress) Finish()                  {}
func (p *recordedProgress) Set(n int64) {
	p.mu.Lock()
	p.sets = append(p.sets, n)
	p.mu.Unlock()
}

// restarts are the values the bar went back to: where each later attempt began.
func (p *recordedProgress) restarts() []int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []int64
	for i := 1; i < len(p.sets); i++ {
		if p.sets[i] < p.sets[i-1] {
			out = append(out, p.sets[i])
		}
	}
	return out
}

func (p *recordedProgress) last() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sets[len(p.sets)-1]
}

// puts are the index lines of PUTs, and the body bytes they read together.
func puts(lines []index.Entry) (n int, bytes int64) {
	for _, e := range lines {
		if e.Method == http.MethodPut {
			n++
			bytes += e.Bytes
		}
	}
	return n, bytes
}

func heads(lines []index.Entry) int {
	n := 0
	for _, e := range lines {
		if e.Method == http.MethodHead {
			n++
		}
	}
	return n
}

func fileSHA(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return sha(b)
}

// Three cuts mid-body: each time ship asks the receiver where its partial ends and
// sends only the rest. The episode arrives whole; what crossed twice is less than
// a checkpoint a cut; the progress bar and the log count the kept bytes as done.
func TestCutUploadResumesWhereTheReceiverKeptIt(t *testing.T) {
	t.Parallel()
	r := startReceiver(t)
	const size = 12 << 20
	p := r.cutter(t, r.srv.Listener.Addr().String(), 3<<20+12345, 6<<20+777, 9<<20+4321)
	h := newResumeHost(t, p.URL(), size)

	sum := h.ship(t)
	assert.Equal(t, 1, sum.Shipped)
	assert.Equal(t, 3, sum.Resumed)
	assert.Equal(t, 3, p.Cuts())
	assert.Equal(t, sha(h.data), fileSHA(t, r.stored("lab-07", sha(h.data))))
	assert.FileExists(t, filepath.Join(h.dir, spool.Sent, "ep-1.tar"))
	assert.Contains(t, sum.String(), "resumed 3 time(s) after a cut")

	lines := r.lines(t)
	n, got := puts(lines)
	assert.Equal(t, 4, n, "one PUT, then one for each cut")
	assert.Equal(t, 3, heads(lines), "one HEAD after each cut")
	resent := got - size
	assert.GreaterOrEqual(t, resent, int64(0))
	assert.Less(t, resent, int64(3*checkpoint), "at most a checkpoint sent twice a cut")

	restarts := h.progress.restarts()
	require.Len(t, restarts, 3, "the bar goes back once a cut")
	for _, at := range restarts {
		assert.Positive(t, at, "the bar starts a resumed upload at what the receiver kept, not at 0")
		assert.Zero(t, at%checkpoint)
	}
	assert.Equal(t, int64(size), h.progress.last())
	var resumedAt []string
	for _, m := range h.messages() {
		if strings.HasPrefix(m, "resumed at ") {
			resumedAt = append(resumedAt, m)
		}
	}
	require.Len(t, resumedAt, 3)
	assert.Equal(t, "resumed at "+strconv.FormatInt(restarts[0], 10)+" of "+strconv.Itoa(size)+" bytes", resumedAt[0])
}

// --no-resume (and a cut): no HEAD, the file is sent whole again.
func TestNoResumeSendsTheWholeFileAgain(t *testing.T) {
	t.Parallel()
	r := startReceiver(t)
	const size = 4 << 20
	p := r.cutter(t, r.srv.Listener.Addr().String(), 3<<20)
	h := newResumeHost(t, p.URL(), size)
	h.opts.NoResume = true

	sum := h.ship(t)
	assert.Equal(t, 1, sum.Shipped)
	assert.Zero(t, sum.Resumed)
	assert.Equal(t, sha(h.data), fileSHA(t, r.stored("lab-07", sha(h.data))))
	lines := r.lines(t)
	assert.Zero(t, heads(lines))
	n, got := puts(lines)
	assert.Equal(t, 2, n)
	assert.Greater(t, got, int64(size+2<<20), "the second PUT carried the whole file")
	assert.Equal(t, []int64{0}, h.progress.restarts())
}

// HTTP-level proxy in front of the real receiver, changing what it is told to.
func httpProxy(t *testing.T, target string, edit func(w http.ResponseWriter, r *http.Request) bool) *httptest.Server {
	t.Helper()
	u, err := url.Parse(target)
	require.NoError(t, err)
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorLog = log.New(io.Discard, "", 0) // the cuts' errors, expected
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if edit != nil && edit(w, r) {
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// A receiver from before resumable uploads answers the HEAD 405: ship sends the file
// whole again, without Upload-Offset, and does not ask again for the rest of the run.
func TestOldReceiverGetsAPlainRetry(t *testing.T) {
	t.Parallel()
	r := startReceiver(t)
	var asked atomic.Int32
	old := httpProxy(t, r.srv.URL, func(w http.ResponseWriter, req *http.Request) bool {
		if req.Method == http.MethodHead {
			asked.Add(1)
			w.Header().Set("Allow", "PUT")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return true
		}
		return false
	})
	const size = 4 << 20
	p := r.cutter(t, old.Listener.Addr().String(), 3<<20, 5<<20)
	h := newResumeHost(t, p.URL(), size)

	sum := h.ship(t)
	assert.Equal(t, 1, sum.Shipped)
	assert.Zero(t, sum.Resumed)
	assert.Equal(t, sha(h.data), fileSHA(t, r.stored("lab-07", sha(h.data))))
	lines := r.lines(t)
	assert.Zero(t, heads(lines), "the proxy answered the HEAD")
	assert.Equal(t, int32(1), asked.Load(), "asked once: after the first 405 the run knows")
	assert.Equal(t, 2, p.Cuts())
	for _, e := range lines {
		if e.Method == http.MethodPut && e.Status == http.StatusCreated {
			assert.Equal(t, int64(size), e.Bytes, "the last PUT carried the whole file")
		}
	}
	assert.Contains(t, h.messages(), "the receiver does not resume uploads (an older version); sending the file whole again")
	assert.Equal(t, []int64{0, 0}, h.progress.restarts())
}

// The receiver's 409 to a resumed PUT at the wrong offset carries the right one:
// ship continues there. The wrong offset comes from a proxy that misreports the
// HEAD's; the 409 is the real receiver's.
func TestConflictContinuesAtTheReceiversOffset(t *testing.T) {
	t.Parallel()
	r := startReceiver(t)
	var told string
	liar := httpProxy(t, r.srv.URL, func(w http.ResponseWriter, req *http.Request) bool {
		if req.Method != http.MethodHead {
			return false
		}
		rec := httptest.NewRecorder()
		httputil.NewSingleHostReverseProxy(mustURL(t, r.srv.URL)).ServeHTTP(rec, req)
		off, err := strconv.ParseInt(rec.Header().Get(protocol.HeaderUploadOffset), 10, 64)
		if rec.Code != http.StatusNoContent || err != nil {
			return false
		}
		told = strconv.FormatInt(off+1000, 10)
		w.Header().Set(protocol.HeaderUploadOffset, told)
		w.WriteHeader(http.StatusNoContent)
		return true
	})
	const size = 4 << 20
	p := r.cutter(t, liar.Listener.Addr().String(), 2<<20+100)
	h := newResumeHost(t, p.URL(), size)

	sum := h.ship(t)
	assert.Equal(t, 1, sum.Shipped)
	assert.Equal(t, 2, sum.Resumed, "at the offset the HEAD said, then at the 409's")
	assert.Equal(t, sha(h.data), fileSHA(t, r.stored("lab-07", sha(h.data))))
	var statuses []int
	for _, e := range r.lines(t) {
		if e.Method == http.MethodPut {
			statuses = append(statuses, e.Status)
		}
	}
	assert.Equal(t, []int{http.StatusBadRequest, http.StatusConflict, http.StatusCreated}, statuses, "cut, 409, stored")
	assert.NotEmpty(t, told)
}

func mustURL(t *testing.T, raw string) *url.URL {
	u, err := url.Parse(raw)
	require.NoError(t, err)
	return u
}

// Another run stored the episode while this one's upload was cut: the HEAD says 200,
// and ship counts a duplicate without sending anything more.
func TestStoredMeanwhileIsADuplicate(t *testing.T) {
	t.Parallel()
	r := startReceiver(t)
	const size = 4 << 20
	p := r.cutter(t, r.srv.Listener.Addr().String(), 2<<20)
	h := newResumeHost(t, p.URL(), size)
	var stored atomic.Int32 // set in the proxy's goroutine
	p.onCut = func(int) { stored.Store(int32(r.put(t, "lab-07", h.data))) }

	sum := h.ship(t)
	assert.Equal(t, int32(http.StatusCreated), stored.Load())
	assert.Equal(t, 0, sum.Shipped)
	assert.Equal(t, 1, sum.Duplicates)
	assert.Zero(t, sum.Resumed)
	assert.FileExists(t, filepath.Join(h.dir, spool.Sent, "ep-1.tar"))
	assert.Equal(t, sha(h.data), fileSHA(t, r.stored("lab-07", sha(h.data))))
	lines := r.lines(t)
	n, _ := puts(lines)
	assert.Equal(t, 2, n, "ship's cut PUT and the other run's; none after the HEAD")
	assert.Equal(t, 1, heads(lines))
}

// A producer rewrites the file in place (same size, same modification time) while
// its upload is cut: ship never sends the rest of the new content after the old
// bytes. The file stays in outbox/, and the next run ships the new content whole.
func TestFileRewrittenBetweenAttemptsIsNeverMixed(t *testing.T) {
	t.Parallel()
	r := startReceiver(t)
	const size = 4 << 20
	p := r.cutter(t, r.srv.Listener.Addr().String(), 2<<20)
	h := newResumeHost(t, p.URL(), size)
	old := h.data
	fresh := randomBytes(t, size)
	info, err := os.Stat(h.file)
	require.NoError(t, err)
	p.onCut = func(int) { rewriteInPlace(t, h.file, fresh, info.ModTime()) }

	sum := h.ship(t)
	assert.Equal(t, 0, sum.Shipped)
	assert.Equal(t, 1, sum.Kept)
	assert.Equal(t, 0, sum.Rejected)
	assert.Equal(t, 1, sum.Remaining)
	assert.FileExists(t, h.file)
	assert.NoFileExists(t, r.stored("lab-07", sha(old)))
	assert.Contains(t, h.messages(), "the file changed while it was being sent (written to in place): nothing of it is stored; it stays in outbox/ and is hashed again next run")

	sum = h.ship(t)
	assert.Equal(t, 1, sum.Shipped)
	assert.Equal(t, sha(fresh), fileSHA(t, r.stored("lab-07", sha(fresh))))
	for _, e := range r.lines(t) {
		if e.Method == http.MethodPut && e.Status == http.StatusCreated {
			assert.Equal(t, sha(fresh), e.SHA256)
			assert.Equal(t, int64(size), e.Bytes, "the new content went whole, not resumed on the old bytes")
		}
	}
}

// Written into while its body is on the way: the receiver refuses the mix (422), and
// ship keeps the file for the next run rather than rejecting it as corrupt.
func TestFileWrittenDuringTheBodyIsKeptNotRejected(t *testing.T) {
	t.Parallel()
	r := startReceiver(t)
	const size = 4 << 20
	h := newResumeHost(t, r.srv.URL, size)
	fresh := randomBytes(t, size)
	info, err := os.Stat(h.file)
	require.NoError(t, err)
	var once sync.Once
	h.opts.Progress = progressFunc(func(n int64) {
		if n > size/2 {
			once.Do(func() { rewriteInPlace(t, h.file, fresh, info.ModTime()) })
		}
	})

	sum := h.ship(t)
	assert.Equal(t, 0, sum.Rejected)
	assert.Equal(t, 1, sum.Kept)
	assert.FileExists(t, h.file)
	assert.NoDirExists(t, filepath.Join(h.dir, spool.Rejected, "ep-1.tar"))
	var statuses []int
	for _, e := range r.lines(t) {
		if e.Method == http.MethodPut {
			statuses = append(statuses, e.Status)
		}
	}
	assert.Equal(t, []int{http.StatusUnprocessableEntity}, statuses)
}

type progressFunc func(int64)

func (progressFunc) Start(int, int64) {}
func (progressFunc) Finish()          {}
func (f progressFunc) Set(done int64) { f(done) }

// rewriteInPlace writes data over path's content (the same inode) and puts its
// modification time back: only the change time tells.
func rewriteInPlace(t *testing.T, path string, data []byte, mtime time.Time) {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Error(err)
		return
	}
	if _, err := f.WriteAt(data, 0); err != nil {
		t.Error(err)
	}
	f.Close()
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Error(err)
	}
}

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/index"
	"github.com/cis490/cis490/internal/testpki"
)

// labHost is a lab host's configuration and spool in a temp folder.
type labHost struct {
	name, cfg, spool string
	env              []string
}

func newLabHost(t *testing.T, name, receiverURL string, extra string) *labHost {
	t.Helper()
	dir := t.TempDir()
	h := &labHost{name: name, cfg: filepath.Join(dir, "lab-host.toml"), spool: filepath.Join(dir, "spool"), env: Env(t)}
	require.NoError(t, os.WriteFile(h.cfg, []byte(fmt.Sprintf(`host = %q
[receiver]
url = %q
timeout = "5s"
[ship]
spool_dir = %q
retries = 1
%s`, name, receiverURL, h.spool, extra)), 0o600))
	require.NoError(t, os.MkdirAll(filepath.Join(h.spool, "outbox"), 0o750))
	return h
}

func (h *labHost) drop(t *testing.T, name string, data []byte, age time.Duration) string {
	t.Helper()
	p := filepath.Join(h.spool, "outbox", name)
	require.NoError(t, os.WriteFile(p, data, 0o640))
	if age > 0 {
		old := time.Now().Add(-age)
		require.NoError(t, os.Chtimes(p, old, old))
	}
	return p
}

func (h *labHost) ship(t *testing.T, binary string, args ...string) Result {
	t.Helper()
	return Run(t, binary, h.env, nil, append([]string{"--config", h.cfg, "ship"}, args...)...)
}

func names(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// receiverIndex reads the receiver's request index (the server fsyncs it within a
// second; lines are written before the answer is sent, so they are in the page cache).
func receiverIndex(t *testing.T, data string) []index.Entry {
	t.Helper()
	var out []index.Entry
	now := time.Now()
	_, err := index.Read(filepath.Join(data, "index"), now.Add(-time.Hour), now.Add(time.Hour), func(e index.Entry) error {
		out = append(out, e)
		return nil
	})
	require.NoError(t, err)
	return out
}

func count(entries []index.Entry, route string, status int) int {
	n := 0
	for _, e := range entries {
		if e.Route == route && (status == 0 || e.Status == status) {
			n++
		}
	}
	return n
}

func startOpenReceiver(t *testing.T, args ...string) (*Server, string) {
	t.Helper()
	data := t.TempDir()
	srv := StartServe(t, bin, Env(t), "http", append([]string{"--listen", "127.0.0.1:0", "--data-dir", data}, args...)...)
	return srv, data
}

func TestShipDrainsOutboxExactlyOnce(t *testing.T) {
	t.Parallel()
	srv, data := startOpenReceiver(t)
	h := newLabHost(t, "lab-07", srv.URL, "")
	files := map[string][]byte{
		"ep-1.tar": []byte("first"), "ep-2.tar": bytes.Repeat([]byte("second "), 100000), "ep-3.tar.gz": {0, 1, 2, 3},
	}
	for i, name := range []string{"ep-1.tar", "ep-2.tar", "ep-3.tar.gz"} {
		h.drop(t, name, files[name], time.Duration(3-i)*time.Minute)
	}
	h.drop(t, "ep-4.tar.part", []byte("still writing"), 0)
	h.drop(t, ".ep-5.tar", []byte("still writing"), 0)

	r := h.ship(t, bin)
	require.Equal(t, 0, r.Code, r.Stderr)
	assert.Contains(t, r.Stdout, "shipped 3, duplicates 0, kept 0, rejected 0")
	for name, content := range files {
		stored, err := os.ReadFile(filepath.Join(data, "episodes", "lab-07", sum(content)))
		require.NoError(t, err, name)
		assert.Equal(t, content, stored, name)
	}
	assert.ElementsMatch(t, []string{".ep-5.tar", "ep-4.tar.part"}, names(t, filepath.Join(h.spool, "outbox")))
	assert.ElementsMatch(t, []string{"ep-1.tar", "ep-2.tar", "ep-3.tar.gz"}, names(t, filepath.Join(h.spool, "sent")))

	// Oldest first.
	var order []string
	for _, e := range receiverIndex(t, data) {
		if e.Route == "episodes" {
			order = append(order, e.SHA256)
		}
	}
	assert.Equal(t, []string{sum(files["ep-1.tar"]), sum(files["ep-2.tar"]), sum(files["ep-3.tar.gz"])}, order)

	// An empty outbox still heartbeats.
	r = h.ship(t, bin)
	require.Equal(t, 0, r.Code, r.Stderr)
	idx := receiverIndex(t, data)
	assert.Equal(t, 2, count(idx, "heartbeat", http.StatusNoContent))
	assert.Equal(t, 3, count(idx, "episodes", http.StatusCreated))
	assert.Equal(t, 3, count(idx, "episodes", 0), "each file uploaded exactly once")
}

func TestShipWhileReceiverDownKeepsFiles(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close() // nothing listens here now
	h := newLabHost(t, "lab-08", "http://"+addr, "")
	h.drop(t, "a.tar", []byte("a"), time.Minute)
	h.drop(t, "b.tar", []byte("b"), 0)

	r := h.ship(t, bin)
	assert.NotEqual(t, 0, r.Code)
	assert.Contains(t, r.Stderr, "connection refused")
	assert.ElementsMatch(t, []string{"a.tar", "b.tar"}, names(t, filepath.Join(h.spool, "outbox")), "nothing lost")

	data := t.TempDir()
	srv := StartServe(t, bin, Env(t), "http", "--listen", addr, "--data-dir", data)
	r = h.ship(t, bin)
	require.Equal(t, 0, r.Code, r.Stderr)
	assert.Contains(t, r.Stdout, "shipped 2")
	assert.Empty(t, names(t, filepath.Join(h.spool, "outbox")))
	assert.Equal(t, 2, count(receiverIndex(t, data), "episodes", http.StatusCreated))
	srv.Stop(t)
}

func TestShipStopsAtRefusedCommit(t *testing.T) {
	t.Parallel()
	const refused = "badc0ffee0000000000000000000000000000000"
	stamped, err := Build(t.TempDir(), refused)
	require.NoError(t, err)
	dir := t.TempDir()
	allow := filepath.Join(dir, "allowlist")
	require.NoError(t, os.WriteFile(allow, []byte("1234567890abcdef1234567890abcdef12345678\n"), 0o600))
	cfg := filepath.Join(dir, "receiver.toml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf("[serve.gate]\nallowlist_file = %q\n", allow)), 0o600))
	srv, data := startOpenReceiver(t, "--config", cfg)
	h := newLabHost(t, "lab-09", srv.URL, "")
	for _, n := range []string{"a.tar", "b.tar", "c.tar"} {
		h.drop(t, n, []byte(n), 0)
	}
	r := h.ship(t, stamped)
	assert.Equal(t, 1, r.Code)
	assert.Contains(t, r.Stderr, refused, "the message names this build's commit")
	assert.Contains(t, r.Stderr, "update cis490")
	assert.Contains(t, r.Stderr, "run `cis490 update` to move to the allowed release", "outside systemd: what to run")
	assert.Len(t, names(t, filepath.Join(h.spool, "outbox")), 3, "files kept")
	idx := receiverIndex(t, data)
	assert.Equal(t, 1, count(idx, "heartbeat", http.StatusUpgradeRequired), "stopped after the first refusal")
	assert.Equal(t, 0, count(idx, "episodes", 0))
}

func TestShipRejectsWhatTheReceiverRejects(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "receiver.toml")
	require.NoError(t, os.WriteFile(cfg, []byte("[serve]\nmax_episode_bytes = 1000\n"), 0o600))
	srv, _ := startOpenReceiver(t, "--config", cfg)

	// Bytes corrupted on the way: a proxy flips one byte of every body before the real
	// receiver sees it, which then answers 422 on its own.
	target, err := url.Parse(srv.URL)
	require.NoError(t, err)
	proxy := httputil.NewSingleHostReverseProxy(target)
	corrupt := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			body, _ := io.ReadAll(r.Body)
			body[0] ^= 0xff
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		proxy.ServeHTTP(w, r)
	}))
	defer corrupt.Close()

	h := newLabHost(t, "lab-10", corrupt.URL, "")
	h.drop(t, "corrupt.tar", []byte("will be corrupted"), 0)
	r := h.ship(t, bin)
	assert.Equal(t, 0, r.Code, "the outbox is empty afterwards: %s", r.Stderr)
	assert.Contains(t, r.Stdout, "rejected 1")
	reason, err := os.ReadFile(filepath.Join(h.spool, "rejected", "corrupt.tar.reason"))
	require.NoError(t, err)
	assert.Contains(t, string(reason), "422")
	assert.Contains(t, string(reason), "SHA-256")

	big := newLabHost(t, "lab-11", srv.URL, "")
	big.drop(t, "big.tar", bytes.Repeat([]byte("x"), 5000), 0)
	r = big.ship(t, bin)
	assert.Equal(t, 0, r.Code, r.Stderr)
	reason, err = os.ReadFile(filepath.Join(big.spool, "rejected", "big.tar.reason"))
	require.NoError(t, err)
	assert.Contains(t, string(reason), "413")
	_, err = os.Stat(filepath.Join(big.spool, "rejected", "big.tar"))
	assert.NoError(t, err, "the tarball itself is kept in rejected/")
}

func TestShipSweepsTheSpool(t *testing.T) {
	t.Parallel()
	srv, _ := startOpenReceiver(t)
	h := newLabHost(t, "lab-12", srv.URL, "max_age = \"2d\"\nkeep_sent = \"1d\"\n")
	h.drop(t, "stale.tar", []byte("stale"), 3*24*time.Hour)
	h.drop(t, "abandoned.tar.part", []byte("x"), 2*time.Hour)
	h.drop(t, "fresh.tar.part", []byte("x"), 10*time.Minute)
	h.drop(t, "ok.tar", []byte("ok"), time.Hour)
	require.NoError(t, os.MkdirAll(filepath.Join(h.spool, "sent"), 0o750))
	for name, age := range map[string]time.Duration{"old-sent.tar": 2 * 24 * time.Hour, "new-sent.tar": time.Hour} {
		p := filepath.Join(h.spool, "sent", name)
		require.NoError(t, os.WriteFile(p, []byte(name), 0o640))
		old := time.Now().Add(-age)
		require.NoError(t, os.Chtimes(p, old, old))
	}
	r := h.ship(t, bin)
	require.Equal(t, 0, r.Code, r.Stderr)
	assert.Equal(t, []string{"fresh.tar.part"}, names(t, filepath.Join(h.spool, "outbox")))
	assert.ElementsMatch(t, []string{"new-sent.tar", "ok.tar"}, names(t, filepath.Join(h.spool, "sent")))
	assert.ElementsMatch(t, []string{"stale.tar", "stale.tar.reason"}, names(t, filepath.Join(h.spool, "rejected")))
	reason, err := os.ReadFile(filepath.Join(h.spool, "rejected", "stale.tar.reason"))
	require.NoError(t, err)
	var why map[string]any
	require.NoError(t, json.Unmarshal(reason, &why))
	assert.Contains(t, why["reason"], "ship.max_age")
}

func TestConcurrentShipRunsNeverUploadTwice(t *testing.T) {
	t.Parallel()
	srv, data := startOpenReceiver(t)
	h := newLabHost(t, "lab-13", srv.URL, "")
	for i := range 20 {
		h.drop(t, fmt.Sprintf("ep-%02d.tar", i), bytes.Repeat([]byte{byte(i)}, 200000), 0)
	}
	var wg sync.WaitGroup
	results := make([]Result, 3)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = Run(t, bin, h.env, nil, "--config", h.cfg, "ship")
		}()
	}
	wg.Wait()
	for _, r := range results {
		assert.Equal(t, 0, r.Code, r.Stderr)
	}
	idx := receiverIndex(t, data)
	assert.Equal(t, 20, count(idx, "episodes", http.StatusCreated))
	assert.Equal(t, 20, count(idx, "episodes", 0), "no file uploaded twice")
	assert.Empty(t, names(t, filepath.Join(h.spool, "outbox")))
}

func TestShipOverMutualTLS(t *testing.T) {
	t.Parallel()
	ca := testpki.NewCA(t, "fleet")
	server := ca.Server("receiver")
	client := ca.Client("lab-14")
	dir := t.TempDir()
	tokensFile := filepath.Join(dir, "tokens.toml")
	cfg := filepath.Join(dir, "receiver.toml")
	data := filepath.Join(dir, "data")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`[serve]
listen = "127.0.0.1:0"
data_dir = %q
tokens_file = %q
[serve.tls]
cert_file = %q
key_file = %q
client_ca_file = %q
`, data, tokensFile, server.CertFile, server.KeyFile, ca.CertPEM)), 0o600))
	env := Env(t)
	minted := Run(t, bin, env, nil, "--config", cfg, "token", "new", "--host", "lab-14")
	require.Equal(t, 0, minted.Code, minted.Stderr)
	tokenFile := filepath.Join(dir, "lab-14.token")
	require.NoError(t, os.WriteFile(tokenFile, []byte(minted.Stdout), 0o600))
	srv := StartServe(t, bin, env, "https", "--config", cfg)

	h := newLabHost(t, "lab-14", srv.URL, "")
	require.NoError(t, os.WriteFile(h.cfg, []byte(fmt.Sprintf(`host = "lab-14"
[receiver]
url = %q
token_file = %q
ca_file = %q
cert_file = %q
key_file = %q
[ship]
spool_dir = %q
retries = 0
`, srv.URL, tokenFile, ca.CertPEM, client.CertFile, client.KeyFile, h.spool)), 0o600))
	h.drop(t, "secure.tar", []byte("over mTLS"), 0)
	r := h.ship(t, bin)
	require.Equal(t, 0, r.Code, r.Stderr)
	assert.Contains(t, r.Stdout, "shipped 1")
	_, err := os.Stat(filepath.Join(data, "episodes", "lab-14", sum([]byte("over mTLS"))))
	assert.NoError(t, err)
	assert.NotContains(t, r.Stderr, strings.TrimSpace(minted.Stdout), "no token in the client's logs")

	// Without its certificate the receiver refuses it 401 client_certificate_required,
	// and ship says what to configure, not that the token is wrong.
	bare := newLabHost(t, "lab-14", srv.URL, "")
	require.NoError(t, os.WriteFile(bare.cfg, []byte(fmt.Sprintf(`host = "lab-14"
[receiver]
url = %q
token_file = %q
ca_file = %q
[ship]
spool_dir = %q
retries = 0
`, srv.URL, tokenFile, ca.CertPEM, bare.spool)), 0o600))
	bare.drop(t, "bare.tar", []byte("no certificate"), 0)
	r = bare.ship(t, bin)
	assert.NotEqual(t, 0, r.Code)
	assert.Contains(t, r.Stderr, "requires a client certificate and none was sent: set receiver.cert_file and receiver.key_file")
	assert.NotContains(t, r.Stderr, "refused the token")
}

func TestShipWatchShipsFilesAsTheyAppear(t *testing.T) {
	t.Parallel()
	srv, data := startOpenReceiver(t)
	h := newLabHost(t, "lab-15", srv.URL, "")
	h.drop(t, "before.tar", []byte("before"), 0)
	cmd := exec.Command(bin, "--config", h.cfg, "ship", "--watch")
	cmd.Env = h.env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	stored := func(content string) func() bool {
		return func() bool {
			_, err := os.Stat(filepath.Join(data, "episodes", "lab-15", sum([]byte(content))))
			return err == nil
		}
	}
	require.Eventually(t, stored("before"), 10*time.Second, 20*time.Millisecond, "the first pass ships what is there")
	// A producer writes under a .part name, then renames: only the final name ships.
	part := h.drop(t, "after.tar.part", []byte("after"), 0)
	require.NoError(t, os.Rename(part, filepath.Join(h.spool, "outbox", "after.tar")))
	require.Eventually(t, stored("after"), 10*time.Second, 20*time.Millisecond, "a new file ships without waiting for the timer")
	require.Eventually(t, func() bool { return len(names(t, filepath.Join(h.spool, "outbox"))) == 0 }, 5*time.Second, 20*time.Millisecond)

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-done:
		assert.NoError(t, err, stderr.String())
	case <-time.After(10 * time.Second):
		t.Fatal("ship --watch did not stop on SIGTERM")
	}
	idx := receiverIndex(t, data)
	assert.GreaterOrEqual(t, count(idx, "heartbeat", http.StatusNoContent), 1)
	assert.Equal(t, 0, count(idx, "episodes", http.StatusOK), "nothing sent twice")
}

// reverseProxy is a loopback proxy in front of a real receiver; edit, when set, sees
// (and may change) each request before it is forwarded.
func reverseProxy(t *testing.T, receiverURL string, edit func(*http.Request)) *httptest.Server {
	t.Helper()
	target, err := url.Parse(receiverURL)
	require.NoError(t, err)
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if edit != nil {
			edit(r)
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// onFirstRead calls do once, when the proxy reads the first bytes of the body: the
// client is sending the file at that moment.
type onFirstRead struct {
	io.ReadCloser
	once *sync.Once
	do   func()
}

func (r onFirstRead) Read(p []byte) (int, error) {
	r.once.Do(r.do)
	return r.ReadCloser.Read(p)
}

// A producer that reuses a file name while ship is sending it: ship moves exactly the
// file it sent, the new content stays in the outbox and ships on the next pass.
func TestShipLeavesAFileReplacedWhileSendingInTheOutbox(t *testing.T) {
	t.Parallel()
	srv, data := startOpenReceiver(t)
	contentA := bytes.Repeat([]byte("episode A "), 100000)
	contentB := []byte("episode B, written under the same name")
	var h *labHost
	var once sync.Once
	var swapErr error
	proxy := reverseProxy(t, srv.URL, func(r *http.Request) {
		if r.Method != http.MethodPut {
			return
		}
		r.Body = onFirstRead{ReadCloser: r.Body, once: &once, do: func() {
			// What a producer does: write under an in-progress name, rename over.
			tmp := filepath.Join(h.spool, "outbox", "reuse.tar.part")
			if swapErr = os.WriteFile(tmp, contentB, 0o640); swapErr == nil {
				swapErr = os.Rename(tmp, filepath.Join(h.spool, "outbox", "reuse.tar"))
			}
		}}
	})
	h = newLabHost(t, "lab-16", proxy.URL, "")
	h.drop(t, "reuse.tar", contentA, time.Minute)

	r := h.ship(t, bin)
	require.NoError(t, swapErr)
	assert.Equal(t, 1, r.Code, "the new file is still in the outbox: %s", r.Stderr)
	assert.Contains(t, r.Stdout, "shipped 1")
	assert.Contains(t, r.Stdout, "(1 left in outbox)")
	assert.Contains(t, r.Stderr, "replaced while being sent")
	stored, err := os.ReadFile(filepath.Join(data, "episodes", "lab-16", sum(contentA)))
	require.NoError(t, err, "the receiver has what was sent")
	assert.Equal(t, contentA, stored)
	left, err := os.ReadFile(filepath.Join(h.spool, "outbox", "reuse.tar"))
	require.NoError(t, err, "the new file is still in the outbox")
	assert.Equal(t, contentB, left)
	assert.Empty(t, names(t, filepath.Join(h.spool, "sent")), "nothing unsent in sent/")

	r = h.ship(t, bin)
	require.Equal(t, 0, r.Code, r.Stderr)
	assert.Contains(t, r.Stdout, "shipped 1")
	stored, err = os.ReadFile(filepath.Join(data, "episodes", "lab-16", sum(contentB)))
	require.NoError(t, err, "the second pass sends the new file")
	assert.Equal(t, contentB, stored)
	assert.Empty(t, names(t, filepath.Join(h.spool, "outbox")))
	sent, err := os.ReadFile(filepath.Join(h.spool, "sent", "reuse.tar"))
	require.NoError(t, err)
	assert.Equal(t, contentB, sent)
}

// What ship will never send (a symlink, a folder, a pipe) is reported, counted as
// left, and fails the run; in-progress names stay ignored whatever they are.
func TestShipReportsWhatItWillNeverShip(t *testing.T) {
	t.Parallel()
	srv, data := startOpenReceiver(t)
	h := newLabHost(t, "lab-17", srv.URL, "")
	h.drop(t, "real.tar", []byte("real"), time.Minute)
	elsewhere := filepath.Join(t.TempDir(), "target.tar")
	require.NoError(t, os.WriteFile(elsewhere, []byte("behind a link"), 0o640))
	outbox := filepath.Join(h.spool, "outbox")
	require.NoError(t, os.Symlink(elsewhere, filepath.Join(outbox, "link.tar")))
	require.NoError(t, os.Mkdir(filepath.Join(outbox, "folder.tar"), 0o750))
	require.NoError(t, syscall.Mkfifo(filepath.Join(outbox, "pipe.tar"), 0o640))
	require.NoError(t, os.Mkdir(filepath.Join(outbox, ".staging"), 0o750))

	r := h.ship(t, bin)
	assert.Equal(t, 1, r.Code, "the outbox is not empty afterwards")
	assert.Contains(t, r.Stdout, "shipped 1,")
	assert.Contains(t, r.Stdout, "(3 left in outbox")
	for _, want := range []string{"link.tar", "symlink", "folder.tar", "folder", "pipe.tar"} {
		assert.Contains(t, r.Stderr, want)
	}
	assert.NotContains(t, r.Stderr, ".staging")
	assert.Equal(t, 1, count(receiverIndex(t, data), "episodes", 0), "only the regular file was sent")
	assert.ElementsMatch(t, []string{"link.tar", "folder.tar", "pipe.tar", ".staging"}, names(t, outbox), "nothing moved or removed")
	assert.Equal(t, []string{"real.tar"}, names(t, filepath.Join(h.spool, "sent")))
}

// A refused token (401) or a token for another host (403) on an upload stops the run
// at the first file: every later upload would be refused the same way.
func TestShipStopsAtRefusedTokenOrHost(t *testing.T) {
	t.Parallel()
	rcv := startDrReceiver(t, drSetup{hosts: []string{"lab-18", "lab-19"}})
	for _, tc := range []struct {
		name   string
		token  string // sent instead of the lab host's own on uploads
		status int
		hint   string
	}{
		{"401 unknown token", "c490_not-a-token-the-receiver-knows", http.StatusUnauthorized, "cis490 token new --host lab-18"},
		{"403 another host's token", rcv.tokens["lab-19"], http.StatusForbidden, "name the same host"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// The heartbeat goes through untouched and succeeds, so the refusal meets the
			// upload loop, as when a token is revoked between two requests.
			var uploads atomic.Int32
			proxy := reverseProxy(t, rcv.URL, func(r *http.Request) {
				if r.Method == http.MethodPut {
					uploads.Add(1)
					r.Header.Set("Authorization", "Bearer "+tc.token)
				}
			})
			h := newLabHost(t, "lab-18", proxy.URL, "")
			tokenFile := filepath.Join(t.TempDir(), "token")
			require.NoError(t, os.WriteFile(tokenFile, []byte(rcv.tokens["lab-18"]+"\n"), 0o600))
			require.NoError(t, os.WriteFile(h.cfg, []byte(fmt.Sprintf("host = \"lab-18\"\n[receiver]\nurl = %q\ntoken_file = %q\ntimeout = \"5s\"\n"+
				"[ship]\nspool_dir = %q\nretries = 1\n", proxy.URL, tokenFile, h.spool)), 0o600))
			for i, n := range []string{"a.tar", "b.tar", "c.tar"} {
				h.drop(t, n, []byte(n), time.Duration(3-i)*time.Minute)
			}

			r := h.ship(t, bin)
			assert.Equal(t, 1, r.Code)
			assert.Equal(t, int32(1), uploads.Load(), "one upload attempt, then stop")
			assert.Contains(t, r.Stderr, fmt.Sprint(tc.status))
			assert.Contains(t, r.Stderr, tc.hint, "says what to do")
			assert.Contains(t, r.Stdout, "(3 left in outbox)")
			assert.ElementsMatch(t, []string{"a.tar", "b.tar", "c.tar"}, names(t, filepath.Join(h.spool, "outbox")), "nothing moved")
			assert.Equal(t, 1, count(receiverIndex(t, rcv.data), "episodes", tc.status))
		})
	}
}

// Under systemd the ship user owns the spool but not the producer's files, and
// without CAP_FOWNER it cannot set their times: the file still moves to sent/ and the
// run succeeds, with a warning. Needs root, to run ship as another user.
func TestShipMovesFilesItCannotStamp(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root to run ship as a user that does not own the outbox's files")
	}
	const nobody = 65534
	srv, _ := startOpenReceiver(t)
	h := newLabHost(t, "lab-20", srv.URL, "")
	// nobody must reach the binary, the config and the spool; the episodes stay root's.
	dir := t.TempDir()
	shipBin := filepath.Join(dir, "cis490")
	raw, err := os.ReadFile(bin)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(shipBin, raw, 0o755))
	for _, p := range []string{dir, filepath.Dir(dir), filepath.Dir(h.cfg), filepath.Dir(filepath.Dir(h.cfg))} {
		require.NoError(t, os.Chmod(p, 0o755))
	}
	require.NoError(t, os.Chown(h.cfg, nobody, nobody))
	require.NoError(t, os.Chown(h.spool, nobody, nobody))
	require.NoError(t, os.Chown(filepath.Join(h.spool, "outbox"), nobody, nobody))
	p := h.drop(t, "theirs.tar", []byte("a producer's file"), 0)
	require.NoError(t, os.Chmod(p, 0o644))

	cmd := exec.Command(shipBin, "--config", h.cfg, "ship")
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/nonexistent"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Skipf("cannot run as uid %d here: %v", nobody, err)
	}
	err = cmd.Wait()
	assert.NoError(t, err, "stdout: %s\nstderr: %s", stdout.String(), stderr.String())
	assert.Contains(t, stdout.String(), "shipped 1")
	assert.Contains(t, stderr.String(), "without the shipping time")
	assert.Equal(t, []string{"theirs.tar"}, names(t, filepath.Join(h.spool, "sent")))
	assert.Empty(t, names(t, filepath.Join(h.spool, "outbox")))
}

package e2e

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/objstore/objstoretest"
	"github.com/cis490/cis490/internal/protocol"
)

// The real binary with serve.storage.backend = "s3" against a real S3 server
// (objstoretest.Each: versitygw here, SeaweedFS in its own job).

// s3Config writes a lab-host.toml whose receiver keeps episodes in tg's bucket under
// pi-1/ (5 MiB parts), with /metrics on metrics; it returns the file and the data dir.
func s3Config(t *testing.T, tg *objstoretest.Target, extra, storageExtra string) (cfg, data string) {
	t.Helper()
	dir := t.TempDir()
	data = filepath.Join(dir, "data")
	cfg = filepath.Join(dir, "lab-host.toml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`
[serve]
listen = "127.0.0.1:0"
data_dir = %q
%s
[serve.storage]
backend = "s3"
endpoint = %q
bucket = %q
prefix = "pi-1"
credentials_file = %q
part_size = "5MiB"
%s
`, data, extra, tg.Endpoint, tg.Bucket, tg.CredentialsFile(t), storageExtra)), 0o600))
	return cfg, data
}

func randomData(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return b
}

func TestServeS3StoresEpisodesInTheBucket(t *testing.T) {
	t.Parallel()
	objstoretest.Each(t, func(t *testing.T, tg *objstoretest.Target) {
		metricsAddr := freeAddr(t)
		cfg, data := s3Config(t, tg, fmt.Sprintf("metrics_listen = %q", metricsAddr), "")
		srv := StartServe(t, bin, Env(t), "http", "--config", cfg)
		assert.True(t, srv.HasLog("the episode bucket is reachable and writable, with conditional writes"), srv.Logs())

		body := randomData(t, 11<<20)
		status, res := put(t, srv.URL, "lab-07", "", "ep-1.tar", body)
		require.Equal(t, http.StatusCreated, status, res)
		status, res = put(t, srv.URL, "lab-07", "", "ep-1.tar", body)
		require.Equal(t, http.StatusOK, status, res)
		assert.Equal(t, "duplicate", res["status"])

		key := "pi-1/episodes/lab-07/" + sum(body)
		assert.Equal(t, []string{key, key + ".json"}, tg.Keys(t, "pi-1/"))
		assert.Empty(t, tg.Multiparts(t, "pi-1/"))
		_, err := os.Stat(filepath.Join(data, "episodes", "lab-07", sum(body)))
		assert.ErrorIs(t, err, os.ErrNotExist, "not in the data folder")
		assert.Equal(t, 1, count(receiverIndex(t, data), "episodes", http.StatusCreated), "the index stays on the Pi")

		hz := getJSON[protocol.Health](t, srv.URL+"/healthz")
		require.NotNil(t, hz.Storage)
		assert.True(t, hz.Storage.OK)
		metrics := getText(t, "http://"+metricsAddr+"/metrics")
		assert.Contains(t, metrics, `cis490_storage_errors_total{op="put"} 0`)
		for _, line := range strings.Split(metrics, "\n") {
			if strings.HasPrefix(line, "cis490_storage_errors_total{") {
				assert.True(t, strings.HasSuffix(line, "} 0"), "no failed request to a healthy store: %s", line)
			}
		}
		assert.NotContains(t, srv.Logs(), tg.Secret)
		assert.Equal(t, 0, srv.Stop(t), srv.Logs())
	})
}

// kill -9 in the middle of an upload leaves a multipart upload in the bucket; the
// next start aborts it once it is older than an hour (the clock moved by two).
func TestServeS3KilledMidUploadCleansTheMultipartAtStart(t *testing.T) {
	t.Parallel()
	objstoretest.Each(t, func(t *testing.T, tg *objstoretest.Target) {
		cfg, _ := s3Config(t, tg, "", "single_put_max = 0") // parts: what a kill leaves behind
		srv := StartServe(t, bin, Env(t), "http", "--config", cfg)
		body := randomData(t, 12<<20)
		conn := startUpload(t, srv.Addr, "lab-07", body, 7<<20)
		defer conn.Close()
		require.Eventually(t, func() bool { return len(tg.Multiparts(t, "pi-1/")) == 1 }, 10*time.Second, 20*time.Millisecond,
			"the upload reached the bucket")
		require.NoError(t, srv.cmd.Process.Signal(syscall.SIGKILL))
		srv.Wait(t)
		assert.Empty(t, tg.Keys(t, "pi-1/episodes/"), "nothing visible")
		require.Len(t, tg.Multiparts(t, "pi-1/"), 1, "what kill -9 leaves")

		fresh := StartServe(t, bin, Env(t), "http", "--config", cfg)
		assert.Len(t, tg.Multiparts(t, "pi-1/"), 1, "a start an hour later is needed: this one could be another receiver's in flight")
		assert.Equal(t, 0, fresh.Stop(t))

		later := append(Env(t), "CIS490_TEST_CLOCK_OFFSET=2h")
		restarted := StartServe(t, bin, later, "http", "--config", cfg)
		require.Eventually(t, func() bool { return restarted.HasLog("aborted multipart uploads left by interrupted uploads") }, 10*time.Second,
			20*time.Millisecond, restarted.Logs())
		assert.Empty(t, tg.Multiparts(t, "pi-1/"))
		assert.Empty(t, tg.Keys(t, "pi-1/episodes/"))
		status, res := put(t, restarted.URL, "lab-07", "", "ep.tar", body)
		assert.Equal(t, http.StatusCreated, status, res)
		assert.Equal(t, 0, restarted.Stop(t))
	})
}

// kill -9 in the middle of an upload sent as one PutObject leaves nothing at all.
func TestServeS3KilledMidSinglePutLeavesNothing(t *testing.T) {
	t.Parallel()
	objstoretest.Each(t, func(t *testing.T, tg *objstoretest.Target) {
		cfg, _ := s3Config(t, tg, "", "")
		srv := StartServe(t, bin, Env(t), "http", "--config", cfg)
		body := randomData(t, 12<<20)
		conn := startUpload(t, srv.Addr, "lab-07", body, 7<<20)
		defer conn.Close()
		require.NoError(t, srv.cmd.Process.Signal(syscall.SIGKILL))
		srv.Wait(t)
		restarted := StartServe(t, bin, Env(t), "http", "--config", cfg)
		assert.Empty(t, tg.Keys(t, "pi-1/episodes/"), "nothing visible")
		assert.Empty(t, tg.Multiparts(t, "pi-1/"))
		status, res := put(t, restarted.URL, "lab-07", "", "ep.tar", body)
		assert.Equal(t, http.StatusCreated, status, res)
		assert.Equal(t, 0, restarted.Stop(t))
	})
}

// A store down at start: serve starts, says so, answers 503 with Retry-After (ship
// keeps the file), and stores the episode once the store is back.
func TestServeS3StoreDownAtStartThenBack(t *testing.T) {
	t.Parallel()
	objstoretest.Each(t, func(t *testing.T, tg *objstoretest.Target) {
		if tg.Stop == nil {
			t.Skip("the server was not started by the test")
		}
		cfg, data := s3Config(t, tg, "", "")
		tg.Stop(t)
		srv := StartServe(t, bin, Env(t), "http", "--config", cfg)
		assert.True(t, srv.HasLog("the episode bucket is not reachable or not writable: uploads are answered 503 until it is"), srv.Logs())

		lab := s3LabHost(t, srv.URL)
		drop := filepath.Join(lab.spool, "outbox", "a.tar")
		body := []byte("recorded while the store was down")
		require.NoError(t, os.WriteFile(drop, body, 0o640))
		r := lab.ship(t, bin)
		assert.NotEqual(t, 0, r.Code)
		assert.Contains(t, r.Stderr, "503")
		assert.Equal(t, []string{"a.tar"}, names(t, filepath.Join(lab.spool, "outbox")), "nothing lost")
		assert.Equal(t, 1, count(receiverIndex(t, data), "episodes", http.StatusServiceUnavailable))
		hz := getJSON[protocol.Health](t, srv.URL+"/healthz")
		require.NotNil(t, hz.Storage)
		assert.False(t, hz.Storage.OK)

		tg.Start(t)
		require.Eventually(t, func() bool {
			r = lab.ship(t, bin)
			return r.Code == 0
		}, 20*time.Second, 500*time.Millisecond, "ship once the store is back: %s", r.Stderr)
		assert.Empty(t, names(t, filepath.Join(lab.spool, "outbox")))
		key := "pi-1/episodes/lab-08/" + sum(body)
		assert.Equal(t, []string{key, key + ".json"}, tg.Keys(t, "pi-1/"))
		assert.NotContains(t, srv.Logs(), tg.Secret, "no secret in a log line")
		assert.Equal(t, 0, srv.Stop(t))
	})
}

func TestServeS3ConfigErrorsExit2(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	noKeys := filepath.Join(dir, "no-keys")
	require.NoError(t, os.WriteFile(noKeys, []byte("[default]\naws_access_key_id = AKIAEXAMPLE\n"), 0o600))
	unreadable := filepath.Join(dir, "unreadable")
	require.NoError(t, os.WriteFile(unreadable, []byte("[default]\naws_access_key_id = AKIA\naws_secret_access_key = hush-hush-secret\n"), 0o000))
	good := filepath.Join(dir, "good")
	require.NoError(t, os.WriteFile(good, []byte("[default]\naws_access_key_id = AKIA\naws_secret_access_key = hush-hush-secret\n"), 0o600))
	garbled := filepath.Join(dir, "garbled")
	require.NoError(t, os.WriteFile(garbled, []byte("[default]\naws_secret_access_key hush-hush-secret\n"), 0o600))
	for _, tc := range []struct {
		name, storage string
		want          []string
	}{
		{"bad backend", `backend = "nfs"`, []string{`bad value for serve.storage.backend: "nfs" (use fs or s3)`}},
		{"no bucket", `backend = "s3"
credentials_file = "/etc/cis490/s3"`, []string{"bad value for serve.storage.bucket: empty"}},
		{"missing credentials file", `backend = "s3"
bucket = "b"
credentials_file = "` + filepath.Join(dir, "absent") + `"`, []string{"serve.storage.credentials_file:", "no such file or directory"}},
		{"credentials without a secret", `backend = "s3"
bucket = "b"
credentials_file = "` + noKeys + `"`, []string{"[default]: no aws_access_key_id and aws_secret_access_key"}},
		{"unreadable credentials", `backend = "s3"
bucket = "b"
credentials_file = "` + unreadable + `"`, []string{"serve.storage.credentials_file", "permission denied"}},
		{"garbled credentials", `backend = "s3"
bucket = "b"
credentials_file = "` + garbled + `"`, []string{"line 2: want key = value"}},
		{"profile not in the file", `backend = "s3"
bucket = "b"
profile = "lab"
credentials_file = "` + noKeys + `"`, []string{"no [lab] section (serve.storage.profile)"}},
		{"bad ca_file", `backend = "s3"
bucket = "b"
credentials_file = "` + good + `"
ca_file = "` + noKeys + `"`, []string{"serve.storage.ca_file " + noKeys + ": no PEM certificate in it"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "unreadable credentials" && os.Geteuid() == 0 {
				// root reads a 0000 file: make it a folder, which no one reads as a file
				unreadable := filepath.Join(t.TempDir(), "a-folder")
				require.NoError(t, os.Mkdir(unreadable, 0o700))
				tc.storage = "backend = \"s3\"\nbucket = \"b\"\ncredentials_file = \"" + unreadable + "\""
				tc.want = []string{"serve.storage.credentials_file", "is a directory"}
			}
			cfg := filepath.Join(t.TempDir(), "lab-host.toml")
			require.NoError(t, os.WriteFile(cfg, []byte("[serve]\nlisten = \"127.0.0.1:0\"\n[serve.storage]\n"+tc.storage+"\n"), 0o600))
			r := Run(t, bin, Env(t), nil, "--config", cfg, "serve")
			assert.Equal(t, 2, r.Code, r.Stderr)
			for _, w := range tc.want {
				assert.Contains(t, r.Stderr, w)
			}
			assert.NotContains(t, r.Stderr, "hush-hush-secret", "no key in an error")
		})
	}
}

// s3LabHost is a lab host that ships to url without retrying (a 503's Retry-After is
// 30 s).
func s3LabHost(t *testing.T, url string) *labHost {
	t.Helper()
	dir := t.TempDir()
	h := &labHost{name: "lab-08", cfg: filepath.Join(dir, "lab-host.toml"), spool: filepath.Join(dir, "spool"), env: Env(t)}
	require.NoError(t, os.WriteFile(h.cfg, []byte(fmt.Sprintf("host = \"lab-08\"\n[receiver]\nurl = %q\ntimeout = \"10s\"\n[ship]\nspool_dir = %q\nretries = 0\n",
		url, h.spool)), 0o600))
	require.NoError(t, os.MkdirAll(filepath.Join(h.spool, "outbox"), 0o750))
	return h
}

// startUpload sends the headers of an upload of body and its first n bytes.
func startUpload(t *testing.T, addr, host string, body []byte, n int) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	_, err = io.WriteString(conn, "PUT /v1/episodes HTTP/1.1\r\nHost: x\r\n"+protocol.HeaderHost+": "+host+"\r\n"+
		protocol.HeaderEpisode+": cut.tar\r\n"+protocol.HeaderSHA256+": "+sum(body)+"\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n")
	require.NoError(t, err)
	_, err = conn.Write(body[:n])
	require.NoError(t, err)
	return conn
}

func getJSON[T any](t *testing.T, url string) T {
	t.Helper()
	var v T
	require.NoError(t, json.Unmarshal([]byte(getText(t, url)), &v))
	return v
}

func getText(t *testing.T, url string) string {
	t.Helper()
	res, err := http.Get(url)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.StatusCode, string(b))
	return strings.TrimSpace(string(b))
}

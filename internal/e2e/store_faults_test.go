package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/cis490/cis490/internal/protocol"
)

func sidecar(t *testing.T, episode string) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(episode + ".json")
	require.NoError(t, err, "the episode's metadata")
	var m map[string]any
	require.NoError(t, json.Unmarshal(raw, &m))
	return m
}

// kill -9 between linking an episode and writing its .json left it without metadata
// 5 times in 10, and every retry answered "episode": "". Here the data folder is left
// the way such a crash leaves it: the receiver gives the tarball a placeholder when it
// starts, and the client's retry fills in the name.
func TestServeRepairsAnEpisodeACrashLeftWithoutMetadata(t *testing.T) {
	t.Parallel()
	env := Env(t)
	data := t.TempDir()
	body := []byte("linked, then the receiver was killed")
	path := filepath.Join(data, "episodes", "lab-07", sum(body))
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o750))
	require.NoError(t, os.WriteFile(path, body, 0o640))
	at := time.Date(2025, 6, 7, 8, 9, 10, 0, time.UTC)
	require.NoError(t, os.Chtimes(path, at, at))

	srv := StartServe(t, bin, env, "http", "--listen", "127.0.0.1:0", "--data-dir", data)
	assert.True(t, srv.HasLog("episodes without metadata"), srv.Logs())
	assert.Equal(t, map[string]any{
		"episode": "", "size": float64(len(body)), "received_at": "2025-06-07T08:09:10Z",
		"commit": "", "remote": "", "repaired": true,
	}, sidecar(t, path), "a placeholder from what the file tells")

	status, res := put(t, srv.URL, "lab-07", "", "ep-crash.tar", body)
	require.Equal(t, http.StatusOK, status, res)
	assert.Equal(t, "duplicate", res["status"])
	assert.Equal(t, "ep-crash.tar", res["episode"])
	assert.Equal(t, "2025-06-07T08:09:10Z", res["received_at"])
	meta := sidecar(t, path)
	assert.Equal(t, "ep-crash.tar", meta["episode"], "the retry names it")
	assert.Equal(t, true, meta["repaired"])
	assert.NotEmpty(t, meta["remote"])
	assert.Equal(t, 0, srv.Stop(t), srv.Logs())
}

// min_free_bytes held for uploads without Content-Length: five concurrent 30 MB
// chunked uploads once took a disk from 186 MB to 29 MB free with a 100 MiB floor.
// The same on a 64 MiB tmpfs (root can mount one; CI runs as root): the receiver
// answers 507 to some, free space never falls below the floor, nothing stays in tmp/.
func TestServeHoldsMinFreeForChunkedUploads(t *testing.T) {
	t.Parallel()
	env := Env(t)
	data := t.TempDir()
	if err := unix.Mount("tmpfs", data, "tmpfs", 0, "size=64m"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("cannot mount a tmpfs (CI runs as root, so it must): %v", err)
		}
		t.Skipf("cannot mount a tmpfs (needs root outside a sandbox): %v", err)
	}
	t.Cleanup(func() { assert.NoError(t, unix.Unmount(data, 0)) })
	const floor = 24 << 20
	cfg := filepath.Join(t.TempDir(), "lab-host.toml")
	require.NoError(t, os.WriteFile(cfg, fmt.Appendf(nil, "[serve]\nlisten = \"127.0.0.1:0\"\ndata_dir = %q\nmin_free_bytes = \"24MiB\"\n", data), 0o600))
	srv := StartServe(t, bin, env, "http", "--config", cfg)

	free := func() int64 {
		var st unix.Statfs_t
		if err := unix.Statfs(data, &st); err != nil {
			return -1
		}
		return int64(st.Bavail) * int64(st.Bsize)
	}
	var least atomic.Int64
	least.Store(free())
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			if f := free(); f < least.Load() {
				least.Store(f)
			}
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Microsecond):
			}
		}
	}()

	const uploads, size = 5, 12 << 20 // 60 MiB, with 40 MiB above the floor
	statuses := make([]int, uploads)
	errs := make([]error, uploads)
	bodies := make([][]byte, uploads)
	var wg sync.WaitGroup
	for i := range uploads {
		bodies[i] = make([]byte, size)
		_, _ = rand.NewChaCha8([32]byte{byte(i)}).Read(bodies[i])
		wg.Go(func() { statuses[i], errs[i] = putChunked(srv.URL, "lab-07", fmt.Sprintf("ep-%d.tar", i), bodies[i]) })
	}
	wg.Wait()
	close(stop)
	<-watched

	refused := 0
	for i := range uploads {
		stored := filepath.Join(data, "episodes", "lab-07", sum(bodies[i]))
		switch {
		case errs[i] == nil && statuses[i] == http.StatusCreated:
			assert.FileExists(t, stored)
		case errs[i] == nil:
			assert.Equal(t, http.StatusInsufficientStorage, statuses[i], "upload %d", i)
			assert.NoFileExists(t, stored)
			refused++
		default:
			// The receiver may answer 507 and close while the client still sends; the
			// client then sees the connection cut instead. Nothing may be stored.
			t.Logf("upload %d: %v", i, errs[i])
			assert.NoFileExists(t, stored)
			refused++
		}
	}
	assert.Positive(t, refused, "60 MiB cannot fit in the 40 MiB above the floor")
	assert.GreaterOrEqual(t, least.Load(), int64(floor-256<<10), "free space stays above min_free_bytes (sidecars, index and log lines aside)")
	entries, err := os.ReadDir(filepath.Join(data, "tmp"))
	require.NoError(t, err)
	assert.Empty(t, entries, "nothing partial kept")
	t.Logf("statuses %v; least free %d, floor %d", statuses, least.Load(), floor)
	assert.Equal(t, 0, srv.Stop(t), srv.Logs())
}

// putChunked sends data with no Content-Length, as a client streaming from a pipe does.
func putChunked(url, host, name string, data []byte) (int, error) {
	req, err := http.NewRequest(http.MethodPut, url+"/v1/episodes", io.MultiReader(bytes.NewReader(data)))
	if err != nil {
		return 0, err
	}
	req.Header.Set(protocol.HeaderHost, host)
	req.Header.Set(protocol.HeaderEpisode, name)
	req.Header.Set(protocol.HeaderSHA256, sum(data))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, res.Body)
	return res.StatusCode, nil
}

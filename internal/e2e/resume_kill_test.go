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
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/protocol"
)

// The receiver killed with SIGKILL in the middle of an upload (SPEC §3.3: a kill -9
// loses at most the last chunk): started again on the same data folder, it still has
// the partial, HEAD answers an offset at most one checkpoint interval short of what
// the client had sent, and a PUT of the rest from there stores the episode byte for
// byte. The real binary, a real SIGKILL, no clean cut: what survives is what the
// upload's periodic checkpoints wrote.
func TestServeKilledMidUploadKeepsAResumablePartial(t *testing.T) {
	t.Parallel()
	const chunk = 1 << 20 // the receiver's chunk, and its checkpoint interval
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	cfg := filepath.Join(dir, "lab-host.toml")
	require.NoError(t, os.WriteFile(cfg, fmt.Appendf(nil, "[serve]\nlisten = \"127.0.0.1:0\"\ndata_dir = %q\nmin_free_bytes = 0\n", data), 0o600))
	srv := StartServe(t, bin, Env(t), "http", "--config", cfg)

	body := make([]byte, 24*chunk+777)
	_, _ = rand.NewChaCha8([32]byte{'k', 'i', 'l', 'l'}).Read(body)
	sha := sum(body)
	const sent = 13*chunk + 4321
	beginUpload(t, srv.Addr, "lab-07", "big.tar", body, sent) // and then nothing more

	// Not HEAD: it would take the partial over and cut the upload cleanly. The state
	// file on disk says how far the checkpoints have come.
	state := filepath.Join(data, "tmp", "partial", "lab-07", sha+".state")
	require.Eventually(t, func() bool { return checkpointOf(state) >= sent-chunk }, 20*time.Second, 5*time.Millisecond,
		"the upload's checkpoints reach its last full chunk while it is still running")
	require.NoError(t, srv.cmd.Process.Kill())
	<-srv.done

	again := StartServe(t, bin, Env(t), "http", "--config", cfg)
	assert.False(t, again.HasLog("discarded a partial upload"), again.Logs())
	req, err := http.NewRequest(http.MethodHead, again.URL+"/v1/episodes/"+sha, nil)
	require.NoError(t, err)
	req.Header.Set(protocol.HeaderHost, "lab-07")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusNoContent, res.StatusCode, again.Logs())
	offset, err := strconv.ParseInt(res.Header.Get(protocol.HeaderUploadOffset), 10, 64)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, offset, int64(sent-chunk), "at most one checkpoint interval lost")
	assert.LessOrEqual(t, offset, int64(sent))
	assert.Zero(t, offset%chunk, "a checkpoint ends a full chunk")

	put, err := http.NewRequest(http.MethodPut, again.URL+"/v1/episodes", bytes.NewReader(body[offset:]))
	require.NoError(t, err)
	put.Header.Set(protocol.HeaderHost, "lab-07")
	put.Header.Set(protocol.HeaderEpisode, "big.tar")
	put.Header.Set(protocol.HeaderSHA256, sha)
	put.Header.Set(protocol.HeaderUploadOffset, strconv.FormatInt(offset, 10))
	res, err = http.DefaultClient.Do(put)
	require.NoError(t, err)
	reply, _ := io.ReadAll(res.Body)
	res.Body.Close()
	require.Equal(t, http.StatusCreated, res.StatusCode, string(reply))
	var answer map[string]any
	require.NoError(t, json.Unmarshal(reply, &answer))
	assert.EqualValues(t, len(body), answer["size"])
	stored, err := os.ReadFile(filepath.Join(data, "episodes", "lab-07", sha))
	require.NoError(t, err)
	assert.True(t, bytes.Equal(body, stored), "the stored episode is byte for byte the one sent")
	entries, err := os.ReadDir(filepath.Join(data, "tmp"))
	require.NoError(t, err)
	assert.Empty(t, entries, "the partial is gone")
	assert.Equal(t, 0, again.Stop(t), again.Logs())
}

// checkpointOf reads the offset a partial's state file claims; -1 while there is none.
func checkpointOf(path string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return -1
	}
	line, _, _ := strings.Cut(string(b), "\n")
	var rec struct {
		Offset int64 `json:"offset"`
	}
	if json.Unmarshal([]byte(line), &rec) != nil {
		return -1
	}
	return rec.Offset
}

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/migrate"
	"github.com/cis490/cis490/internal/objstore/objstoretest"
	"github.com/cis490/cis490/internal/store"
)

// readingAt is the offset of pid's open file path (/proc/PID/fdinfo), if it has it open.
func readingAt(pid int, path string) (pos int64, open bool) {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	fds, err := os.ReadDir(dir)
	if err != nil {
		return 0, false
	}
	for _, fd := range fds {
		if target, err := os.Readlink(filepath.Join(dir, fd.Name())); err != nil || target != path {
			continue
		}
		info, err := os.ReadFile(fmt.Sprintf("/proc/%d/fdinfo/%s", pid, fd.Name()))
		if err != nil {
			return 0, false
		}
		for _, line := range strings.Split(string(info), "\n") {
			if v, ok := strings.CutPrefix(line, "pos:"); ok {
				n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				return n, err == nil
			}
		}
	}
	return 0, false
}

// storeLocally writes body as host's episode name in dataDir through the data
// folder's own upload path, as `cis490 serve` with backend fs did, and returns its sha.
func storeLocally(t *testing.T, dataDir, host, name string, body []byte) string {
	t.Helper()
	st, err := store.Open(dataDir, store.Options{Logger: zerolog.Nop()})
	require.NoError(t, err)
	sha := sum(body)
	_, err = st.PutEpisode(context.Background(), host, sha, bytes.NewReader(body), int64(len(body)),
		store.EpisodeMeta{Episode: name, Size: int64(len(body)), ReceivedAt: time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)})
	require.NoError(t, err)
	return sha
}

// `cis490 storage migrate` killed with SIGKILL in the middle of a large episode's
// upload: nothing of that episode is visible, and the next run copies it and skips
// what the first one finished. (Linux: it reads the process's progress in /proc.)
func TestStorageMigrateKilledThenRunAgain(t *testing.T) {
	t.Parallel()
	tg := objstoretest.Versitygw(t)
	p := newS3Pi(t, tg)
	small := []string{
		storeLocally(t, p.data, "lab-01", "ep-a.tar.zst", randomBody(t, 3000)),
		storeLocally(t, p.data, "lab-01", "ep-b.tar.zst", randomBody(t, 4000)),
	}
	large := randomBody(t, 96<<20) // 20 parts of 5 MiB
	largeSHA := storeLocally(t, p.data, "lab-02", "ep-large.tar.zst", large)
	largeKey := "pi-1/episodes/lab-02/" + largeSHA

	cmd := exec.Command(bin, "--config", p.cfg, "--log-format", "json", "storage", "migrate", "--to", "s3")
	cmd.Env = p.env
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	copied := make(chan struct{}, 2)
	var logs bytes.Buffer
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logs.WriteString(sc.Text() + "\n")
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil && m["outcome"] == "copied" {
				copied <- struct{}{}
			}
		}
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	for range small { // episodes go by host: lab-01's two come first
		select {
		case <-copied:
		case err := <-exited:
			t.Fatalf("migrate exited before copying the small episodes: %v\n%s", err, logs.String())
		case <-time.After(30 * time.Second):
			t.Fatal("the small episodes were not copied within 30s")
		}
	}
	// Catch the migration in the middle of the large episode's upload, whichever way
	// the store takes it (one PutObject or a multipart upload): stopped (SIGSTOP), it
	// has the file open with part of it read, so its upload cannot have completed;
	// killed then.
	largePath := filepath.Join(p.data, "episodes", "lab-02", largeSHA)
	deadline := time.Now().Add(30 * time.Second)
	for {
		require.NoError(t, cmd.Process.Signal(syscall.SIGSTOP))
		if pos, open := readingAt(cmd.Process.Pid, largePath); open && pos > 0 && pos < int64(len(large)) {
			break
		}
		require.NoError(t, cmd.Process.Signal(syscall.SIGCONT))
		select {
		case err := <-exited:
			t.Fatalf("migrate exited before it was caught uploading the large episode: %v\n%s", err, logs.String())
		case <-copied:
			t.Fatal("the large episode was copied before it was caught in the middle of its upload")
		default:
		}
		require.True(t, time.Now().Before(deadline), "migrate was not seen reading %s within 30s", largePath)
		time.Sleep(2 * time.Millisecond) // sampling a process's progress: nothing to wait on
	}
	require.NoError(t, cmd.Process.Kill())
	<-exited
	_, err = tg.Client().HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: &tg.Bucket, Key: &largeKey})
	require.Error(t, err, "killed mid-upload: the large episode is not in the bucket")

	res := p.run(t, "storage", "migrate", "--to", "s3", "--json")
	require.Equal(t, 0, res.Code, res.Stderr)
	var s migrate.Summary
	require.NoError(t, json.Unmarshal([]byte(res.Stdout), &s), res.Stdout)
	assert.Equal(t, 3, s.Episodes)
	assert.Equal(t, 1, s.Copied, "the large one")
	assert.Equal(t, int64(len(large)), s.CopiedBytes)
	assert.Equal(t, 2, s.Present, "the two the killed run finished")
	assert.True(t, bytes.Equal(large, tg.Get(t, largeKey)), "the large episode whole")
	for _, sha := range small {
		assert.True(t, objstoretest.HasKey(tg.Keys(t, "pi-1/"), "pi-1/episodes/lab-01/"+sha+".json"))
	}

	// With --delete-local every local copy goes, each read back first.
	res = p.run(t, "storage", "migrate", "--to", "s3", "--delete-local")
	require.Equal(t, 0, res.Code, res.Stderr)
	assert.Contains(t, res.Stdout, "3 already in the bucket")
	assert.Contains(t, res.Stdout, "3 local copies deleted (96.0 MiB freed)")
	for _, f := range []string{filepath.Join(p.data, "episodes", "lab-02", largeSHA), filepath.Join(p.data, "episodes", "lab-01", small[0])} {
		_, err := os.Stat(f)
		assert.True(t, os.IsNotExist(err), f)
	}
}

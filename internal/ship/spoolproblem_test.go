package ship

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/cis490/cis490/internal/client"
	"github.com/cis490/cis490/internal/config"
	"github.com/cis490/cis490/internal/spool"
	"github.com/cis490/cis490/internal/testutil"
)

// Under cis490-ship.service (ProtectSystem=strict, ReadWritePaths=-/var/spool/cis490)
// a missing spool used to end in `mkdir /var/spool/cis490: read-only file system`,
// with no hint (issue 11). ship now says what is wrong and what to do, exits
// non-zero, and sends nothing: not even a heartbeat, which would tell fleet health
// this host is fine.

// countingReceiver answers every request 204 and counts them.
func countingReceiver(t *testing.T) (*client.Client, *atomic.Int32) {
	t.Helper()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	cfg := config.Default()
	cfg.Host, cfg.Receiver.URL, cfg.Receiver.Timeout = "lab-07", srv.URL, 5*time.Second
	c, err := client.New(cfg, client.Options{Retries: 0, Logger: zerolog.Nop()})
	require.NoError(t, err)
	return c, &calls
}

func options(c *client.Client, dir string) Options {
	return Options{SpoolDir: dir, MaxAge: 30 * 24 * time.Hour, KeepSent: 7 * 24 * time.Hour, Client: c, Logger: zerolog.Nop()}
}

func TestShipSaysHowToCreateAMissingSpool(t *testing.T) {
	t.Parallel()
	c, calls := countingReceiver(t)
	dir := filepath.Join(t.TempDir(), "cis490")
	_, err := Once(context.Background(), options(c, dir))
	require.Error(t, err)
	assert.Equal(t, "ship.spool_dir "+dir+` does not exist: run "cis490 install lab-host" to create it (or set ship.spool_dir)`, err.Error())
	assert.NoDirExists(t, dir, "ship does not make a spool of its own")
	assert.Equal(t, int32(0), calls.Load(), "nothing sent")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	err = Watch(ctx, options(c, dir), time.Hour, nil)
	require.Error(t, err, "--watch refuses at once too")
	assert.Contains(t, err.Error(), "does not exist: run \"cis490 install lab-host\"")
}

// readOnlySpool is a spool on a tmpfs remounted read-only, as a spool outside
// ReadWritePaths= looks to the unit (root included). withLock leaves a .ship.lock
// from an earlier run in it, which can still be opened for reading: the spool must
// be refused all the same. Needs root; fails under CI=true without it.
func readOnlySpool(t *testing.T, withLock bool) string {
	t.Helper()
	dir := testutil.Tmpfs(t, 1<<20)
	for _, sub := range []string{spool.Outbox, spool.Sent, spool.Rejected} {
		require.NoError(t, os.Mkdir(filepath.Join(dir, sub), 0o750))
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, spool.Outbox, "ep-1.tar"), []byte("episode"), 0o640))
	if withLock {
		require.NoError(t, os.WriteFile(filepath.Join(dir, ".ship.lock"), nil, 0o600))
	}
	require.NoError(t, unix.Mount("", dir, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""), "remount %s read-only", dir)
	return dir
}

func TestShipExplainsAReadOnlySpool(t *testing.T) {
	t.Parallel()
	for _, withLock := range []bool{false, true} {
		c, calls := countingReceiver(t)
		dir := readOnlySpool(t, withLock)
		_, err := Once(context.Background(), options(c, dir))
		require.Error(t, err)
		assert.True(t, errors.Is(err, syscall.EROFS), "%v", err)
		var p *spool.Problem
		require.True(t, errors.As(err, &p), "%v", err)
		assert.Contains(t, err.Error(), "ship.spool_dir "+dir+" is on a read-only file system: "+
			`run "cis490 install lab-host" to create it (or set ship.spool_dir); cis490-ship.service may write only /var/spool/cis490`)
		assert.Equal(t, int32(0), calls.Load(), "nothing sent, with lock file %v", withLock)
		assert.FileExists(t, filepath.Join(dir, spool.Outbox, "ep-1.tar"))
	}
}

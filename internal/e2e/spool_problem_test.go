package e2e

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/cis490/cis490/internal/testutil"
)

// Issue 11: under cis490-ship.service a missing spool said only `mkdir
// /var/spool/cis490: read-only file system`. The binary now says what is wrong and
// what to do, exits non-zero, and contacts nobody.
func TestShipWithoutAUsableSpool(t *testing.T) {
	t.Parallel()
	srv, data := startOpenReceiver(t)

	t.Run("missing", func(t *testing.T) {
		t.Parallel()
		h := newLabHost(t, "lab-31", srv.URL, "")
		require.NoError(t, os.RemoveAll(h.spool))
		r := h.ship(t, bin)
		assert.NotEqual(t, 0, r.Code)
		assert.Contains(t, r.Stderr, "ship.spool_dir "+h.spool+` does not exist: run "cis490 install lab-host" to create it (or set ship.spool_dir)`)
		assert.NoDirExists(t, h.spool, "ship made no spool of its own")
		assert.NotContains(t, r.Stdout, "shipped 0", "no summary of a run that never looked at the spool")
		assert.NoDirExists(t, filepath.Join(data, "episodes", "lab-31"))
	})

	t.Run("read-only", func(t *testing.T) {
		t.Parallel()
		h := newLabHost(t, "lab-32", srv.URL, "")
		h.spool = testutil.Tmpfs(t, 1<<20)
		require.NoError(t, os.WriteFile(h.cfg, []byte("host = \"lab-32\"\n[receiver]\nurl = \""+srv.URL+"\"\n[ship]\nspool_dir = \""+h.spool+"\"\nretries = 0\n"), 0o600))
		require.NoError(t, os.Mkdir(filepath.Join(h.spool, "outbox"), 0o750))
		h.drop(t, "ep-1.tar", []byte("episode"), 0)
		require.NoError(t, unix.Mount("", h.spool, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""))
		r := h.ship(t, bin)
		assert.NotEqual(t, 0, r.Code)
		assert.Contains(t, r.Stderr, "ship.spool_dir "+h.spool+" is on a read-only file system: "+
			`run "cis490 install lab-host" to create it (or set ship.spool_dir); cis490-ship.service may write only /var/spool/cis490`)
		assert.Contains(t, r.Stderr, "ReadWritePaths="+h.spool+" in a drop-in (systemctl edit cis490-ship.service")
		assert.FileExists(t, filepath.Join(h.spool, "outbox", "ep-1.tar"))
		assert.NoDirExists(t, filepath.Join(data, "episodes", "lab-32"), "nothing shipped")
	})
}

package spool

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/cis490/cis490/internal/testutil"
)

// readOnly mounts a small tmpfs, lets fill put what it likes in it, and remounts it
// read-only: what a spool outside ReadWritePaths= looks like under
// ProtectSystem=strict, to root too. Needs root (skipped locally without it, fails
// under CI=true).
func readOnly(t *testing.T, fill func(dir string)) string {
	t.Helper()
	dir := testutil.Tmpfs(t, 1<<20)
	fill(dir)
	require.NoError(t, unix.Mount("", dir, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""), "remount %s read-only", dir)
	return dir
}

// A missing spool is not created by ship: install makes it with the right owner and
// group for the producers, and a typo in ship.spool_dir must not make a second,
// empty spool that ship then "ships" forever.
func TestPrepareSaysHowToCreateAMissingSpool(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "cis490")
	err := New(dir).Prepare()
	require.Error(t, err)
	assert.Equal(t, "ship.spool_dir "+dir+` does not exist: run "cis490 install lab-host" to create it (or set ship.spool_dir)`, err.Error())
	var p *Problem
	require.True(t, errors.As(err, &p))
	assert.False(t, p.ReadOnly)
	assert.True(t, errors.Is(err, os.ErrNotExist))
	assert.NoDirExists(t, dir, "nothing created")
}

func TestPrepareExplainsAReadOnlySpool(t *testing.T) {
	t.Parallel()
	dir := readOnly(t, func(string) {})
	err := New(dir).Prepare()
	require.Error(t, err)
	assert.True(t, errors.Is(err, syscall.EROFS), "%v", err)
	assert.Contains(t, err.Error(), "ship.spool_dir "+dir+" is on a read-only file system: ")
	assert.Contains(t, err.Error(), `run "cis490 install lab-host" to create it (or set ship.spool_dir)`)
	assert.Contains(t, err.Error(), "cis490-ship.service may write only /var/spool/cis490")
	assert.Contains(t, err.Error(), "ReadWritePaths="+dir+" in a drop-in (systemctl edit cis490-ship.service")
	var p *Problem
	require.True(t, errors.As(err, &p))
	assert.True(t, p.ReadOnly)

	// Folders that exist already are no excuse: nothing can be moved in or out.
	full := readOnly(t, func(dir string) {
		for _, sub := range []string{Outbox, Sent, Rejected} {
			require.NoError(t, os.Mkdir(filepath.Join(dir, sub), 0o750))
		}
	})
	err = New(full).Prepare()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "is on a read-only file system")
}

// The folder the units may write is the one spool where a read-only file system is
// not the unit's doing: the hint does not send anyone to a drop-in for it.
func TestProblemHintForTheUnitsOwnSpool(t *testing.T) {
	t.Parallel()
	p := &Problem{Dir: UnitDir, ReadOnly: true, Err: syscall.EROFS}
	assert.NotContains(t, p.Error(), "drop-in")
	assert.Contains(t, p.Error(), "may write only "+UnitDir)
}

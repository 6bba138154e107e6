package doctor

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/testutil"
	"golang.org/x/sys/unix"
)

func makeSpool(t *testing.T, dir string) string {
	t.Helper()
	for _, sub := range []string{"outbox", "sent", "rejected"} {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, sub), 0o750))
	}
	return dir
}

func touch(t *testing.T, path string, age time.Duration, now time.Time) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, []byte("x"), 0o640))
	require.NoError(t, os.Chtimes(path, now.Add(-age), now.Add(-age)))
}

func TestCheckSpoolCountsTheQueueAndIgnoresFilesInProgress(t *testing.T) {
	t.Parallel()
	now := time.Now()
	dir := makeSpool(t, t.TempDir())
	touch(t, filepath.Join(dir, "outbox", "a.tar"), 10*time.Minute, now)
	touch(t, filepath.Join(dir, "outbox", "b.tar"), time.Minute, now)
	touch(t, filepath.Join(dir, "outbox", ".c.tar"), 3*time.Hour, now)
	touch(t, filepath.Join(dir, "outbox", "d.tar.part"), 3*time.Hour, now)

	c := checkSpool(dir, now)
	require.Equal(t, OK, c.Status, c.Summary)
	assert.Equal(t, "2 queued (oldest 10m0s), nothing rejected", c.Summary)
	assert.Equal(t, 2, c.Details["queue_depth"])
	assert.Equal(t, 2, c.Details["in_progress"])
	assert.Equal(t, 600.0, c.Details["oldest_age_seconds"])
	entries, err := os.ReadDir(filepath.Join(dir, "outbox"))
	require.NoError(t, err)
	assert.Len(t, entries, 4, "the write probe is removed")
}

func TestCheckSpoolWarnsAboutRejectedFiles(t *testing.T) {
	t.Parallel()
	now := time.Now()
	dir := makeSpool(t, t.TempDir())
	touch(t, filepath.Join(dir, "rejected", "bad.tar"), time.Hour, now)
	touch(t, filepath.Join(dir, "rejected", "bad.tar.reason"), time.Hour, now)

	c := checkSpool(dir, now)
	require.Equal(t, Warn, c.Status, c.Summary)
	assert.Contains(t, c.Summary, "1 in rejected/")
	assert.Equal(t, 1, c.Details["rejected"], "the .reason file is not an episode")
	assert.Contains(t, c.Hint, ".reason file")
	assert.Contains(t, c.Hint, filepath.Join(dir, "rejected"))
}

func TestCheckSpoolWarnsAboutAStuckQueue(t *testing.T) {
	t.Parallel()
	now := time.Now()
	dir := makeSpool(t, t.TempDir())
	touch(t, filepath.Join(dir, "outbox", "old.tar"), 3*time.Hour, now)
	c := checkSpool(dir, now)
	require.Equal(t, Warn, c.Status, c.Summary)
	assert.Contains(t, c.Summary, "has waited 3h0m0s")
	assert.Contains(t, c.Hint, "cis490 ship")
}

func TestCheckSpoolFailsWhenFoldersAreMissingOrNotFolders(t *testing.T) {
	t.Parallel()
	now := time.Now()

	// The spool itself missing: the same words as ship's (issue 11).
	missing := filepath.Join(t.TempDir(), "never-created")
	c := checkSpool(missing, now)
	require.Equal(t, Fail, c.Status)
	assert.Equal(t, "ship.spool_dir "+missing+" does not exist", c.Summary)
	assert.Equal(t, `run "cis490 install lab-host" to create it (or set ship.spool_dir)`, c.Hint)

	// One of its folders missing.
	dir := makeSpool(t, t.TempDir())
	require.NoError(t, os.Remove(filepath.Join(dir, "outbox")))
	c = checkSpool(dir, now)
	require.Equal(t, Fail, c.Status)
	assert.Contains(t, c.Summary, "outbox/ is missing")
	assert.Contains(t, c.Hint, "cis490 install lab-host")

	dir = makeSpool(t, t.TempDir())
	require.NoError(t, os.Remove(filepath.Join(dir, "sent")))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "sent"), nil, 0o640))
	c = checkSpool(dir, now)
	require.Equal(t, Fail, c.Status)
	assert.Equal(t, "spool "+dir+": sent/ is not a folder", c.Summary)
}

// Root writes through any permission bits, so a chmod 0500 proves nothing in CI
// (which runs as root). A file system mounted read-only refuses root too: the
// spool is built on a tmpfs that is then remounted read-only.
func TestCheckSpoolFailsWhenTheSpoolIsNotWritable(t *testing.T) {
	t.Parallel()
	var dir string
	if os.Geteuid() == 0 {
		dir = testutil.Tmpfs(t, 1<<20) // fails under CI=true when it cannot mount
		makeSpool(t, dir)
		require.NoError(t, unix.Mount("", dir, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""))
	} else {
		dir = t.TempDir()
		makeSpool(t, dir)
		require.NoError(t, os.Chmod(filepath.Join(dir, "outbox"), 0o500))
		t.Cleanup(func() { _ = os.Chmod(filepath.Join(dir, "outbox"), 0o750) })
	}
	c := checkSpool(dir, time.Now())
	require.Equal(t, Fail, c.Status, c.Summary)
	if os.Geteuid() == 0 {
		// The same words as ship's, with what the units may write (issue 11).
		assert.Equal(t, "ship.spool_dir "+dir+" is on a read-only file system", c.Summary)
		assert.Contains(t, c.Hint, `run "cis490 install lab-host" to create it (or set ship.spool_dir); cis490-ship.service may write only /var/spool/cis490`)
		assert.Contains(t, c.Hint, "ReadWritePaths="+dir)
		return
	}
	assert.Contains(t, c.Summary, "outbox/ is not writable")
	assert.Contains(t, c.Hint, "writable by the user cis490-ship runs as")
}

// What ship will never send (a symlink, a folder) keeps every ship run failing: the
// spool check says so rather than "0 queued".
func TestCheckSpoolWarnsAboutWhatShipNeverSends(t *testing.T) {
	t.Parallel()
	now := time.Now()
	dir := makeSpool(t, t.TempDir())
	touch(t, filepath.Join(dir, "outbox", "a.tar"), time.Minute, now)
	require.NoError(t, os.Symlink("/etc/hostname", filepath.Join(dir, "outbox", "link.tar")))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "outbox", "folder"), 0o750))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "outbox", ".staging"), 0o750))

	c := checkSpool(dir, now)
	require.Equal(t, Warn, c.Status, c.Summary)
	assert.Contains(t, c.Summary, "2 in outbox/ that ship never sends (folder: folder, link.tar: symlink)")
	assert.Equal(t, 2, c.Details["unshippable"])
	assert.Contains(t, c.Hint, "mv")
}

package doctor

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// A tmpfs of a given size is a file system that really has that little room, as
// statfs(2) reports it: nothing about the free-space figure is faked.
func TestCheckDiskOnSmallFileSystems(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		size   string
		status Status
	}{
		{"50m", Fail},
		{"500m", Warn},
		{"2g", OK},
	} {
		t.Run(tc.size, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+tc.size); err != nil {
				t.Skipf("cannot mount a tmpfs (needs root outside a sandbox): %v", err)
			}
			t.Cleanup(func() { assert.NoError(t, unix.Unmount(dir, 0)) })
			spool := filepath.Join(dir, "spool")
			require.NoError(t, os.Mkdir(spool, 0o750))

			c := checkDisk(spool)
			assert.Equal(t, tc.status, c.Status, c.Summary)
			assert.Contains(t, c.Summary, "free of")
			assert.Equal(t, spool, c.Details["path"])
			if tc.status != OK {
				assert.Contains(t, c.Hint, filepath.Join(spool, "sent"))
			}
		})
	}
}

func TestCheckDiskLooksAtTheNearestExistingFolder(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c := checkDisk(filepath.Join(dir, "not", "yet"))
	assert.NotEqual(t, Fail, c.Status, c.Summary)
	assert.Equal(t, dir, c.Details["path"])

	file := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	c = checkDisk(filepath.Join(file, "spool"))
	assert.NotEqual(t, Fail, c.Status, "a regular file in the way still tells which file system: %s", c.Summary)
}

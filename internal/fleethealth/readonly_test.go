package fleethealth

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

// Issue 11: under cis490-fleet-health.service (ProtectSystem=strict, writable:
// /var/lib/cis490 only) an alerts_file elsewhere fails at the first alert with a
// bare "read-only file system". The error says what the unit may write and how to
// let it write there. A tmpfs remounted read-only is that file system, to root too
// (needs root: skipped locally without it, fails under CI=true).
func TestAlertsFileOnAReadOnlyFileSystemSaysWhatTheUnitMayWrite(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		// fill prepares the file system before it turns read-only and returns the
		// alerts file's path in it.
		fill func(t *testing.T, dir string) string
		// rwp is the folder to name in ReadWritePaths= (an existing one), relative to
		// the file system's root.
		rwp string
	}{
		{"an existing file", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "alerts.jsonl")
			require.NoError(t, os.WriteFile(p, nil, 0o640))
			return p
		}, "."},
		{"a new file", func(t *testing.T, dir string) string { return filepath.Join(dir, "alerts.jsonl") }, "."},
		{"a new folder", func(t *testing.T, dir string) string {
			require.NoError(t, os.Mkdir(filepath.Join(dir, "srv"), 0o750))
			return filepath.Join(dir, "srv", "cis490", "alerts.jsonl")
		}, "srv"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ro := testutil.Tmpfs(t, 1<<20)
			path := tc.fill(t, ro)
			require.NoError(t, unix.Mount("", ro, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""), "remount %s read-only", ro)
			f := newFleet(t)
			f.alertsPath = path
			hook, _ := forwarding(t, f)
			quiet(f)

			_, err := Check(t.Context(), f.opts(t0))
			require.Error(t, err)
			assert.True(t, errors.Is(err, syscall.EROFS), "%v", err)
			dir := filepath.Join(ro, tc.rwp)
			assert.Contains(t, err.Error(), "fleet_health.alerts_file "+path+" is on a read-only file system: "+
				"the unit may write only /var/lib/cis490; add ReadWritePaths="+dir+
				" in a drop-in (systemctl edit cis490-fleet-health.service) or move the file")
			assert.Contains(t, err.Error(), "tried again at the next run")
			assert.Equal(t, []string{"firing lab-07/silent"}, hook.lines(), "still forwarded")
		})
	}
}

// In the one folder the unit may write, a read-only file system is the mount's doing,
// and the hint says so instead of sending anyone to a drop-in.
func TestReadOnlyAlertsFileInTheStateDirectory(t *testing.T) {
	t.Parallel()
	msg := readOnlyAlertsFile("/var/lib/cis490/alerts.jsonl")
	assert.NotContains(t, msg, "drop-in")
	assert.Contains(t, msg, "mounted read-only")
	assert.Contains(t, readOnlyAlertsFile("/var/lib/cis490x/alerts.jsonl"), "ReadWritePaths=")
}

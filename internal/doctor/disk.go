package doctor

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/cis490/cis490/internal/humanize"
)

// Free-space thresholds on the spool's file system. Episodes are tarballs of tens to
// hundreds of MiB: below a GiB the producer may soon fail to write one; below 100 MiB
// it will, and so may the logs.
const (
	diskWarnBelow = 1 << 30
	diskFailBelow = 100 << 20
)

func checkDisk(spoolDir string) Check {
	path := existingAncestor(spoolDir)
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return failed("cannot read free space of "+path+": "+err.Error(), "check ship.spool_dir in lab-host.toml", map[string]any{"path": path})
	}
	free, total := st.Bavail*uint64(st.Bsize), st.Blocks*uint64(st.Bsize)
	details := map[string]any{"path": path, "free_bytes": free, "total_bytes": total,
		"warn_below_bytes": diskWarnBelow, "fail_below_bytes": diskFailBelow}
	summary := fmt.Sprintf("%s free of %s on %s", humanize.Bytes(free), humanize.Bytes(total), path)
	hint := "free space on " + path + ": delete old episodes in " + filepath.Join(spoolDir, "sent") +
		" (ship.keep_sent), look at " + filepath.Join(spoolDir, "rejected") + ", or grow the file system"
	switch {
	case free < diskFailBelow:
		return failed(summary, hint, details)
	case free < diskWarnBelow:
		return warned(summary, hint, details)
	}
	return ok(summary, details)
}

// existingAncestor is path, or its nearest parent that exists: a spool that is not
// created yet will live on that file system, and the spool check already says what
// is wrong with the path itself.
func existingAncestor(path string) string {
	for {
		if _, err := os.Stat(path); err == nil {
			return path
		}
		parent := filepath.Dir(path)
		if parent == path {
			return path
		}
		path = parent
	}
}

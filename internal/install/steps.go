package install

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/google/renameio/v2"
)

type action int

const (
	unchanged action = iota
	create
	update
	keep
	remove
)

// change is what a step does, or would do: the action, its target and a few words
// on why.
type change struct {
	action action
	target string
	detail string
}

// A step brings one file or folder to the state it should be in. check looks and
// changes nothing (it is all --dry-run does); apply acts on what check found.
type step interface {
	check() (change, error)
	apply(change) error
}

// fileStep is a file with exact content and mode. keep files (the configuration)
// are written only when missing: the operator owns them from then on.
type fileStep struct {
	path   string
	mode   fs.FileMode
	data   []byte
	keep   bool
	secret bool
	what   string
}

func (s *fileStep) check() (change, error) {
	c := change{target: s.path, detail: modeString(s.mode)}
	if s.what != "" {
		c.detail += ", " + s.what
	}
	fi, err := os.Lstat(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		c.action = create
		return c, nil
	}
	if err != nil {
		return c, err
	}
	if !fi.Mode().IsRegular() {
		return c, fmt.Errorf("%s exists and is not a regular file: move it away, then run install again", s.path)
	}
	if s.keep {
		c.action, c.detail = keep, "exists; install never overwrites a configuration"
		return c, nil
	}
	old, err := os.ReadFile(s.path)
	if err != nil {
		return c, err
	}
	switch {
	case !bytes.Equal(old, s.data):
		c.action, c.detail = update, "content differs; now "+c.detail
		if s.secret {
			c.detail = "a different token; now " + modeString(s.mode)
		}
	case fi.Mode()&modeBits != s.mode:
		c.action, c.detail = update, fmt.Sprintf("mode %s → %s", modeString(fi.Mode()&modeBits), modeString(s.mode))
	default:
		c.action = unchanged
	}
	return c, nil
}

func (s *fileStep) apply(c change) error {
	if err := mkdirParents(filepath.Dir(s.path)); err != nil {
		return err
	}
	// Written beside and renamed over: a running cis490 keeps its old binary, and a
	// reader never sees half a file.
	return renameio.WriteFile(s.path, s.data, s.mode, renameio.WithStaticPermissions(s.mode))
}

// dirStep is a folder with an exact mode and, when group is set, group. groupKept:
// the group is the folder's already, from an earlier run (said so when unchanged).
type dirStep struct {
	path      string
	mode      fs.FileMode
	group     *Group
	groupKept bool
}

// modeBits are the mode bits install sets and compares.
const modeBits = fs.ModePerm | fs.ModeSetgid | fs.ModeSetuid | fs.ModeSticky

func (s *dirStep) check() (change, error) {
	c := change{target: s.path, detail: "folder " + modeString(s.mode)}
	if s.group != nil {
		c.detail += ", group " + s.group.Name
	}
	fi, err := os.Lstat(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		c.action = create
		return c, nil
	}
	if err != nil {
		return c, err
	}
	if !fi.IsDir() {
		return c, fmt.Errorf("%s exists and is not a folder: move it away, then run install again", s.path)
	}
	var diffs []string
	if m := fi.Mode() & modeBits; m != s.mode {
		diffs = append(diffs, fmt.Sprintf("mode %s → %s", modeString(m), modeString(s.mode)))
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && s.group != nil && int(st.Gid) != s.group.GID {
		diffs = append(diffs, fmt.Sprintf("group %s → %s", groupName(int(st.Gid)), s.group.Name))
	}
	switch {
	case len(diffs) > 0:
		c.action, c.detail = update, strings.Join(diffs, "; ")
	case s.groupKept:
		c.action, c.detail = keep, c.detail+", from an earlier --spool-group"
	}
	return c, nil
}

func (s *dirStep) apply(c change) error {
	if c.action == create {
		if err := mkdirParents(filepath.Dir(s.path)); err != nil {
			return err
		}
		if err := os.Mkdir(s.path, 0o700); err != nil {
			return err
		}
	}
	// chown before chmod: changing the owner may clear the setgid bit.
	if s.group != nil {
		if err := os.Lchown(s.path, -1, s.group.GID); err != nil {
			return err
		}
	}
	return os.Chmod(s.path, s.mode)
}

// mkdirParents creates dir and its missing parents as 0755 whatever the umask, so
// that an install under --root always produces the same tree.
func mkdirParents(dir string) error {
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Lstat(d); err == nil {
			break
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		missing = append(missing, d)
		if d == filepath.Dir(d) {
			break
		}
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := os.Mkdir(missing[i], 0o755); err != nil {
			return err
		}
		if err := os.Chmod(missing[i], 0o755); err != nil {
			return err
		}
	}
	return nil
}

// modeString is the octal mode as chmod takes it: 0750, 2770.
func modeString(m fs.FileMode) string {
	n := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		n |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		n |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		n |= 0o1000
	}
	return fmt.Sprintf("%04o", n)
}

// groupName is the name of group gid for messages, or its number when it has none.
func groupName(gid int) string {
	if g, err := user.LookupGroupId(strconv.Itoa(gid)); err == nil {
		return g.Name
	}
	return strconv.Itoa(gid)
}

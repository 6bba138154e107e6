// Package spool is the lab host's spool folder (SPEC §4.2): producers drop finished
// tarballs in outbox/, ship moves them to sent/ or rejected/.
package spool

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/google/renameio/v2"

	"github.com/cis490/cis490/internal/fsutil"
)

// Folder names inside the spool.
const (
	Outbox   = "outbox"
	Sent     = "sent"
	Rejected = "rejected"
	// ReasonSuffix names the file beside a rejected tarball that says why.
	ReasonSuffix = ".reason"
)

// Spool is one spool folder.
type Spool struct{ Dir string }

// New returns the spool at dir; Prepare creates its folders inside it.
func New(dir string) Spool { return Spool{Dir: dir} }

func (s Spool) Path(sub string) string { return filepath.Join(s.Dir, sub) }

// Prepare creates outbox/, sent/ and rejected/ if they are missing. The spool's own
// folder must exist: `cis490 install lab-host` makes it, with the owner and group
// producers need, and a mistyped ship.spool_dir must not become a second, empty
// spool. A missing or read-only spool is a *Problem that says what to do.
func (s Spool) Prepare() error {
	if p := s.Problem(); p != nil {
		return p
	}
	for _, sub := range []string{Outbox, Sent, Rejected} {
		err := os.MkdirAll(s.Path(sub), 0o750)
		if p := s.Diagnose(err); p != nil {
			return p
		}
		if err != nil {
			return fmt.Errorf("spool %s: %w (check ship.spool_dir and its permissions)", s.Dir, err)
		}
	}
	return nil
}

// InProgress reports whether a producer is still writing name: such names start
// with a dot or end in .part, and are left alone.
func InProgress(name string) bool {
	return strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".part")
}

// File is a regular file in one of the spool's folders.
type File struct {
	Name    string
	Path    string
	Size    int64
	ModTime time.Time
	// Info is the file as listed, or as opened when it was sent: MarkSent and Reject
	// move the name only while it still refers to this file.
	Info fs.FileInfo
}

// List returns the regular files of sub, oldest first (then by name).
func (s Spool) List(sub string) ([]File, error) {
	entries, err := os.ReadDir(s.Path(sub))
	if err != nil {
		return nil, err
	}
	var files []File
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // moved away meanwhile
		} else if err != nil {
			return nil, err
		}
		files = append(files, File{Name: e.Name(), Path: filepath.Join(s.Path(sub), e.Name()), Size: info.Size(), ModTime: info.ModTime(), Info: info})
	}
	sort.Slice(files, func(i, j int) bool {
		if !files[i].ModTime.Equal(files[j].ModTime) {
			return files[i].ModTime.Before(files[j].ModTime)
		}
		return files[i].Name < files[j].Name
	})
	return files, nil
}

// Queue returns the finished files waiting in outbox/, oldest first.
func (s Spool) Queue() ([]File, error) {
	all, err := s.List(Outbox)
	if err != nil {
		return nil, err
	}
	queue := all[:0]
	for _, f := range all {
		if !InProgress(f.Name) {
			queue = append(queue, f)
		}
	}
	return queue, nil
}

// Reason is what a .reason file says about a rejected tarball.
type Reason struct {
	RejectedAt time.Time `json:"rejected_at"`
	Status     int       `json:"status,omitempty"`
	Reason     string    `json:"reason"`
}

// ErrReplaced means f's name in outbox/ now refers to another file than f.Info (a
// producer reused the name, or rewrote the file): that file is left where it is.
var ErrReplaced = errors.New("replaced since it was listed or opened")

// ErrNotStamped means MarkSent moved the file but could not set its time (chtimes needs
// the file's owner or CAP_FOWNER): it keeps its producer's time, from which keep_sent
// then counts. The move itself succeeded.
var ErrNotStamped = errors.New("kept the time its producer wrote it")

// Reject moves f from outbox/ to rejected/ and writes the reason beside it. The
// reason is written first, so a tarball never sits in rejected/ unexplained.
func (s Spool) Reject(f File, why Reason) error {
	b, err := json.Marshal(why)
	if err != nil {
		return err
	}
	if err := s.unchanged(f); err != nil {
		return err
	}
	dst := freeName(filepath.Join(s.Path(Rejected), f.Name))
	if err := renameio.WriteFile(dst+ReasonSuffix, append(b, '\n'), 0o640); err != nil {
		return fmt.Errorf("write reason for %s: %w", f.Name, err)
	}
	if err := s.move(f, dst); err != nil {
		_ = os.Remove(dst + ReasonSuffix)
		return fmt.Errorf("move %s to rejected/: %w", f.Name, err)
	}
	return fsutil.SyncDir(s.Path(Rejected))
}

// MarkSent moves f from outbox/ to sent/, stamped with the time it was shipped:
// ship.keep_sent counts from then, not from when the producer wrote it.
func (s Spool) MarkSent(f File, now time.Time) error {
	dst := filepath.Join(s.Path(Sent), f.Name)
	if err := s.move(f, dst); err != nil {
		return fmt.Errorf("move %s to sent/: %w", f.Name, err)
	}
	stampErr := os.Chtimes(dst, now, now)
	if err := fsutil.SyncDir(s.Path(Sent)); err != nil {
		return err
	}
	if stampErr != nil {
		return fmt.Errorf("sent/%s %w (%v): ship.keep_sent counts from then", f.Name, ErrNotStamped, stampErr)
	}
	return nil
}

// move renames f to dst only while f's name still refers to f.Info's file.
//
// Checking and renaming are two steps, so a producer could still swap the name in
// the microseconds between them. Rename is atomic, though: what lands at dst is
// exactly what the name held at that instant, so it is checked again, and a file
// taken by mistake goes straight back (giveBack). The first check keeps that rare:
// without it, every file replaced during a long upload would make the round trip.
func (s Spool) move(f File, dst string) error {
	if err := s.unchanged(f); err != nil {
		return err
	}
	if err := os.Rename(f.Path, dst); err != nil {
		return err
	}
	moved, err := os.Lstat(dst)
	if err != nil {
		return err
	}
	if !same(moved, f.Info) {
		if err := s.giveBack(dst, f.Name); err != nil {
			return fmt.Errorf("%w, and it could not go back to outbox/: %w", ErrReplaced, err)
		}
		return ErrReplaced
	}
	return nil
}

func (s Spool) unchanged(f File) error {
	now, err := os.Lstat(f.Path)
	if err != nil {
		return err
	}
	if !same(now, f.Info) {
		return ErrReplaced
	}
	return nil
}

// same reports whether a and b are one file with the same size and time: a file
// rewritten in place is the same inode but not the same episode.
func same(a, b fs.FileInfo) bool {
	return b != nil && os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

// giveBack returns a producer's file that move took by mistake to outbox/ under its
// name, or, when another file took the name meanwhile, under the first free name.1,
// name.2, …: link(2) never replaces a file. When link is refused (fs.protected_hardlinks
// and a file of another user), a rename to a free name does; its own check-then-rename
// gap would need the producer to write the name a third time within microseconds.
func (s Spool) giveBack(moved, name string) error {
	home := filepath.Join(s.Path(Outbox), name)
	for candidate, i := home, 1; ; candidate, i = fmt.Sprintf("%s.%d", home, i), i+1 {
		err := os.Link(moved, candidate)
		if err == nil {
			return os.Remove(moved)
		}
		if !errors.Is(err, fs.ErrExist) {
			return os.Rename(moved, freeName(home))
		}
	}
}

// Stray is something in outbox/ that ship never sends: only regular files are
// episodes, and a link is never followed.
type Stray struct {
	Name string
	Kind string // symlink, folder, named pipe, socket, device, or "not a regular file"
}

// Strays lists outbox/'s entries that are not regular files, by name. In-progress
// names are left out: a producer may stage its work in a dot-folder.
func (s Spool) Strays() ([]Stray, error) {
	entries, err := os.ReadDir(s.Path(Outbox))
	if err != nil {
		return nil, err
	}
	var strays []Stray
	for _, e := range entries {
		if e.Type().IsRegular() || InProgress(e.Name()) {
			continue
		}
		strays = append(strays, Stray{Name: e.Name(), Kind: kind(e.Type())})
	}
	return strays, nil
}

func kind(mode fs.FileMode) string {
	switch {
	case mode&fs.ModeSymlink != 0:
		return "symlink"
	case mode.IsDir():
		return "folder"
	case mode&fs.ModeNamedPipe != 0:
		return "named pipe"
	case mode&fs.ModeSocket != 0:
		return "socket"
	case mode&fs.ModeDevice != 0:
		return "device"
	}
	return "not a regular file"
}

// freeName returns path, or path with a numbered suffix when path or its reason file
// is taken: a rejected tarball is never replaced by a later one of the same name.
// Only one ship run holds the spool at a time, so checking first is enough.
func freeName(path string) string {
	candidate := path
	for i := 1; ; i++ {
		_, err1 := os.Lstat(candidate)
		_, err2 := os.Lstat(candidate + ReasonSuffix)
		if errors.Is(err1, fs.ErrNotExist) && errors.Is(err2, fs.ErrNotExist) {
			return candidate
		}
		candidate = fmt.Sprintf("%s.%d", path, i)
	}
}

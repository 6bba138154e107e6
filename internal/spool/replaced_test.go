package spool

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func queued(t *testing.T, s Spool, name, content string) File {
	t.Helper()
	require.NoError(t, os.WriteFile(filepath.Join(s.Path(Outbox), name), []byte(content), 0o600))
	q, err := s.Queue()
	require.NoError(t, err)
	for _, f := range q {
		if f.Name == name {
			return f
		}
	}
	t.Fatalf("%s not queued", name)
	return File{}
}

// replaceByRename is what a producer does: write under an in-progress name, rename over.
func replaceByRename(t *testing.T, s Spool, name, content string) {
	t.Helper()
	tmp := filepath.Join(s.Path(Outbox), name+".part")
	require.NoError(t, os.WriteFile(tmp, []byte(content), 0o600))
	require.NoError(t, os.Rename(tmp, filepath.Join(s.Path(Outbox), name)))
}

// rewriteInPlace keeps the inode and changes the content, size and time.
func rewriteInPlace(t *testing.T, s Spool, name, content string) {
	t.Helper()
	p := filepath.Join(s.Path(Outbox), name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	later := time.Now().Add(time.Minute)
	require.NoError(t, os.Chtimes(p, later, later))
}

func content(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(b)
}

// MarkSent and Reject move the file that was listed (or sent), never another one
// that took its name since: that one stays in the outbox for the next pass.
func TestMovesLeaveAReplacedFileInTheOutbox(t *testing.T) {
	for _, replace := range []struct {
		name string
		do   func(*testing.T, Spool, string, string)
	}{{"renamed over", replaceByRename}, {"rewritten in place", rewriteInPlace}} {
		for _, move := range []struct {
			name string
			do   func(Spool, File) error
			dst  string
		}{
			{"sent", func(s Spool, f File) error { return s.MarkSent(f, time.Now()) }, Sent},
			{"rejected", func(s Spool, f File) error { return s.Reject(f, Reason{RejectedAt: time.Now(), Reason: "test"}) }, Rejected},
		} {
			t.Run(replace.name+"/"+move.name, func(t *testing.T) {
				s := New(t.TempDir())
				require.NoError(t, s.Prepare())
				f := queued(t, s, "reuse.tar", "A")
				replace.do(t, s, "reuse.tar", "B, longer")

				err := move.do(s, f)
				require.ErrorIs(t, err, ErrReplaced)
				assert.Equal(t, "B, longer", content(t, f.Path), "the new file stays in outbox/")
				entries, err := os.ReadDir(s.Path(move.dst))
				require.NoError(t, err)
				assert.Empty(t, entries, "nothing in %s/, not even a reason", move.dst)
			})
		}
	}
}

// A file that move took by mistake (a producer swapped the name between the check and
// the rename) goes back to outbox/, never over a file that took the name meanwhile.
func TestGiveBackNeverReplacesAFile(t *testing.T) {
	s := New(t.TempDir())
	require.NoError(t, s.Prepare())
	taken := filepath.Join(s.Path(Sent), "reuse.tar")

	require.NoError(t, os.WriteFile(taken, []byte("B"), 0o600))
	require.NoError(t, s.giveBack(taken, "reuse.tar"))
	assert.Equal(t, "B", content(t, filepath.Join(s.Path(Outbox), "reuse.tar")))

	require.NoError(t, os.WriteFile(taken, []byte("C"), 0o600))
	require.NoError(t, s.giveBack(taken, "reuse.tar"))
	assert.Equal(t, "B", content(t, filepath.Join(s.Path(Outbox), "reuse.tar")))
	assert.Equal(t, "C", content(t, filepath.Join(s.Path(Outbox), "reuse.tar.1")))
	_, err := os.Lstat(taken)
	assert.ErrorIs(t, err, os.ErrNotExist, "nothing left in sent/")
}

// Only regular files are episodes; everything else in outbox/ is reported (in name
// order), except in-progress names, which are left alone whatever they are.
func TestStraysAreWhatShipNeverSends(t *testing.T) {
	s := New(t.TempDir())
	require.NoError(t, s.Prepare())
	outbox := s.Path(Outbox)
	queued(t, s, "real.tar", "x")
	require.NoError(t, os.Symlink("/etc/hostname", filepath.Join(outbox, "link.tar")))
	require.NoError(t, os.Symlink("nowhere", filepath.Join(outbox, "dangling.tar")))
	require.NoError(t, os.Mkdir(filepath.Join(outbox, "folder"), 0o700))
	require.NoError(t, syscall.Mkfifo(filepath.Join(outbox, "pipe.tar"), 0o600))
	require.NoError(t, os.Mkdir(filepath.Join(outbox, ".staging"), 0o700))
	require.NoError(t, os.Symlink("/etc/hostname", filepath.Join(outbox, "link.tar.part")))

	strays, err := s.Strays()
	require.NoError(t, err)
	assert.Equal(t, []Stray{
		{Name: "dangling.tar", Kind: "symlink"},
		{Name: "folder", Kind: "folder"},
		{Name: "link.tar", Kind: "symlink"},
		{Name: "pipe.tar", Kind: "named pipe"},
	}, strays)
}

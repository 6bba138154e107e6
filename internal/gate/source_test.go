package gate

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
}

func TestFileSource(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "allowlist")
	writeFile(t, path, "# released builds\n\n"+full+"\n  ABCDEF0  # hotfix, uppercase\r\n\t\n1234567#no space\n")

	src := NewFileSource(path)
	assert.Equal(t, "file:"+path, src.Name())
	list, err := src.Load(t.Context())
	require.NoError(t, err)
	assert.Equal(t, []string{full, "abcdef0", "1234567"}, list)
}

func TestFileSourceErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, tc := range []struct {
		name, content, want string
	}{
		{"six digits", "# ok\n" + full + "\n\nabcdef\n", ":4: "},
		{"not hex", full + "\nrelease-1.2 # why\n", `:2: not a commit (7 to 40 hex digits): "release-1.2"`},
		{"two on a line", "abcdef0 1234567\n", `:1: not a commit (7 to 40 hex digits): "abcdef0 1234567"`},
		{"too long", full + "0\n", ":1: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
			writeFile(t, path, tc.content)
			_, err := NewFileSource(path).Load(t.Context())
			require.ErrorContains(t, err, path+tc.want)
		})
	}

	missing := filepath.Join(dir, "missing")
	_, err := NewFileSource(missing).Load(t.Context())
	require.ErrorIs(t, err, os.ErrNotExist)
	assert.ErrorContains(t, err, missing)
}

// gitRepo creates a real repository with n empty commits on main.
func gitRepo(t *testing.T, n int) string {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	dir := t.TempDir()
	git(t, dir, "init", "--quiet", "--initial-branch=main")
	for range n {
		gitCommit(t, dir)
	}
	return dir
}

func gitCommit(t *testing.T, dir string) {
	t.Helper()
	git(t, dir, "commit", "--quiet", "--allow-empty", "-m", "x")
}

// git runs git in dir without the user's configuration and returns its trimmed output.
func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	cmd.Env = append(os.Environ(),
		"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=test", "GIT_AUTHOR_EMAIL=test@example.org",
		"GIT_COMMITTER_NAME=test", "GIT_COMMITTER_EMAIL=test@example.org")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "git %v: %s", args, out)
	return strings.TrimSpace(string(out))
}

func revs(t *testing.T, dir string, revs ...string) []string {
	t.Helper()
	return strings.Fields(git(t, dir, append([]string{"rev-parse"}, revs...)...))
}

func TestGitSource(t *testing.T) {
	t.Parallel()
	dir := gitRepo(t, 4)
	git(t, dir, "branch", "old", "HEAD~2")

	for _, tc := range []struct {
		name  string
		ref   string
		depth int
		want  []string
	}{
		{"depth honoured", "main", 2, revs(t, dir, "main", "main~1")},
		{"ref honoured", "old", 10, revs(t, dir, "old", "old~1")},
		{"empty ref means HEAD", "", 1, revs(t, dir, "HEAD")},
		{"default depth covers a short history", "main", 0, revs(t, dir, "main", "main~1", "main~2", "main~3")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			list, err := NewGitSource(dir, tc.ref, tc.depth).Load(t.Context())
			require.NoError(t, err)
			assert.Equal(t, tc.want, list)
		})
	}
}

func TestGitSourceErrors(t *testing.T) {
	t.Parallel()
	dir := gitRepo(t, 1)
	assert.Equal(t, "git:"+dir+"@main", NewGitSource(dir, "main", 5).Name())

	_, err := NewGitSource(dir, "no-such-branch", 5).Load(t.Context())
	require.ErrorContains(t, err, "no-such-branch")
	assert.ErrorContains(t, err, "fatal:", "git's own message is passed on")
	assert.NotContains(t, err.Error(), "\n\n")

	_, err = NewGitSource(filepath.Join(dir, "missing"), "main", 5).Load(t.Context())
	require.ErrorContains(t, err, "fatal:")

	_, err = NewGitSource(dir, "--all", 5).Load(t.Context())
	require.ErrorContains(t, err, "must not start with '-'")
}

func TestGitSourceSeesNewCommitsOnRefresh(t *testing.T) {
	t.Parallel()
	dir := gitRepo(t, 3)
	g := newTestGate(t, NewGitSource(dir, "main", 2))
	require.NoError(t, g.Refresh(t.Context()))
	oldest := revs(t, dir, "main~1")[0]
	assert.True(t, g.Check(oldest).Allowed)

	gitCommit(t, dir)
	newest := revs(t, dir, "main")[0]
	assert.False(t, g.Check(newest).Allowed, "not before the refresh")
	require.NoError(t, g.Refresh(t.Context()))
	assert.True(t, g.Check(newest).Allowed)
	assert.True(t, g.Check(newest[:7]).Allowed)
	assert.False(t, g.Check(oldest).Allowed, "it fell out of the depth window")
}

func TestBrokenSourceKeepsLastGoodList(t *testing.T) {
	t.Parallel()
	repo := gitRepo(t, 2)
	path := filepath.Join(t.TempDir(), "allowlist")
	writeFile(t, path, other+"\n")
	g := newTestGate(t, NewFileSource(path), NewGitSource(repo, "main", 10))
	require.NoError(t, g.Refresh(t.Context()))
	head := revs(t, repo, "main")[0]
	require.Equal(t, 3, g.Stats().Entries)

	require.NoError(t, os.Remove(path))
	require.ErrorIs(t, g.Refresh(t.Context()), os.ErrNotExist)
	assert.True(t, g.Check(other).Allowed, "the deleted file's entries stay")
	assert.True(t, g.Check(head).Allowed, "the healthy source's entries stay")
	st := g.Stats()
	assert.Equal(t, uint64(1), st.RefreshErrors)
	assert.Equal(t, uint64(1), st.Sources[0].Errors)
	assert.Contains(t, st.Sources[0].LastError, path)
	assert.Equal(t, uint64(0), st.Sources[1].Errors)

	require.NoError(t, os.RemoveAll(repo))
	err := g.Refresh(t.Context())
	require.ErrorContains(t, err, "file:"+path)
	require.ErrorContains(t, err, "git:"+repo+"@main")
	assert.True(t, g.Check(other).Allowed)
	assert.True(t, g.Check(head).Allowed)
	st = g.Stats()
	assert.Equal(t, uint64(3), st.RefreshErrors)
	assert.Equal(t, 3, st.Entries)
	assert.Equal(t, 1, st.Sources[0].Entries)
	assert.Equal(t, 2, st.Sources[1].Entries)
}

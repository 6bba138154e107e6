package receiver_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/config"
	"github.com/cis490/cis490/internal/gate"
	"github.com/cis490/cis490/internal/index"
	"github.com/cis490/cis490/internal/protocol"
	"github.com/cis490/cis490/internal/receiver"
	"github.com/cis490/cis490/internal/release"
	"github.com/cis490/cis490/internal/release/releasetest"
	"github.com/cis490/cis490/internal/store"
	"github.com/cis490/cis490/internal/tokens"
)

// releaseServer is a real receiver on loopback with serve.update.public_keys, a
// tokens file (an admin and a host token) and a gate of an allow-list file and,
// optionally, a git repository.
type releaseServer struct {
	t                *testing.T
	url, data, allow string
	admin, host      string
	key              releasetest.Key
	gate             *gate.Gate
}

type releaseSetup struct {
	noKeys bool
	allow  []string // nil: no allow-list file
	gitDir string
}

func newReleaseServer(t *testing.T, s releaseSetup) *releaseServer {
	t.Helper()
	rs := &releaseServer{t: t, data: filepath.Join(t.TempDir(), "data"), key: releasetest.NewKey(t)}
	log := zerolog.New(zerolog.NewTestWriter(t))
	cfg := config.Default().Serve
	cfg.DataDir = rs.data
	if !s.noKeys {
		cfg.Update.PublicKeys = releasetest.NewKey(t).Public + ", " + rs.key.Public // any of them
	}
	var sources []gate.Source
	if s.allow != nil {
		rs.allow = filepath.Join(t.TempDir(), "allowlist")
		require.NoError(t, os.WriteFile(rs.allow, []byte(strings.Join(s.allow, "\n")+"\n"), 0o600))
		sources = append(sources, gate.NewFileSource(rs.allow))
		cfg.Gate.AllowlistFile = rs.allow
	}
	if s.gitDir != "" {
		cfg.Gate.GitDir, cfg.Gate.GitRef = s.gitDir, "HEAD"
		sources = append(sources, gate.NewGitSource(s.gitDir, "HEAD", 100))
	}
	g := gate.New(sources, gate.Options{Logger: log})
	require.NoError(t, g.Refresh(t.Context()))
	rs.gate = g
	st, err := store.Open(rs.data, store.Options{Logger: log})
	require.NoError(t, err)
	ix, err := index.OpenWriter(filepath.Join(rs.data, "index"))
	require.NoError(t, err)
	t.Cleanup(func() { ix.Close() })
	tokFile := filepath.Join(t.TempDir(), "tokens.toml")
	rs.admin, err = tokens.Append(tokFile, tokens.Identity{Admin: "maintainer"}, time.Now())
	require.NoError(t, err)
	rs.host, err = tokens.Append(tokFile, tokens.Identity{Host: "lab-07"}, time.Now())
	require.NoError(t, err)
	toks, err := tokens.OpenStore(tokFile, log)
	require.NoError(t, err)
	srv := receiver.New(receiver.Options{Config: cfg, Store: st, Index: ix, Gate: g, Tokens: toks, Logger: log, StallTimeout: 5 * time.Second})
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	rs.url = ts.URL
	return rs
}

func (rs *releaseServer) do(method, path, token string, body io.Reader, header ...string) (*http.Response, []byte) {
	rs.t.Helper()
	req, err := http.NewRequest(method, rs.url+path, body)
	require.NoError(rs.t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(rs.t, err)
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	require.NoError(rs.t, err)
	return res, data
}

// dist is a signed release of commit with one binary for amd64 and one for arm v7.
func (rs *releaseServer) dist(commit string, seq int64, key releasetest.Key) (string, release.Manifest) {
	rs.t.Helper()
	dir := releasetest.Dist(rs.t, commit, "1.0."+commit[:3],
		releasetest.Bin{GOARCH: "amd64", Data: []byte("amd64 binary of " + commit + strings.Repeat(".", 5000))},
		releasetest.Bin{GOARCH: "arm", GOARM: "7", Data: []byte("armv7 binary of " + commit)})
	return dir, key.Sign(rs.t, dir, seq)
}

func (rs *releaseServer) publish(commit string, seq int64) (*http.Response, []byte) {
	rs.t.Helper()
	dir, _ := rs.dist(commit, seq, rs.key)
	return rs.do(http.MethodPut, release.ReleasePath(commit), rs.admin, bytes.NewReader(releasetest.Upload(rs.t, dir)))
}

func (rs *releaseServer) target(commit string) (int, release.Published) {
	rs.t.Helper()
	res, data := rs.do(http.MethodGet, release.TargetPath, rs.host, nil, protocol.HeaderCommit, commit)
	var p release.Published
	if res.StatusCode == http.StatusOK {
		require.NoError(rs.t, json.Unmarshal(data, &p))
	}
	return res.StatusCode, p
}

func TestPublishARelease(t *testing.T) {
	a := releasetest.Commit("a")
	rs := newReleaseServer(t, releaseSetup{})
	res, body := rs.publish(a, 1)
	require.Equal(t, http.StatusCreated, res.StatusCode, string(body))
	res, body = rs.publish(a, 1)
	assert.Equal(t, http.StatusOK, res.StatusCode, "the same release again: already published: %s", body)
	res, body = rs.publish(a, 2)
	assert.Equal(t, http.StatusConflict, res.StatusCode, "another release of the same commit")
	assert.Contains(t, string(body), "release_conflict")

	dir, m := rs.dist(releasetest.Commit("b"), 3, rs.key)
	upload := releasetest.Upload(t, dir)
	res, _ = rs.do(http.MethodPut, release.ReleasePath(m.Commit), rs.host, bytes.NewReader(upload))
	assert.Equal(t, http.StatusForbidden, res.StatusCode, "a host token does not publish")
	assert.NoDirExists(t, filepath.Join(rs.data, "releases", m.Commit))

	res, _ = rs.do(http.MethodPut, "/v1/releases/target", rs.admin, bytes.NewReader(upload))
	assert.Equal(t, http.StatusBadRequest, res.StatusCode)
	res, _ = rs.do(http.MethodPost, release.ReleasePath(m.Commit), rs.admin, nil)
	assert.Equal(t, http.StatusMethodNotAllowed, res.StatusCode)
	assert.Equal(t, "GET, PUT", res.Header.Get("Allow"))

	res, body = rs.do(http.MethodGet, "/v1/releases", rs.admin, nil)
	require.Equal(t, http.StatusOK, res.StatusCode)
	var rows []release.Listed
	require.NoError(t, json.Unmarshal(body, &rows))
	require.Len(t, rows, 1)
	assert.True(t, rows[0].Target)
	assert.True(t, rows[0].Allowed)
	res, _ = rs.do(http.MethodGet, "/v1/releases", rs.host, nil)
	assert.Equal(t, http.StatusForbidden, res.StatusCode)
}

func TestPublishRefusals(t *testing.T) {
	allowed := releasetest.Commit("a")
	t.Run("signed by an unknown key", func(t *testing.T) {
		rs := newReleaseServer(t, releaseSetup{})
		dir, m := rs.dist(allowed, 1, releasetest.NewKey(t))
		res, body := rs.do(http.MethodPut, release.ReleasePath(m.Commit), rs.admin, bytes.NewReader(releasetest.Upload(t, dir)))
		assert.Equal(t, http.StatusBadRequest, res.StatusCode)
		assert.Contains(t, string(body), "signature does not verify")
		assert.NoDirExists(t, filepath.Join(rs.data, "releases", m.Commit))
	})
	t.Run("no keys configured", func(t *testing.T) {
		rs := newReleaseServer(t, releaseSetup{noKeys: true})
		res, body := rs.publish(allowed, 1)
		assert.Equal(t, http.StatusBadRequest, res.StatusCode)
		assert.Contains(t, string(body), "serve.update.public_keys")
	})
	t.Run("a commit the gate does not allow", func(t *testing.T) {
		rs := newReleaseServer(t, releaseSetup{allow: []string{allowed}})
		refused := releasetest.Commit("b")
		res, body := rs.publish(refused, 1)
		assert.Equal(t, http.StatusConflict, res.StatusCode)
		var e protocol.Error
		require.NoError(t, json.Unmarshal(body, &e))
		assert.Equal(t, protocol.CodeCommitNotAllowed, e.Code)
		assert.Equal(t, refused, e.Commit)
		assert.NoDirExists(t, filepath.Join(rs.data, "releases", refused))
	})
	t.Run("a tampered binary", func(t *testing.T) {
		rs := newReleaseServer(t, releaseSetup{})
		dir, m := rs.dist(allowed, 1, rs.key)
		up := releasetest.Upload(t, dir)
		i := bytes.Index(up, []byte("amd64 binary of"))
		up[i] = 'A'
		res, _ := rs.do(http.MethodPut, release.ReleasePath(m.Commit), rs.admin, bytes.NewReader(up))
		assert.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
		assert.NoDirExists(t, filepath.Join(rs.data, "releases", m.Commit))
		entries, _ := os.ReadDir(filepath.Join(rs.data, "tmp"))
		assert.Empty(t, entries)
	})
}

func TestTargetIsTheNewestAllowedRelease(t *testing.T) {
	a, b, c := releasetest.Commit("a"), releasetest.Commit("b"), releasetest.Commit("c")
	rs := newReleaseServer(t, releaseSetup{allow: []string{a, b}})
	status, _ := rs.target(a)
	assert.Equal(t, http.StatusNotFound, status, "nothing published")
	for i, commit := range []string{a, b} {
		res, body := rs.publish(commit, int64(10+i))
		require.Equal(t, http.StatusCreated, res.StatusCode, string(body))
	}
	status, p := rs.target(c) // c is not allowed: never gated, the host gets its way out
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, b, p.Commit, "the highest seq")
	m, err := release.Verify(p.Raw, []byte(p.Signature), mustKeys(t, rs.key.Public))
	require.NoError(t, err, "the answer carries the manifest as signed")
	assert.Equal(t, int64(11), m.Seq)

	// The gate drops b: the target falls back to a.
	require.NoError(t, os.WriteFile(rs.allow, []byte(a+"\n"), 0o600))
	require.NoError(t, rs.gate.Refresh(t.Context()))
	status, p = rs.target(a)
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, a, p.Commit)
}

func mustKeys(t *testing.T, list string) release.Keys {
	keys, err := release.ParseKeyList(list)
	require.NoError(t, err)
	return keys
}

func TestTargetFollowsTheGitRef(t *testing.T) {
	dir := t.TempDir()
	git := func(args ...string) string {
		cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, string(out))
		return strings.TrimSpace(string(out))
	}
	git("init", "-q")
	var commits []string
	for i := range 3 {
		git("commit", "-q", "--allow-empty", "-m", "c"+string(rune('0'+i)))
		commits = append(commits, git("rev-parse", "HEAD"))
	}
	rs := newReleaseServer(t, releaseSetup{gitDir: dir})
	// The newest commit signed with a lower seq than an older one: the ref's order wins.
	for seq, commit := range map[int64]string{5: commits[2], 9: commits[0], 7: commits[1]} {
		res, body := rs.publish(commit, seq)
		require.Equal(t, http.StatusCreated, res.StatusCode, string(body))
	}
	status, p := rs.target("")
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, commits[2], p.Commit)
}

func TestReleaseFilesServeRanges(t *testing.T) {
	a := releasetest.Commit("a")
	rs := newReleaseServer(t, releaseSetup{})
	res, body := rs.publish(a, 1)
	require.Equal(t, http.StatusCreated, res.StatusCode, string(body))
	_, p := rs.target(a)
	tg, err := p.Pick("linux", "amd64", "")
	require.NoError(t, err)

	res, whole := rs.do(http.MethodGet, release.FileURLPath(a, tg.File), rs.host, nil)
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, tg.Size, int64(len(whole)))
	res, part := rs.do(http.MethodGet, release.FileURLPath(a, tg.File), rs.host, nil, "Range", "bytes=100-")
	require.Equal(t, http.StatusPartialContent, res.StatusCode)
	assert.Equal(t, whole[100:], part)
	// The index counts what was sent: a resumed download is not a second whole one.
	var sent []int64
	require.Eventually(t, func() bool {
		sent = sent[:0]
		now := time.Now()
		_, err := index.Read(filepath.Join(rs.data, "index"), now.Add(-time.Hour), now.Add(time.Hour), func(e index.Entry) error {
			if e.Method == http.MethodGet && strings.HasPrefix(e.Route, "releases") && e.Status/100 == 2 {
				sent = append(sent, e.Bytes)
			}
			return nil
		})
		return err == nil && len(sent) >= 3
	}, 5*time.Second, 20*time.Millisecond)
	assert.Contains(t, sent, tg.Size-100, "the 206 is indexed with the bytes it sent: %v", sent)

	for _, path := range []string{release.FileURLPath(a, "nope"), release.FileURLPath(a, "..%2f..%2ftokens.toml"), release.FileURLPath(releasetest.Commit("b"), tg.File)} {
		res, _ := rs.do(http.MethodGet, path, rs.host, nil)
		assert.Equal(t, http.StatusNotFound, res.StatusCode, path)
	}
	res, _ = rs.do(http.MethodGet, release.FileURLPath(a, tg.File), "not-a-token", nil)
	assert.Equal(t, http.StatusUnauthorized, res.StatusCode)
}

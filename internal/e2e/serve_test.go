package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/protocol"
)

var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cis490-e2e-")
	if err != nil {
		panic(err)
	}
	bin, err = Build(dir, "")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func put(t *testing.T, url, host, token, name string, data []byte) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, url+"/v1/episodes", bytes.NewReader(data))
	require.NoError(t, err)
	req.Header.Set(protocol.HeaderHost, host)
	req.Header.Set(protocol.HeaderEpisode, name)
	req.Header.Set(protocol.HeaderSHA256, sum(data))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(res.Body).Decode(&body)
	return res.StatusCode, body
}

func TestServeWithConfigFileAndTokens(t *testing.T) {
	t.Parallel()
	env := Env(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	allow := filepath.Join(dir, "allowlist")
	require.NoError(t, os.WriteFile(allow, []byte("# release builds\n1234567890abcdef1234567890abcdef12345678\n"), 0o600))
	cfg := filepath.Join(dir, "lab-host.toml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`
[serve]
listen = "127.0.0.1:0"
data_dir = %q
tokens_file = %q
[serve.gate]
allowlist_file = %q
`, data, filepath.Join(dir, "tokens.toml"), allow)), 0o600))

	minted := Run(t, bin, env, nil, "--config", cfg, "token", "new", "--host", "lab-07")
	require.Equal(t, 0, minted.Code, minted.Stderr)
	token := strings.TrimSpace(minted.Stdout)
	require.True(t, strings.HasPrefix(token, "c490_"), "the token alone on stdout: %q", minted.Stdout)
	assert.Contains(t, minted.Stderr, "lab-07")
	tokensFile, err := os.ReadFile(filepath.Join(dir, "tokens.toml"))
	require.NoError(t, err)
	assert.NotContains(t, string(tokensFile), token, "only the hash is stored")

	srv := StartServe(t, bin, env, "http", "--config", cfg)

	status, _ := put(t, srv.URL, "lab-07", "", "ep.tar", []byte("no token"))
	assert.Equal(t, http.StatusUnauthorized, status)
	status, body := put(t, srv.URL, "lab-07", token, "ep.tar", []byte("episode one"))
	require.Equal(t, http.StatusCreated, status, body)
	status, body = put(t, srv.URL, "lab-07", token, "ep.tar", []byte("episode one"))
	assert.Equal(t, http.StatusOK, status, body)
	stored, err := os.ReadFile(filepath.Join(data, "episodes", "lab-07", sum([]byte("episode one"))))
	require.NoError(t, err)
	assert.Equal(t, "episode one", string(stored))

	// A stamped request from a commit not on the list.
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/heartbeat", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set(protocol.HeaderCommit, "deadbeef")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusUpgradeRequired, res.StatusCode)

	assert.Equal(t, 0, srv.Stop(t), srv.Logs())
	assert.True(t, srv.HasLog("stopped"))
	assert.False(t, srv.HasLog("OPEN MODE"))
	assert.NotContains(t, srv.Logs(), token, "no token in any log line")
	days, err := os.ReadDir(filepath.Join(data, "index"))
	require.NoError(t, err)
	require.Len(t, days, 1)
	lines, err := os.ReadFile(filepath.Join(data, "index", days[0].Name()))
	require.NoError(t, err)
	assert.Equal(t, 4, strings.Count(string(lines), "\n"), "one index line per /v1 request:\n%s", lines)
}

func TestServeWithNoConfigurationIsOpenModeOnLoopback(t *testing.T) {
	t.Parallel()
	env := Env(t)
	// The quick start is plain `cis490 serve`; only the port is moved so parallel test
	// runs cannot collide on 8490.
	srv := StartServe(t, bin, env, "http", "--listen", "127.0.0.1:0")
	require.Eventually(t, func() bool { return srv.HasLog("OPEN MODE") }, 5*time.Second, 10*time.Millisecond,
		"open mode is announced loudly")
	status, body := put(t, srv.URL, "newcomer", "", "first.tar", []byte("hello"))
	require.Equal(t, http.StatusCreated, status, body)
	home := strings.TrimPrefix(env[1], "HOME=")
	_, err := os.Stat(filepath.Join(home, "state", "episodes", "newcomer", sum([]byte("hello"))))
	assert.NoError(t, err, "without configuration, data goes to the default state folder")
	assert.Equal(t, 0, srv.Stop(t))
}

func TestServeRefusesToStart(t *testing.T) {
	t.Parallel()
	env := Env(t)
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"open mode beyond loopback", []string{"serve", "--listen", "0.0.0.0:0"}, 2, "without serve.tokens_file"},
		{"missing config file", []string{"serve", "--config", "/nonexistent/lab-host.toml"}, 2, "/nonexistent/lab-host.toml"},
		{"unknown flag", []string{"serve", "--lisen", "x"}, 2, "unknown flag"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Run(t, bin, env, nil, tc.args...)
			assert.Equal(t, tc.code, r.Code, r.Stderr)
			assert.Contains(t, r.Stderr, tc.want)
		})
	}
	t.Run("config typo", func(t *testing.T) {
		cfg := filepath.Join(t.TempDir(), "lab-host.toml")
		require.NoError(t, os.WriteFile(cfg, []byte("[serve]\nlisten = \"127.0.0.1:0\"\ndatadir = \"/x\"\n"), 0o600))
		r := Run(t, bin, env, nil, "serve", "--config", cfg)
		assert.Equal(t, 2, r.Code)
		assert.Contains(t, r.Stderr, "unknown key serve.datadir")
		assert.Contains(t, r.Stderr, cfg)
	})
	// A configuration that cannot work is exit 2, names the key, and leaves no data
	// folder behind.
	for _, tc := range []struct{ name, toml, want string }{
		{"allow-list file missing", "[serve.gate]\nallowlist_file = \"/nonexistent/allowed-commits\"\n", "serve.gate.allowlist_file"},
		{"gate repository missing", "[serve.gate]\ngit_dir = \"/nonexistent/repo.git\"\n", "serve.gate.git_dir"},
		{"TLS certificate missing", "[serve.tls]\ncert_file = \"/nonexistent/cert.pem\"\nkey_file = \"/nonexistent/key.pem\"\n", "serve.tls cert_file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg, data := filepath.Join(dir, "lab-host.toml"), filepath.Join(dir, "data")
			require.NoError(t, os.WriteFile(cfg, []byte("[serve]\nlisten = \"127.0.0.1:0\"\ndata_dir = \""+data+"\"\n"+tc.toml), 0o600))
			r := Run(t, bin, env, nil, "serve", "--config", cfg)
			assert.Equal(t, 2, r.Code, r.Stderr)
			assert.Contains(t, r.Stderr, tc.want)
			assert.NoDirExists(t, data)
		})
	}
	t.Run("data folder in use", func(t *testing.T) {
		data := t.TempDir()
		srv := StartServe(t, bin, env, "http", "--listen", "127.0.0.1:0", "--data-dir", data)
		r := Run(t, bin, env, nil, "serve", "--listen", "127.0.0.1:0", "--data-dir", data)
		assert.Equal(t, 1, r.Code)
		assert.Contains(t, r.Stderr, "in use by another cis490 serve")
		srv.Stop(t)
	})
}

// SIGTERM while an upload is half sent: the upload finishes and is stored, new
// connections are refused, and the process exits 0.
func TestGracefulShutdownFinishesInFlightUpload(t *testing.T) {
	t.Parallel()
	env := Env(t)
	data := t.TempDir()
	srv := StartServe(t, bin, env, "http", "--listen", "127.0.0.1:0", "--data-dir", data)
	body := bytes.Repeat([]byte("in flight "), 100000)
	conn, err := net.Dial("tcp", srv.Addr)
	require.NoError(t, err)
	defer conn.Close()
	_, err = fmt.Fprintf(conn, "PUT /v1/episodes HTTP/1.1\r\nHost: x\r\n%s: lab-07\r\n%s: slow.tar\r\n%s: %s\r\nContent-Length: %d\r\n\r\n",
		protocol.HeaderHost, protocol.HeaderEpisode, protocol.HeaderSHA256, sum(body), len(body))
	require.NoError(t, err)
	_, err = conn.Write(body[:len(body)/2])
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		entries, _ := os.ReadDir(filepath.Join(data, "tmp"))
		return len(entries) == 1
	}, 5*time.Second, 10*time.Millisecond, "the upload is in progress")

	srv.Signal()
	require.Eventually(t, func() bool { return srv.HasLog("shutting down") }, 5*time.Second, 10*time.Millisecond)
	_, err = conn.Write(body[len(body)/2:])
	require.NoError(t, err)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
	reply, err := io.ReadAll(conn)
	require.NoError(t, err)
	assert.Contains(t, string(reply), "201 Created")
	assert.Equal(t, 0, srv.Wait(t), srv.Logs())
	_, err = os.Stat(filepath.Join(data, "episodes", "lab-07", sum(body)))
	assert.NoError(t, err, "the in-flight upload was stored")
	_, err = net.DialTimeout("tcp", srv.Addr, time.Second)
	assert.Error(t, err, "no new connections after shutdown")
}

func TestVersion(t *testing.T) {
	t.Parallel()
	stamped, err := Build(t.TempDir(), "0123456789abcdef0123456789abcdef01234567")
	require.NoError(t, err)
	r := Run(t, stamped, Env(t), nil, "version", "--json")
	require.Equal(t, 0, r.Code, r.Stderr)
	var info map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.Stdout), &info))
	assert.Equal(t, "0123456789abcdef0123456789abcdef01234567", info["commit"])
	assert.Equal(t, "v0.0.0-e2e", info["version"])
	assert.NotEmpty(t, info["go_version"])
	r = Run(t, stamped, Env(t), nil, "version")
	assert.Contains(t, r.Stdout, "commit: 0123456789abcdef")
}

// serve and token new both have --tokens-file for serve.tokens_file; each must honour
// its own flag (a shared Viper key once followed whichever flag was bound last).
func TestTokensFileFlagOnBothCommands(t *testing.T) {
	t.Parallel()
	env := Env(t)
	tokens := filepath.Join(t.TempDir(), "tokens.toml")
	minted := Run(t, bin, env, nil, "token", "new", "--host", "lab-07", "--tokens-file", tokens)
	require.Equal(t, 0, minted.Code, minted.Stderr)
	srv := StartServe(t, bin, env, "http", "--listen", "127.0.0.1:0", "--tokens-file", tokens)
	status, _ := put(t, srv.URL, "lab-07", "", "ep.tar", []byte("x"))
	assert.Equal(t, http.StatusUnauthorized, status, "tokens are required: not open mode")
	status, _ = put(t, srv.URL, "lab-07", strings.TrimSpace(minted.Stdout), "ep.tar", []byte("x"))
	assert.Equal(t, http.StatusCreated, status)
	srv.Stop(t)
	assert.False(t, srv.HasLog("OPEN MODE"))
}

// A receiver that starts but cannot accept anything yet says so at start, rather than
// leaving the maintainer to find the 401s or 507s in the index.
func TestServeWarnsWhatWillBeRefused(t *testing.T) {
	t.Parallel()
	env := Env(t)
	dir := t.TempDir()
	tokensFile := filepath.Join(dir, "tokens.toml")
	require.NoError(t, os.WriteFile(tokensFile, nil, 0o600))
	cfg := filepath.Join(dir, "lab-host.toml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`
[serve]
listen = "127.0.0.1:0"
data_dir = %q
tokens_file = %q
min_free_bytes = "1000TiB"
`, filepath.Join(dir, "data"), tokensFile)), 0o600))
	srv := StartServe(t, bin, env, "http", "--config", cfg)
	assert.Eventually(t, func() bool {
		return strings.Contains(srv.Logs(), "the tokens file has no tokens yet") &&
			strings.Contains(srv.Logs(), "uploads will be refused 507")
	}, 5*time.Second, 20*time.Millisecond, "logs: %s", srv.Logs())
	assert.Equal(t, 0, srv.Stop(t))
}

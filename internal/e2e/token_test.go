package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/tokens"
)

// whoami is GET /v1/whoami with token: its status, and the host it names on a 200.
func whoami(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url+"/v1/whoami", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	var who struct {
		Host string `json:"host"`
	}
	_ = json.Unmarshal(body, &who)
	return res.StatusCode, who.Host
}

// A token's whole life against a running receiver: minted, listed, rotated, revoked,
// each change taking effect without a restart.
func TestTokenLifecycleAgainstARunningReceiver(t *testing.T) {
	t.Parallel()
	env := Env(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "tokens.toml")
	cfg := filepath.Join(dir, "lab-host.toml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`
[serve]
listen = "127.0.0.1:0"
data_dir = %q
tokens_file = %q
`, filepath.Join(dir, "data"), file)), 0o600))
	cis490 := func(args ...string) Result {
		t.Helper()
		return Run(t, bin, env, nil, append([]string{"--config", cfg}, args...)...)
	}

	minted := cis490("token", "new", "--host", "lab-07")
	require.Equal(t, 0, minted.Code, minted.Stderr)
	first := strings.TrimSpace(minted.Stdout)
	require.True(t, strings.HasPrefix(first, "c490_"), "the token alone on stdout: %q", minted.Stdout)
	firstID := tokens.Hash(first)[:8]

	listed := cis490("token", "list", "--json")
	require.Equal(t, 0, listed.Code, listed.Stderr)
	assert.NotContains(t, listed.Stdout, first)
	assert.NotContains(t, listed.Stdout, tokens.Hash(first))
	var list struct {
		Tokens []struct {
			ID, Host, Created string
			Expired           bool
		}
	}
	require.NoError(t, json.Unmarshal([]byte(listed.Stdout), &list), listed.Stdout)
	require.Len(t, list.Tokens, 1)
	assert.Equal(t, firstID, list.Tokens[0].ID)
	assert.Equal(t, "lab-07", list.Tokens[0].Host)
	assert.False(t, list.Tokens[0].Expired)
	created, err := time.Parse(time.RFC3339, list.Tokens[0].Created)
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now(), created, time.Minute)

	srv := StartServe(t, bin, env, "http", "--config", cfg)
	status, host := whoami(t, srv.URL, first)
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, "lab-07", host)

	// The receiver checks the file at most once a second: each change shows within
	// about that (5 s allows for a loaded machine).
	rotated := cis490("token", "rotate", "--host", "lab-07", "--grace", "0")
	require.Equal(t, 0, rotated.Code, rotated.Stderr)
	second := strings.TrimSpace(rotated.Stdout)
	require.True(t, strings.HasPrefix(second, "c490_"), rotated.Stdout)
	assert.Contains(t, rotated.Stderr, firstID)
	rotatedAt := time.Now()
	require.Eventually(t, func() bool { s, _ := whoami(t, srv.URL, first); return s == http.StatusUnauthorized },
		5*time.Second, 20*time.Millisecond, "the old token is refused after rotate --grace 0")
	t.Logf("old token refused %s after the rotation", time.Since(rotatedAt).Round(time.Millisecond))
	status, host = whoami(t, srv.URL, second)
	assert.Equal(t, http.StatusOK, status, "the new token works")
	assert.Equal(t, "lab-07", host)

	revoked := cis490("token", "revoke", "--host", "lab-07")
	require.Equal(t, 0, revoked.Code, revoked.Stderr)
	assert.Contains(t, revoked.Stderr, tokens.Hash(second)[:8])
	assert.Empty(t, revoked.Stdout)
	require.Eventually(t, func() bool { s, _ := whoami(t, srv.URL, second); return s == http.StatusUnauthorized },
		5*time.Second, 20*time.Millisecond, "a revoked token is refused")

	again := cis490("token", "revoke", "--host", "lab-07")
	assert.Equal(t, 2, again.Code, "revoking nothing is a usage error")
	assert.Contains(t, again.Stderr, "no token of host lab-07")

	assert.Equal(t, 0, srv.Stop(t), srv.Logs())
	assert.True(t, srv.HasLog("tokens file reloaded"))
	for _, tok := range []string{first, second} {
		assert.NotContains(t, srv.Logs(), tok, "no token in any log line")
	}
}

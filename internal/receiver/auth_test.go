package receiver_test

import (
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

func TestHostTokenActsAsItsOwnHost(t *testing.T) {
	t.Parallel()
	f := newFleet(t, setup{})
	for _, tc := range []struct {
		name, host string
	}{
		{"without X-Cis490-Host", ""},
		{"naming itself", "lab-a"},
		{"naming itself in capitals", "LAB-A"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			data := []byte("episode " + tc.name)
			r := f.upload(req{token: f.labA, host: tc.host}, "ep.tar", data)
			require.Equal(t, http.StatusCreated, r.status, string(r.body))
			assert.Equal(t, "lab-a", r.json["host"])
			assert.FileExists(t, filepath.Join(f.data, "episodes", "lab-a", sum(data)))

			r = f.do(req{method: http.MethodPost, path: "/v1/heartbeat", token: f.labA, host: tc.host})
			assert.Equal(t, http.StatusNoContent, r.status, string(r.body))
			r = f.do(req{method: http.MethodPut, path: "/v1/host-health/lab-a", token: f.labA, host: tc.host, body: jsonBody(`{"status":"ok"}`)})
			assert.Equal(t, http.StatusNoContent, r.status, string(r.body))
			r = f.do(req{method: http.MethodGet, path: "/v1/host-health/lab-a", token: f.labA, host: tc.host})
			assert.Equal(t, http.StatusOK, r.status, string(r.body))
			r = f.do(req{method: http.MethodGet, path: "/v1/whoami", token: f.labA, host: tc.host})
			require.Equal(t, http.StatusOK, r.status, string(r.body))
			assert.Equal(t, "lab-a", r.json["host"])
			assert.Equal(t, "host", r.json["role"])
		})
	}
}

func TestAdminTokenReadsEverything(t *testing.T) {
	t.Parallel()
	f := newFleet(t, setup{})
	for host, tok := range map[string]string{"lab-a": f.labA, "lab-b": f.labB} {
		r := f.do(req{method: http.MethodPut, path: "/v1/host-health/" + host, token: tok, body: jsonBody(`{"status":"ok","host":"` + host + `"}`)})
		require.Equal(t, http.StatusNoContent, r.status, string(r.body))
	}
	r := f.do(req{method: http.MethodGet, path: "/v1/host-health", token: f.admin})
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	assert.Len(t, r.json, 2)
	for _, host := range []string{"lab-a", "lab-b"} {
		r := f.do(req{method: http.MethodGet, path: "/v1/host-health/" + host, token: f.admin})
		require.Equal(t, http.StatusOK, r.status, string(r.body))
		assert.Equal(t, host, r.json["host"])
	}
	r = f.do(req{method: http.MethodPut, path: "/v1/host-health/lab-c", token: f.admin, body: jsonBody(`{"status":"ok"}`)})
	assert.Equal(t, http.StatusNoContent, r.status, "the admin may store a report for any host: %s", r.body)
	r = f.do(req{method: http.MethodGet, path: "/v1/whoami", token: f.admin})
	require.Equal(t, http.StatusOK, r.status)
	assert.Equal(t, "admin", r.json["role"])
}

func TestTokensFileHoldsOnlyHashes(t *testing.T) {
	t.Parallel()
	f := newFleet(t, setup{})
	raw, err := os.ReadFile(f.tokenFile)
	require.NoError(t, err)
	for _, tok := range []string{f.labA, f.labB, f.admin} {
		assert.NotContains(t, string(raw), tok)
		assert.Contains(t, string(raw), tokens.Hash(tok))
	}
	fi, err := os.Stat(f.tokenFile)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
}

func TestNoTokenInLogsOrFiles(t *testing.T) {
	t.Parallel()
	f := newFleet(t, setup{allow: allowList})
	unknown, err := tokens.Generate()
	require.NoError(t, err)
	data := []byte("episode")
	base := len(f.indexLines())
	for _, r := range []req{
		{method: http.MethodPut, path: "/v1/episodes", token: f.labA, commit: allowedCommit},                        // 201
		{method: http.MethodPut, path: "/v1/episodes", token: f.labA, commit: refusedCommit},                        // 426
		{method: http.MethodPut, path: "/v1/episodes", token: f.labA, host: "lab-b"},                                // 403
		{method: http.MethodPut, path: "/v1/episodes", token: f.admin, host: "lab-a"},                               // 403
		{method: http.MethodPut, path: "/v1/episodes", token: unknown, host: "lab-a"},                               // 401
		{method: http.MethodPut, path: "/v1/host-health/lab-b", token: f.labA, body: jsonBody(`{}`)},                // 403
		{method: http.MethodPut, path: "/v1/host-health/lab-a", token: f.labA, body: jsonBody(`[]`)},                // 400
		{method: http.MethodGet, path: "/v1/host-health", token: f.labB},                                            // 403
		{method: http.MethodGet, path: "/v1/host-health", token: f.admin},                                           // 200
		{method: http.MethodGet, path: "/v1/whoami", header: map[string]string{"Authorization": "Bearer" + f.labA}}, // 401, malformed
		{method: http.MethodGet, path: "/v1/whoami", header: map[string]string{"Authorization": f.labB}},            // 401, no scheme
		{method: http.MethodDelete, path: "/v1/whoami", token: f.labA},                                              // 405
		{method: http.MethodGet, path: "/v1/nope", token: f.admin},                                                  // 404
	} {
		if r.path == "/v1/episodes" {
			r.body = strings.NewReader(string(data))
			r.header = map[string]string{"X-Cis490-Episode": "ep.tar", "X-Cis490-Sha256": sum(data)}
		}
		f.do(r)
	}
	waitIndexLen(t, f.harness, base+13)

	logs := f.logs.String()
	require.Contains(t, logs, `"message":"request"`, "the access log is in h.logs: the check below means something")
	require.Contains(t, logs, `"status":401`)
	var disk strings.Builder
	for _, name := range files(t, f.data) {
		raw, err := os.ReadFile(filepath.Join(f.data, name))
		require.NoError(t, err)
		disk.Write(raw)
	}
	for name, tok := range map[string]string{"lab-a": f.labA, "lab-b": f.labB, "admin": f.admin, "unknown": unknown} {
		assert.NotContains(t, logs, tok, "the %s token is in the server's log", name)
		assert.NotContains(t, disk.String(), tok, "the %s token is in the data folder", name)
	}
}

func TestTokenMintedAfterStartWorks(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{tokens: true})
	// Let the server run a moment on the bootstrap tokens file first, so the new token
	// really arrives through a reload.
	r := h.do(req{method: http.MethodGet, path: "/v1/whoami", token: "c490_not-yet"})
	require.Equal(t, http.StatusUnauthorized, r.status)

	tok := h.mint(tokens.Identity{Host: "lab-new"})
	assert.Eventually(t, func() bool {
		r, err := tryDo(h, req{method: http.MethodGet, path: "/v1/whoami", token: tok})
		return err == nil && r.status == http.StatusOK && r.json["host"] == "lab-new"
	}, 5*time.Second, 50*time.Millisecond, "a token minted while the receiver runs works within about a second")
	r = h.upload(req{token: tok}, "ep.tar", []byte("first episode"))
	assert.Equal(t, http.StatusCreated, r.status, string(r.body))
}

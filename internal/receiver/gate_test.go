package receiver_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/config"
	"github.com/cis490/cis490/internal/index"
)

const (
	allowedCommit = "4f1c2a9e7b3d5f6a8c0e1b2d3f4a5b6c7d8e9f01" // on the allow-list in full
	allowedShort  = "9a8b7c6"                                  // on the allow-list abbreviated
	refusedCommit = "deadbeefcafe"
)

var allowList = []string{"# release builds", allowedCommit, allowedShort}

func TestGateOnEpisodesAndHeartbeat(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{allow: allowList})
	for _, tc := range []struct {
		name   string
		commit string
		status int // of the episode upload; a heartbeat gets 204 for a 2xx
		code   string
	}{
		{"full commit", allowedCommit, http.StatusCreated, ""},
		{"abbreviated commit", allowedCommit[:7], http.StatusCreated, ""},
		{"longer abbreviation", allowedCommit[:12], http.StatusCreated, ""},
		{"uppercase", strings.ToUpper(allowedCommit), http.StatusCreated, ""},
		{"full commit of an abbreviated entry", allowedShort + strings.Repeat("d", 33), http.StatusCreated, ""},
		{"unstamped", "", http.StatusCreated, ""},
		{"not allowed", refusedCommit, http.StatusUpgradeRequired, "commit_not_allowed"},
		{"shares only 6 digits", allowedCommit[:6] + "0000000", http.StatusUpgradeRequired, "commit_not_allowed"},
		{"longer than the entry but diverging", allowedShort[:6] + "0d5e4f3", http.StatusUpgradeRequired, "commit_not_allowed"},
		{"too short", allowedCommit[:6], http.StatusBadRequest, "bad_request"},
		{"too long", allowedCommit + "0", http.StatusBadRequest, "bad_request"},
		{"not hex", "xyz1234", http.StatusBadRequest, "bad_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			data := []byte("episode for " + tc.name)
			r := h.upload(req{host: "lab-a", commit: tc.commit}, "ep.tar", data)
			stored := filepath.Join(h.data, "episodes", "lab-a", sum(data))
			hb := h.do(req{method: http.MethodPost, path: "/v1/heartbeat", host: "lab-a", commit: tc.commit})
			if tc.code == "" {
				assert.Equal(t, tc.status, r.status, string(r.body))
				assert.FileExists(t, stored)
				assert.Equal(t, http.StatusNoContent, hb.status, string(hb.body))
				return
			}
			assertAPIError(t, r, tc.status, tc.code)
			assertAPIError(t, hb, tc.status, tc.code)
			assert.NoFileExists(t, stored)
			if tc.status == http.StatusUpgradeRequired {
				for _, body := range []resp{r, hb} {
					assert.Equal(t, strings.ToLower(tc.commit), body.json["commit"])
					assert.Contains(t, body.json["error"], tc.commit, "the error names the refused commit")
				}
			}
		})
	}
}

func TestGateRecordsUnstampedUploads(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{allow: allowList})
	data := []byte("unstamped episode")
	r := h.upload(req{host: "lab-a"}, "ep.tar", data)
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	r = h.upload(req{host: "lab-a", commit: allowedCommit[:7]}, "ep2.tar", []byte("stamped episode"))
	require.Equal(t, http.StatusCreated, r.status, string(r.body))

	var meta map[string]any
	raw, err := os.ReadFile(filepath.Join(h.data, "episodes", "lab-a", sum(data)+".json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &meta))
	assert.Equal(t, "", meta["commit"])

	lines := waitIndexLen(t, h, 2)
	require.Len(t, lines, 2)
	assert.Equal(t, index.Entry{Route: "episodes", Status: 201, Commit: "", Stamped: false},
		index.Entry{Route: lines[0].Route, Status: lines[0].Status, Commit: lines[0].Commit, Stamped: lines[0].Stamped})
	assert.Equal(t, index.Entry{Route: "episodes", Status: 201, Commit: allowedCommit[:7], Stamped: true},
		index.Entry{Route: lines[1].Route, Status: lines[1].Status, Commit: lines[1].Commit, Stamped: lines[1].Stamped},
		"the stamp as sent, not the allow-list entry it matched")
}

func TestGateOpenWithoutSourcesStillRecordsStamps(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	r := h.upload(req{host: "lab-a", commit: refusedCommit}, "ep.tar", []byte("anything goes"))
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	lines := waitIndexLen(t, h, 1)
	require.Len(t, lines, 1)
	assert.Equal(t, refusedCommit, lines[0].Commit)
	assert.True(t, lines[0].Stamped)
}

func TestGateUnstampedReject(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{allow: allowList, unstamped: config.UnstampedReject})
	data := []byte("episode")
	r := h.upload(req{host: "lab-a"}, "ep.tar", data)
	assertAPIError(t, r, http.StatusPreconditionRequired, "commit_required")
	r = h.do(req{method: http.MethodPost, path: "/v1/heartbeat", host: "lab-a"})
	assertAPIError(t, r, http.StatusPreconditionRequired, "commit_required")
	assert.Empty(t, files(t, filepath.Join(h.data, "episodes")))

	// A stamped, allowed request still passes.
	r = h.upload(req{host: "lab-a", commit: allowedCommit}, "ep.tar", data)
	assert.Equal(t, http.StatusCreated, r.status, string(r.body))
	r = h.upload(req{host: "lab-a", commit: refusedCommit}, "ep.tar", []byte("other"))
	assertAPIError(t, r, http.StatusUpgradeRequired, "commit_not_allowed")
}

// A sick host running refused or unstamped code must still be able to report its
// sickness (SPEC §3.2).
func TestNeverGatedRoutes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		unstamped string
		commit    string
	}{
		{"refused commit", config.UnstampedAllow, refusedCommit},
		{"malformed commit", config.UnstampedAllow, "not-a-commit"},
		{"unstamped with unstamped=reject", config.UnstampedReject, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, setup{allow: allowList, unstamped: tc.unstamped})
			r := h.do(req{method: http.MethodPut, path: "/v1/host-health/lab-a", host: "lab-a", commit: tc.commit,
				body: jsonBody(`{"status":"fail"}`)})
			assert.Equal(t, http.StatusNoContent, r.status, string(r.body))
			r = h.do(req{method: http.MethodGet, path: "/v1/host-health/lab-a", host: "lab-a", commit: tc.commit})
			assert.Equal(t, http.StatusOK, r.status, string(r.body))
			assert.Equal(t, "fail", r.json["status"])
			r = h.do(req{method: http.MethodGet, path: "/v1/host-health", host: "lab-a", commit: tc.commit})
			assert.Equal(t, http.StatusOK, r.status, string(r.body))
			r = h.do(req{method: http.MethodGet, path: "/v1/whoami", host: "lab-a", commit: tc.commit})
			assert.Equal(t, http.StatusOK, r.status, string(r.body))
			assert.Equal(t, false, r.json["commit_allowed"])

			// The gated routes do refuse this caller: the test is not passing by accident.
			r = h.do(req{method: http.MethodPost, path: "/v1/heartbeat", host: "lab-a", commit: tc.commit})
			assert.GreaterOrEqual(t, r.status, 400)
		})
	}
}

func TestWhoamiCommitAllowed(t *testing.T) {
	t.Parallel()
	allow := newHarness(t, setup{allow: allowList})
	reject := newHarness(t, setup{allow: allowList, unstamped: config.UnstampedReject})
	for _, tc := range []struct {
		name   string
		h      *harness
		commit string
		want   bool
	}{
		{"allowed", allow, allowedCommit, true},
		{"abbreviated", allow, allowedCommit[:7], true},
		{"refused", allow, refusedCommit, false},
		{"malformed", allow, "zz", false},
		{"unstamped, allowed", allow, "", true},
		{"unstamped, rejected", reject, "", false},
		{"allowed, with unstamped rejected", reject, allowedCommit, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.h.do(req{method: http.MethodGet, path: "/v1/whoami", host: "lab-a", commit: tc.commit})
			require.Equal(t, http.StatusOK, r.status, string(r.body))
			assert.Equal(t, tc.want, r.json["commit_allowed"])
			assert.Equal(t, strings.ToLower(tc.commit), r.json["commit"])
		})
	}
}

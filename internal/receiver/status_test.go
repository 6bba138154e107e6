package receiver_test

import (
	"bytes"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/tokens"
)

// fleet is a receiver with tokens for two hosts and an admin, all loaded.
type fleet struct {
	*harness
	labA, labB, admin string
}

func newFleet(t *testing.T, s setup) *fleet {
	t.Helper()
	s.tokens = true
	h := newHarness(t, s)
	f := &fleet{harness: h}
	f.labA = h.mint(tokens.Identity{Host: "lab-a"})
	f.labB = h.mint(tokens.Identity{Host: "lab-b"})
	f.admin = h.mint(tokens.Identity{Admin: "ops"})
	waitForToken(t, h, h.client, f.admin)
	return f
}

func TestHeartbeatIs204(t *testing.T) {
	t.Parallel()
	f := newFleet(t, setup{})
	r := f.do(req{method: http.MethodPost, path: "/v1/heartbeat", token: f.labA, commit: "abcdef1"})
	assert.Equal(t, http.StatusNoContent, r.status, string(r.body))
	assert.Empty(t, r.body)

	open := newHarness(t, setup{})
	r = open.do(req{method: http.MethodPost, path: "/v1/heartbeat", host: "lab-a", body: jsonBody(`{}`)})
	assert.Equal(t, http.StatusNoContent, r.status, string(r.body))
}

func TestHostHealthPutThenGet(t *testing.T) {
	t.Parallel()
	f := newFleet(t, setup{})
	before := time.Now().UTC().Add(-time.Second)
	r := f.do(req{method: http.MethodPut, path: "/v1/host-health/lab-a", token: f.labA,
		body: jsonBody(`{"status":"fail","checks":[{"name":"disk","status":"fail"}]}`)})
	require.Equal(t, http.StatusNoContent, r.status, string(r.body))
	assert.Empty(t, r.body)
	r = f.do(req{method: http.MethodPut, path: "/v1/host-health/lab-b", token: f.labB, body: jsonBody(`{"status":"ok"}`)})
	require.Equal(t, http.StatusNoContent, r.status, string(r.body))

	t.Run("one", func(t *testing.T) {
		r := f.do(req{method: http.MethodGet, path: "/v1/host-health/lab-a", token: f.labA})
		require.Equal(t, http.StatusOK, r.status, string(r.body))
		assert.Equal(t, "fail", r.json["status"])
		assert.Len(t, r.json["checks"], 1)
		at, err := time.Parse(time.RFC3339Nano, r.json["received_at"].(string))
		require.NoError(t, err, "received_at is added by the receiver")
		assert.WithinRange(t, at, before, time.Now().UTC().Add(time.Second))
	})
	t.Run("all", func(t *testing.T) {
		r := f.do(req{method: http.MethodGet, path: "/v1/host-health", token: f.admin})
		require.Equal(t, http.StatusOK, r.status, string(r.body))
		require.Len(t, r.json, 2, string(r.body))
		a, _ := r.json["lab-a"].(map[string]any)
		b, _ := r.json["lab-b"].(map[string]any)
		assert.Equal(t, "fail", a["status"])
		assert.Equal(t, "ok", b["status"])
		assert.NotEmpty(t, b["received_at"])
	})
	t.Run("a second report replaces the first", func(t *testing.T) {
		r := f.do(req{method: http.MethodPut, path: "/v1/host-health/lab-a", token: f.labA, body: jsonBody(`{"status":"ok"}`)})
		require.Equal(t, http.StatusNoContent, r.status)
		r = f.do(req{method: http.MethodGet, path: "/v1/host-health/lab-a", token: f.admin})
		require.Equal(t, http.StatusOK, r.status)
		assert.Equal(t, "ok", r.json["status"])
		assert.NotContains(t, r.json, "checks")
	})
}

func TestWhoamiReportsEveryField(t *testing.T) {
	t.Parallel()
	f := newFleet(t, setup{})
	for _, tc := range []struct {
		name, token, host, commit string
		wantHost, wantRole        string
	}{
		{"host token", f.labA, "", "ABCDEF1234", "lab-a", "host"},
		{"host token naming itself", f.labB, "LAB-B", "abcdef1", "lab-b", "host"},
		{"admin", f.admin, "", "abcdef1", "", "admin"},
		{"admin acting for a host", f.admin, "lab-c", "abcdef1", "lab-c", "admin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := f.do(req{method: http.MethodGet, path: "/v1/whoami", token: tc.token, host: tc.host, commit: tc.commit})
			require.Equal(t, http.StatusOK, r.status, string(r.body))
			for _, k := range []string{"host", "role", "commit", "commit_allowed", "server_time", "version"} {
				assert.Contains(t, r.json, k)
			}
			assert.Equal(t, tc.wantHost, r.json["host"])
			assert.Equal(t, tc.wantRole, r.json["role"])
			assert.Equal(t, strings.ToLower(tc.commit), r.json["commit"])
			assert.Equal(t, true, r.json["commit_allowed"], "no gate sources: every commit is allowed")
			at, err := time.Parse(time.RFC3339Nano, r.json["server_time"].(string))
			require.NoError(t, err)
			assert.WithinDuration(t, time.Now(), at, time.Minute)
			assert.NotEmpty(t, r.json["version"])
		})
	}
	t.Run("open mode", func(t *testing.T) {
		t.Parallel()
		open := newHarness(t, setup{})
		r := open.do(req{method: http.MethodGet, path: "/v1/whoami", host: "Lab-9"})
		require.Equal(t, http.StatusOK, r.status, string(r.body))
		assert.Equal(t, "lab-9", r.json["host"])
		assert.Equal(t, "open", r.json["role"])
		assert.Equal(t, "", r.json["commit"])
		assert.Equal(t, true, r.json["commit_allowed"])
	})
}

func TestHealthz(t *testing.T) {
	t.Parallel()
	for _, s := range []setup{{}, {tokens: true}} {
		h := newHarness(t, s)
		r := h.do(req{method: http.MethodGet, path: "/healthz"})
		assert.Equal(t, http.StatusOK, r.status, "no token needed")
		assert.Equal(t, "ok", r.json["status"], "the body is protocol.Health: %s", r.body)
	}
}

func TestUnauthorizedIs401(t *testing.T) {
	t.Parallel()
	f := newFleet(t, setup{})
	unknown, err := tokens.Generate()
	require.NoError(t, err)
	data := []byte("episode")
	routes := []struct {
		name   string
		method string
		path   string
		body   func() io.Reader
		hdr    map[string]string
	}{
		{"episodes", http.MethodPut, "/v1/episodes", func() io.Reader { return bytes.NewReader(data) },
			map[string]string{"X-Cis490-Episode": "ep.tar", "X-Cis490-Sha256": sum(data)}},
		{"heartbeat", http.MethodPost, "/v1/heartbeat", nil, nil},
		{"put host-health", http.MethodPut, "/v1/host-health/lab-a", func() io.Reader { return jsonBody(`{"status":"ok"}`) }, nil},
		{"get host-health", http.MethodGet, "/v1/host-health/lab-a", nil, nil},
		{"list host-health", http.MethodGet, "/v1/host-health", nil, nil},
		{"whoami", http.MethodGet, "/v1/whoami", nil, nil},
	}
	auths := []struct {
		name, authorization string
	}{
		{"no token", ""},
		{"unknown token", "Bearer " + unknown},
		{"empty bearer", "Bearer "},
		{"basic auth", "Basic bGFiLWE6c2VjcmV0"},
		{"a host token's hash", "Bearer " + tokens.Hash(f.labA)},
	}
	for _, rt := range routes {
		for _, a := range auths {
			t.Run(rt.name+"/"+a.name, func(t *testing.T) {
				hdr := map[string]string{}
				for k, v := range rt.hdr {
					hdr[k] = v
				}
				if a.authorization != "" {
					hdr["Authorization"] = a.authorization
				}
				var body io.Reader
				if rt.body != nil {
					body = rt.body()
				}
				r := f.do(req{method: rt.method, path: rt.path, host: "lab-a", header: hdr, body: body})
				assertAPIError(t, r, http.StatusUnauthorized, "unauthorized")
				assert.True(t, strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer"),
					"WWW-Authenticate %q", r.header.Get("WWW-Authenticate"))
			})
		}
	}
	assert.Empty(t, files(t, filepath.Join(f.data, "episodes")))
	assert.Empty(t, files(t, filepath.Join(f.data, "host-health")))
}

func TestForbiddenIs403(t *testing.T) {
	t.Parallel()
	f := newFleet(t, setup{})
	data := []byte("episode")
	for _, tc := range []struct {
		name               string
		method, path, host string
		token              string
		body               string
	}{
		{"episode as another host", http.MethodPut, "/v1/episodes", "lab-b", f.labA, string(data)},
		{"heartbeat as another host", http.MethodPost, "/v1/heartbeat", "lab-b", f.labA, ""},
		{"another host's report, put", http.MethodPut, "/v1/host-health/lab-b", "", f.labA, `{"status":"ok"}`},
		{"another host's report, put, naming itself", http.MethodPut, "/v1/host-health/lab-b", "lab-a", f.labA, `{"status":"ok"}`},
		{"another host's report, get", http.MethodGet, "/v1/host-health/lab-b", "", f.labA, ""},
		{"every report with a host token", http.MethodGet, "/v1/host-health", "", f.labA, ""},
		{"admin uploading an episode", http.MethodPut, "/v1/episodes", "lab-a", f.admin, string(data)},
		{"admin uploading without a host", http.MethodPut, "/v1/episodes", "", f.admin, string(data)},
		{"admin heartbeat", http.MethodPost, "/v1/heartbeat", "lab-a", f.admin, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := f.do(req{method: tc.method, path: tc.path, host: tc.host, token: tc.token, body: jsonBody(tc.body),
				header: map[string]string{"X-Cis490-Episode": "ep.tar", "X-Cis490-Sha256": sum(data)}})
			assertAPIError(t, r, http.StatusForbidden, "forbidden")
			assert.Empty(t, r.header.Get("WWW-Authenticate"), "authenticated: not a 401")
		})
	}
	assert.Empty(t, files(t, filepath.Join(f.data, "episodes")))
	assert.Empty(t, files(t, filepath.Join(f.data, "host-health")))
}

func TestNotFoundIs404(t *testing.T) {
	t.Parallel()
	f := newFleet(t, setup{})
	for _, tc := range []struct {
		name, method, path, token string
	}{
		{"unknown v1 path", http.MethodGet, "/v1/nope", f.admin},
		{"below episodes", http.MethodPut, "/v1/episodes/lab-a/ep.tar", f.labA}, // /v1/episodes/{sha256} is HEAD's (resume_test.go)
		{"unknown version", http.MethodGet, "/v2/whoami", f.admin},
		{"outside the API and the fleet page", http.MethodGet, "/nope", ""}, // GET / is the fleet page (page_test.go)
		{"missing report, own host", http.MethodGet, "/v1/host-health/lab-a", f.labA},
		{"missing report, admin", http.MethodGet, "/v1/host-health/lab-z", f.admin},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := f.do(req{method: tc.method, path: tc.path, token: tc.token})
			assertAPIError(t, r, http.StatusNotFound, "not_found")
		})
	}
}

// Unknown /v1 paths authenticate first: an anonymous caller learns nothing about the
// API and cannot add anonymous lines to the index.
func TestUnknownV1PathWithoutATokenIs401(t *testing.T) {
	t.Parallel()
	f := newFleet(t, setup{})
	r := f.do(req{method: http.MethodPost, path: "/v1/nope"})
	assertAPIError(t, r, http.StatusUnauthorized, "unauthorized")
}

func TestMethodNotAllowedIs405(t *testing.T) {
	t.Parallel()
	f := newFleet(t, setup{})
	for _, tc := range []struct {
		method, path, allow string
	}{
		{http.MethodGet, "/v1/episodes", "PUT"},
		{http.MethodPost, "/v1/episodes", "PUT"},
		{http.MethodGet, "/v1/heartbeat", "POST"},
		{http.MethodPut, "/v1/heartbeat", "POST"},
		{http.MethodDelete, "/v1/host-health/lab-a", "GET, PUT"},
		{http.MethodPost, "/v1/host-health/lab-a", "GET, PUT"},
		{http.MethodPut, "/v1/host-health", "GET"},
		{http.MethodPost, "/v1/whoami", "GET"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			r := f.do(req{method: tc.method, path: tc.path, token: f.admin})
			assertAPIError(t, r, http.StatusMethodNotAllowed, "method_not_allowed")
			assert.Equal(t, tc.allow, r.header.Get("Allow"))
		})
	}
}

func TestReportOverMaxReportBytesIs413(t *testing.T) {
	t.Parallel()
	const limit = 64
	h := newHarness(t, setup{maxReport: limit})
	big := `{"status":"ok","pad":"` + strings.Repeat("x", 2*limit) + `"}`
	t.Run("with Content-Length", func(t *testing.T) {
		r := h.do(req{method: http.MethodPut, path: "/v1/host-health/lab-a", host: "lab-a", body: strings.NewReader(big)})
		assertAPIError(t, r, http.StatusRequestEntityTooLarge, "too_large")
	})
	t.Run("chunked", func(t *testing.T) {
		r := h.do(req{method: http.MethodPut, path: "/v1/host-health/lab-a", host: "lab-a",
			body: io.MultiReader(strings.NewReader(big))})
		assertAPIError(t, r, http.StatusRequestEntityTooLarge, "too_large")
	})
	assert.Empty(t, files(t, filepath.Join(h.data, "host-health")))

	t.Run("exactly at the limit", func(t *testing.T) {
		fits := `{"status":"ok","pad":"` + strings.Repeat("x", limit-len(`{"status":"ok","pad":""}`)) + `"}`
		require.Len(t, fits, limit)
		r := h.do(req{method: http.MethodPut, path: "/v1/host-health/lab-a", host: "lab-a", body: strings.NewReader(fits)})
		assert.Equal(t, http.StatusNoContent, r.status, string(r.body))
	})
}

func TestReportNotAJSONObjectIs400(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	for _, tc := range []struct{ name, body string }{
		{"array", `[{"status":"ok"}]`},
		{"string", `"ok"`},
		{"number", `42`},
		{"bool", `true`},
		{"null", `null`},
		{"garbage", `status: ok`},
		{"truncated object", `{"status":"ok"`},
		{"two objects", `{"a":1}{"b":2}`},
		{"empty", ``},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := h.do(req{method: http.MethodPut, path: "/v1/host-health/lab-a", host: "lab-a", body: strings.NewReader(tc.body)})
			assertAPIError(t, r, http.StatusBadRequest, "bad_request")
		})
	}
	assert.Empty(t, files(t, filepath.Join(h.data, "host-health")), "nothing stored")
	assert.Empty(t, files(t, filepath.Join(h.data, "tmp")))
	r := h.do(req{method: http.MethodGet, path: "/v1/host-health/lab-a", host: "lab-a"})
	assert.Equal(t, http.StatusNotFound, r.status)
}

// A report is a doctor document: a JSON object whose status is ok, warn or fail. One
// without (an object of anything) would replace the host's real report and clear its
// report-failing or report-warning alert.
func TestReportWithoutADoctorStatusIs400(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	good := `{"schema":"cis490.doctor/v1","status":"fail"}`
	r := h.do(req{method: http.MethodPut, path: "/v1/host-health/lab-a", host: "lab-a", body: strings.NewReader(good)})
	require.Equal(t, http.StatusNoContent, r.status, string(r.body))
	for _, body := range []string{`{}`, `{"garbage":1}`, `{"status":"bogus"}`, `{"status":""}`, `{"status":1}`, `{"status":null}`} {
		r := h.do(req{method: http.MethodPut, path: "/v1/host-health/lab-a", host: "lab-a", body: strings.NewReader(body)})
		assertAPIError(t, r, http.StatusBadRequest, "bad_request")
		assert.Contains(t, string(r.body), "ok, warn or fail", body)
	}
	r = h.do(req{method: http.MethodGet, path: "/v1/host-health/lab-a", host: "lab-a"})
	require.Equal(t, http.StatusOK, r.status)
	assert.Equal(t, "fail", r.json["status"], "the real report is kept")
}

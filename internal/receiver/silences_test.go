package receiver_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/fleethealth"
	"github.com/cis490/cis490/internal/receiver"
	"github.com/cis490/cis490/internal/silences"
	"github.com/cis490/cis490/internal/tokens"
)

// silencesFixture is a receiver with an admin and lab-07, which the receiver knows
// from its doctor report.
type silencesFixture struct {
	*harness
	admin, host string
}

func newSilencesFixture(t *testing.T) *silencesFixture {
	t.Helper()
	h := newHarness(t, setup{tokens: true})
	f := &silencesFixture{harness: h}
	f.admin = h.mint(tokens.Identity{Admin: "alice"})
	f.host = h.mint(tokens.Identity{Host: "lab-07"})
	waitForToken(t, h, h.client, f.host)
	r := h.do(req{method: http.MethodPut, path: "/v1/host-health/lab-07", token: f.host, body: strings.NewReader(`{"status":"ok"}`)})
	require.Equal(t, http.StatusNoContent, r.status, "%s", r.body)
	return f
}

func (f *silencesFixture) post(body string) resp {
	f.t.Helper()
	return f.do(req{method: http.MethodPost, path: "/v1/silences", token: f.admin, body: strings.NewReader(body),
		header: map[string]string{"Content-Type": "application/json"}})
}

func (f *silencesFixture) list() []silences.View {
	f.t.Helper()
	r := f.do(req{method: http.MethodGet, path: "/v1/silences", token: f.admin})
	require.Equal(f.t, http.StatusOK, r.status, "%s", r.body)
	var views []silences.View
	require.NoError(f.t, json.Unmarshal(r.body, &views))
	return views
}

func TestSilencesAPI(t *testing.T) {
	t.Parallel()
	f := newSilencesFixture(t)
	assert.Empty(t, f.list(), "none yet")

	before := time.Now()
	r := f.post(`{"host":"LAB-07","symptom":"silent","for":"4h","reason":"moving racks"}`)
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	var made silences.Silence
	require.NoError(t, json.Unmarshal(r.body, &made))
	assert.Equal(t, "lab-07", made.Host)
	assert.Equal(t, "silent", made.Symptom)
	assert.Equal(t, "alice", made.By, "the admin who made it")
	assert.WithinRange(t, made.End, before.Add(4*time.Hour), time.Now().Add(4*time.Hour), "for is measured by the receiver's clock")

	end := time.Now().Add(2 * time.Hour).UTC().Format(time.RFC3339)
	r = f.post(`{"host":"lab-07","end":"` + end + `","reason":"all of it"}`)
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)

	views := f.list()
	require.Len(t, views, 2)
	assert.Equal(t, "all of it", views[0].Reason, "the one ending first first")
	assert.Equal(t, made, views[1].Silence)
	assert.Equal(t, silences.StateActive, views[1].State)

	r = f.do(req{method: http.MethodDelete, path: "/v1/silences/" + made.ID, token: f.admin})
	assert.Equal(t, http.StatusNoContent, r.status, "%s", r.body)
	views = f.list()
	assert.Equal(t, silences.StateEnded, views[1].State)
	assert.False(t, views[1].EndedAt.IsZero())

	r = f.do(req{method: http.MethodDelete, path: "/v1/silences/" + made.ID, token: f.admin})
	assertAPIError(t, r, http.StatusConflict, "silence_over")
	assert.Contains(t, r.json["error"], "already ended at")
	r = f.do(req{method: http.MethodDelete, path: "/v1/silences/ffffffff", token: f.admin})
	assertAPIError(t, r, http.StatusNotFound, "not_found")

	set, st, err := silences.Load(filepath.Join(f.data, "silences.jsonl"))
	require.NoError(t, err)
	assert.Equal(t, silences.Stats{Silences: 2}, st, "in the data folder's silences.jsonl")
	assert.Len(t, set.List(time.Now()), 2)
}

func TestSilencesAPIRefusesBadInput(t *testing.T) {
	t.Parallel()
	f := newSilencesFixture(t)
	for _, tc := range []struct{ name, body, want string }{
		{"no end", `{"host":"lab-07","reason":"r"}`, "a silence needs an end"},
		{"both ends", `{"host":"lab-07","for":"1h","end":"2099-01-01T00:00:00Z","reason":"r"}`, "not both"},
		{"end in the past", `{"host":"lab-07","end":"2020-01-01T00:00:00Z","reason":"r"}`, "is not in the future"},
		{"too long", `{"host":"lab-07","for":"8d","reason":"r"}`, "fleet_health.max_silence"},
		{"unknown symptom", `{"host":"lab-07","symptom":"grumpy","for":"1h","reason":"r"}`, `symptom "grumpy" is not one fleet health knows`},
		{"bad host", `{"host":"lab_07","for":"1h","reason":"r"}`, "is not an RFC 1123 host name"},
		{"unknown host", `{"host":"lab-77","for":"1h","reason":"r"}`, "host lab-77 is unknown to this receiver"},
		{"no reason", `{"host":"lab-07","for":"1h"}`, "a reason is required"},
		{"a misspelt field", `{"host":"lab-07","until":"2099-01-01T00:00:00Z","reason":"r"}`, `unknown field "until"`},
		{"not JSON", `host=lab-07`, "the body must be one JSON object"},
		{"too big", `{"host":"lab-07","for":"1h","reason":"` + strings.Repeat("x", 20<<10) + `"}`, "the body must be one JSON object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := f.post(tc.body)
			assertAPIError(t, r, http.StatusBadRequest, "bad_request")
			assert.Contains(t, r.json["error"], tc.want)
		})
	}
	_, err := os.Stat(filepath.Join(f.data, "silences.jsonl"))
	assert.ErrorIs(t, err, os.ErrNotExist, "nothing written")
}

func TestSilencesAPIIsForTheAdmin(t *testing.T) {
	t.Parallel()
	f := newSilencesFixture(t)
	r := f.post(`{"host":"lab-07","for":"1h","reason":"r"}`)
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	id, _ := r.json["id"].(string)

	for _, tc := range []struct {
		name   string
		token  string
		status int
	}{
		{"a host token", f.host, http.StatusForbidden},
		{"no token", "", http.StatusUnauthorized},
		{"an unknown token", "c490_nope", http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, q := range []req{
				{method: http.MethodGet, path: "/v1/silences"},
				{method: http.MethodPost, path: "/v1/silences", body: strings.NewReader(`{"host":"lab-07","for":"1h","reason":"r"}`)},
				{method: http.MethodDelete, path: "/v1/silences/" + id},
			} {
				q.token, q.host = tc.token, "lab-07"
				r := f.do(q)
				assert.Equal(t, tc.status, r.status, "%s %s: %s", q.method, q.path, r.body)
				if tc.status == http.StatusForbidden {
					assert.Equal(t, "silences are for the admin: use an admin token", r.json["error"])
				}
			}
		})
	}
	views := f.list()
	require.Len(t, views, 1, "nothing added")
	assert.Equal(t, silences.StateActive, views[0].State, "nothing ended")
}

func TestSilencesAPIIsNeverGated(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{tokens: true, allow: []string{"1234567890abcdef1234567890abcdef12345678"}})
	admin := h.mint(tokens.Identity{Admin: "alice"})
	waitForToken(t, h, h.client, admin)
	r := h.do(req{method: http.MethodGet, path: "/v1/silences", token: admin, commit: "abcdef0abcdef0abcdef0abcdef0abcdef0abcd"})
	assert.Equal(t, http.StatusOK, r.status, "a commit the gate refuses: %s", r.body)
}

func TestSilencesAPIMethodsAndIndex(t *testing.T) {
	t.Parallel()
	f := newSilencesFixture(t)
	r := f.do(req{method: http.MethodPut, path: "/v1/silences", token: f.admin})
	assertAPIError(t, r, http.StatusMethodNotAllowed, "method_not_allowed")
	assert.Equal(t, "GET, POST", r.header.Get("Allow"))
	r = f.do(req{method: http.MethodGet, path: "/v1/silences/abc", token: f.admin})
	assertAPIError(t, r, http.StatusMethodNotAllowed, "method_not_allowed")
	assert.Equal(t, "DELETE", r.header.Get("Allow"))

	f.list()
	require.Eventually(t, func() bool {
		lines, err := readIndex(f.harness)
		if err != nil {
			return false
		}
		for _, l := range lines {
			if l.Route == "silences" && l.Method == http.MethodGet && l.Status == http.StatusOK {
				return true
			}
		}
		return false
	}, 5*time.Second, 20*time.Millisecond, "each request is an index line, route silences")
}

// The Pi itself is a host the receiver knows, with no token or report of its own yet;
// and a silence made or ended shows in the very next GET /v1/fleet, not from the
// evaluation the fleet view had kept.
func TestSilenceOfThePiItselfShowsInTheNextFleetView(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{tokens: true, fleet: receiver.FleetOptions{Host: "pi"}})
	f := &silencesFixture{harness: h, admin: h.mint(tokens.Identity{Admin: "alice"})}
	waitForToken(t, h, h.client, f.admin)
	fleetAt := func() time.Time {
		t.Helper()
		r := f.do(req{method: http.MethodGet, path: "/v1/fleet", token: f.admin})
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
		var v fleethealth.Fleet
		require.NoError(t, json.Unmarshal(r.body, &v))
		return v.GeneratedAt
	}
	before := fleetAt()
	r := f.post(`{"host":"pi","symptom":"disk-low","for":"2h","reason":"new disk"}`)
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	var made silences.Silence
	require.NoError(t, json.Unmarshal(r.body, &made))
	afterPost := fleetAt()
	assert.True(t, afterPost.After(before), "the fleet view is evaluated anew after a silence is made")

	r = f.do(req{method: http.MethodDelete, path: "/v1/silences/" + made.ID, token: f.admin})
	require.Equal(t, http.StatusNoContent, r.status, "%s", r.body)
	assert.True(t, fleetAt().After(afterPost), "and after one is ended")
}

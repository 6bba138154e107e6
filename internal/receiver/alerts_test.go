package receiver_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/alerts"
	"github.com/cis490/cis490/internal/config"
	"github.com/cis490/cis490/internal/fleethealth"
	"github.com/cis490/cis490/internal/protocol"
	"github.com/cis490/cis490/internal/receiver"
	"github.com/cis490/cis490/internal/testutil"
	"github.com/cis490/cis490/internal/tokens"
)

// alertsFixture is a receiver with tokens, an admin and a host token, and alerts.jsonl
// in its data folder.
type alertsFixture struct {
	*harness
	admin, host string
	path        string
}

func newAlertsFixture(t *testing.T) *alertsFixture {
	t.Helper()
	return newAlertsFixtureWith(t, setup{})
}

// newAlertsFixtureWith is newAlertsFixture with more of the receiver's setup.
func newAlertsFixtureWith(t *testing.T, s setup) *alertsFixture {
	t.Helper()
	s.tokens = true
	h := newHarness(t, s)
	f := &alertsFixture{harness: h, path: filepath.Join(h.data, "alerts.jsonl")}
	f.admin = h.mint(tokens.Identity{Admin: "alice"})
	f.host = h.mint(tokens.Identity{Host: "lab-07"})
	waitForToken(t, h, h.client, f.host)
	return f
}

func (f *alertsFixture) append(t *testing.T, as ...alerts.Alert) {
	t.Helper()
	require.NoError(t, alerts.Append(f.path, as...))
}

func alertAt(host, symptom, status string, at time.Time) alerts.Alert {
	return alerts.Alert{TS: at, Host: host, Symptom: symptom, Status: status, DedupKey: alerts.DedupKey(host, symptom, at),
		Since: at.Add(-time.Minute), Summary: host + " is " + symptom, Evidence: json.RawMessage(`{"k":1}`)}
}

func hostsOf(t *testing.T, body []byte) []string {
	t.Helper()
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(string(body)), "\n") {
		if l == "" {
			continue
		}
		a, ok := alerts.Parse([]byte(l))
		require.True(t, ok, l)
		out = append(out, a.Host+"/"+a.Status)
	}
	return out
}

func TestAlertsIsForTheAdmin(t *testing.T) {
	t.Parallel()
	f := newAlertsFixture(t)
	assertAPIError(t, f.do(req{method: http.MethodGet, path: "/v1/alerts"}), http.StatusUnauthorized, "unauthorized")
	assertAPIError(t, f.do(req{method: http.MethodGet, path: "/v1/alerts", token: f.host}), http.StatusForbidden, "forbidden")
	assertAPIError(t, f.do(req{method: http.MethodGet, path: "/v1/fleet", token: f.host}), http.StatusForbidden, "forbidden")
	assertAPIError(t, f.do(req{method: http.MethodPost, path: "/v1/alerts", token: f.admin}), http.StatusMethodNotAllowed, "method_not_allowed")
	r := f.do(req{method: http.MethodGet, path: "/v1/alerts", token: f.admin})
	assert.Equal(t, http.StatusOK, r.status, "no alerts yet is an empty answer")
	assert.Empty(t, r.body)
	assert.Equal(t, "application/x-ndjson", r.header.Get("Content-Type"))
}

func TestAlertsNeverGated(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{tokens: true, allow: []string{"1234567890abcdef"}, unstamped: config.UnstampedReject})
	admin := h.mint(tokens.Identity{Admin: "alice"})
	waitForToken(t, h, h.client, admin)
	for _, path := range []string{"/v1/alerts", "/v1/fleet"} {
		for _, commit := range []string{"", "abcdef0abcdef0"} {
			r := h.do(req{method: http.MethodGet, path: path, token: admin, commit: commit})
			assert.Equal(t, http.StatusOK, r.status, "%s with commit %q: %s", path, commit, r.body)
		}
	}
}

func TestAlertsSinceAndFilters(t *testing.T) {
	t.Parallel()
	f := newAlertsFixture(t)
	now := time.Now().UTC()
	f.append(t,
		alertAt("lab-01", "silent", "firing", now.Add(-5*time.Hour)),
		alertAt("lab-02", "unstamped", "firing", now.Add(-90*time.Minute)),
		alertAt("lab-01", "silent", "resolved", now.Add(-time.Hour)),
		alertAt("lab-03", "fatal-only", "firing", now.Add(-time.Minute)),
	)
	// A torn line (a crash mid-write) and garbage are skipped, never fatal.
	file, err := os.OpenFile(f.path, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = file.WriteString("garbage\n{\"ts\":\"2026-")
	require.NoError(t, err)
	require.NoError(t, file.Close())

	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"", []string{"lab-01/firing", "lab-02/firing", "lab-01/resolved", "lab-03/firing"}},
		{"?since=2h", []string{"lab-02/firing", "lab-01/resolved", "lab-03/firing"}},
		{"?since=" + now.Add(-61*time.Minute).Format(time.RFC3339), []string{"lab-01/resolved", "lab-03/firing"}},
		{"?host=LAB-01", []string{"lab-01/firing", "lab-01/resolved"}},
		{"?status=firing&symptom=silent", []string{"lab-01/firing"}},
		{"?n=2", []string{"lab-01/resolved", "lab-03/firing"}},
		{"?n=1&host=lab-01", []string{"lab-01/resolved"}},
		{"?n=0", nil},
	} {
		r := f.do(req{method: http.MethodGet, path: "/v1/alerts" + tc.query, token: f.admin})
		require.Equal(t, http.StatusOK, r.status, "%s: %s", tc.query, r.body)
		assert.Equal(t, tc.want, hostsOf(t, r.body), tc.query)
	}
	for _, q := range []string{"?since=yesterday", "?n=-1", "?n=ten"} {
		assertAPIError(t, f.do(req{method: http.MethodGet, path: "/v1/alerts" + q, token: f.admin}), http.StatusBadRequest, "bad_request")
	}
}

// stream opens GET path and hands its lines to a channel, closed when the stream ends.
func stream(t *testing.T, f *alertsFixture, path string) (<-chan string, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	httpReq, err := http.NewRequestWithContext(ctx, http.MethodGet, f.ts.URL+path, nil)
	require.NoError(t, err)
	httpReq.Header.Set("Authorization", "Bearer "+f.admin)
	res, err := f.client.Do(httpReq)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.StatusCode)
	lines := make(chan string, 100)
	go func() {
		defer close(lines)
		defer res.Body.Close()
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	t.Cleanup(cancel)
	return lines, cancel
}

func next(t *testing.T, lines <-chan string) string {
	t.Helper()
	select {
	case l, ok := <-lines:
		require.True(t, ok, "the stream ended")
		return l
	case <-time.After(10 * time.Second):
		t.Fatal("no line arrived on the follow stream")
		return ""
	}
}

func TestAlertsFollowStreamsAppends(t *testing.T) {
	t.Parallel()
	f := newAlertsFixture(t)
	now := time.Now().UTC()
	f.append(t, alertAt("lab-01", "silent", "firing", now.Add(-time.Hour)), alertAt("lab-02", "silent", "firing", now))
	lines, cancel := stream(t, f, "/v1/alerts?follow=1&n=1")
	assert.Contains(t, next(t, lines), `"host":"lab-02"`, "n=1 first sends the last line")

	f.append(t, alertAt("lab-03", "silent", "firing", now))
	assert.Contains(t, next(t, lines), `"host":"lab-03"`)
	f.append(t, alertAt("lab-04", "silent", "firing", now), alertAt("lab-05", "unstamped", "firing", now))
	assert.Contains(t, next(t, lines), `"host":"lab-04"`)
	assert.Contains(t, next(t, lines), `"host":"lab-05"`)

	// The client goes away: the handler ends, and its request is indexed.
	cancel()
	require.Eventually(t, func() bool {
		entries, err := readIndex(f.harness)
		if err != nil {
			return false
		}
		for _, e := range entries {
			if e.Route == "alerts" && e.Status == http.StatusOK {
				return true
			}
		}
		return false
	}, 10*time.Second, 20*time.Millisecond, "the follow handler did not end when its client left")
}

func TestAlertsFollowFiltersNewLines(t *testing.T) {
	t.Parallel()
	f := newAlertsFixture(t)
	lines, _ := stream(t, f, "/v1/alerts?follow=1&host=lab-09")
	now := time.Now().UTC()
	f.append(t, alertAt("lab-01", "silent", "firing", now), alertAt("lab-09", "silent", "firing", now))
	assert.Contains(t, next(t, lines), `"host":"lab-09"`)
}

func TestAlertsFollowEndsWhenTheServerDrains(t *testing.T) {
	t.Parallel()
	f := newAlertsFixture(t)
	lines, _ := stream(t, f, "/v1/alerts?follow=1")
	f.append(t, alertAt("lab-01", "silent", "firing", time.Now()))
	next(t, lines)
	f.srv.Drain()
	select {
	case _, ok := <-lines:
		assert.False(t, ok, "no more lines are expected, only the end of the stream")
	case <-time.After(10 * time.Second):
		t.Fatal("the follow stream outlived the drain: shutdown would hang on it")
	}
}

func TestFleetRows(t *testing.T) {
	t.Parallel()
	f := newAlertsFixture(t)
	const commit = "1234567890abcdef1234567890abcdef12345678"
	lab08 := f.mint(tokens.Identity{Host: "lab-08"})
	waitForToken(t, f.harness, f.client, lab08)
	for i := range 3 {
		r := f.do(req{method: http.MethodPost, path: "/v1/heartbeat", token: f.host, commit: commit})
		require.Equal(t, http.StatusNoContent, r.status, "heartbeat %d: %s", i, r.body)
	}
	r := f.upload(req{token: f.host, commit: commit}, "ep.tar", []byte("episode"))
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	r = f.do(req{method: http.MethodPut, path: "/v1/host-health/lab-07", token: f.host,
		body: jsonBody(`{"schema":"cis490.doctor/v1","status":"fail","checks":[{"id":"clock-skew","status":"fail"}]}`)})
	require.Equal(t, http.StatusNoContent, r.status, string(r.body))
	r = f.do(req{method: http.MethodPost, path: "/v1/heartbeat", token: lab08}) // unstamped
	require.Equal(t, http.StatusNoContent, r.status, string(r.body))
	waitIndexLen(t, f.harness, 6+3) // 3 whoami from waitForToken

	// A check an hour from now leaves silent alerts open for both.
	cfg := config.Default().FleetHealth
	cfg.Syslog = false
	_, err := fleethealth.Check(t.Context(), fleethealth.Options{Config: cfg, DataDir: f.data, AlertsPath: f.path,
		Now: time.Now().Add(time.Hour), Logger: zerolog.Nop()})
	require.NoError(t, err)

	r = f.do(req{method: http.MethodGet, path: "/v1/fleet", token: f.admin, header: map[string]string{protocol.HeaderHost: "alice-laptop"}})
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	assert.Equal(t, "no-store", r.header.Get("Cache-Control"))
	var body fleethealth.Fleet
	require.NoError(t, json.Unmarshal(r.body, &body))
	assert.WithinDuration(t, time.Now(), body.GeneratedAt, time.Minute)
	assert.Equal(t, 24*time.Hour, body.GeneratedAt.Sub(body.WindowFrom))
	require.Len(t, body.Hosts, 2, "the admin's own reads do not make alice-laptop a host: %s", r.body)
	assert.Equal(t, fleethealth.Summary{Hosts: 2, Alerting: 2, Critical: 1}, body.Summary)

	h7, h8 := body.Hosts[0], body.Hosts[1]
	assert.Equal(t, "lab-07", h7.Host)
	assert.Equal(t, "host-health", h7.LastRoute)
	assert.Equal(t, http.StatusNoContent, h7.LastStatus)
	assert.Equal(t, commit, h7.Commit)
	assert.Equal(t, fleethealth.Counts{Requests: 5, OK: 5, Episodes: 1, Heartbeats: 3, Reports: 1}, h7.Requests)
	require.NotNil(t, h7.Report)
	assert.Equal(t, "fail", h7.Report.Status)
	assert.WithinDuration(t, time.Now(), h7.Report.ReceivedAt, time.Minute)
	assert.Equal(t, fleethealth.HostAlerting, h7.Status)
	assert.Equal(t, fleethealth.ReportFailing, h7.WorstSymptom)
	assert.Equal(t, fleethealth.Critical, h7.WorstSeverity)
	assert.False(t, h7.LastEpisode.IsZero(), "its upload was accepted")
	require.NotNil(t, h7.CommitAllowed)
	assert.True(t, *h7.CommitAllowed, "an open gate lets every commit through")
	require.Len(t, h7.Symptoms, 1)
	assert.Equal(t, fleethealth.ReportFailing, h7.Symptoms[0].Symptom)
	var open []string
	for _, a := range h7.OpenAlerts {
		open = append(open, a.Symptom)
	}
	assert.Equal(t, []string{fleethealth.Silent, fleethealth.ReportFailing}, open, "open alerts are the last check's")

	assert.Equal(t, "lab-08", h8.Host, "warnings only: after the critical lab-07")
	assert.Equal(t, fleethealth.Warning, h8.WorstSeverity)
	assert.True(t, h8.LastEpisode.IsZero())
	assert.Nil(t, h8.CommitAllowed, "no commit: nothing to allow")
	assert.Equal(t, "", h8.Commit)
	assert.Nil(t, h8.Report)
	require.Len(t, h8.Symptoms, 1)
	assert.Equal(t, fleethealth.Unstamped, h8.Symptoms[0].Symptom)
}

// A damaged alert state does not take the fleet view down: GET /v1/fleet answers what
// the index tells, and says the open alerts are unknown, which file, and what to do.
func TestFleetWithDamagedStateStillAnswers(t *testing.T) {
	t.Parallel()
	// Each damage is read at once: no evaluation may be reused across them.
	f := newAlertsFixtureWith(t, setup{fleet: receiver.FleetOptions{CacheFor: -1}})
	const commit = "1234567890abcdef1234567890abcdef12345678"
	r := f.do(req{method: http.MethodPost, path: "/v1/heartbeat", token: f.host, commit: commit})
	require.Equal(t, http.StatusNoContent, r.status, string(r.body))
	waitIndexLen(t, f.harness, 1+3) // 3 whoami from waitForToken
	state := filepath.Join(f.data, "fleet-health.json")

	type fleetBody struct {
		GeneratedAt time.Time         `json:"generated_at"`
		Hosts       []fleethealth.Row `json:"hosts"`
		StateError  *string           `json:"state_error"`
	}
	get := func(t *testing.T) fleetBody {
		t.Helper()
		r := f.do(req{method: http.MethodGet, path: "/v1/fleet", token: f.admin})
		require.Equal(t, http.StatusOK, r.status, string(r.body))
		var body fleetBody
		require.NoError(t, json.Unmarshal(r.body, &body), string(r.body))
		require.Len(t, body.Hosts, 1, string(r.body))
		assert.Equal(t, "lab-07", body.Hosts[0].Host)
		assert.Equal(t, commit, body.Hosts[0].Commit)
		assert.False(t, body.Hosts[0].LastSeen.IsZero())
		return body
	}
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T)
	}{
		{"torn", func(t *testing.T) {
			require.NoError(t, os.WriteFile(state, []byte(`{"version":1,"hosts":{"lab-07":{"first_`), 0o640))
		}},
		{"empty", func(t *testing.T) { require.NoError(t, os.WriteFile(state, nil, 0o640)) }},
		{"garbage", func(t *testing.T) { require.NoError(t, os.WriteFile(state, []byte("\x00\x01not json at all"), 0o640)) }},
		{"an array", func(t *testing.T) { require.NoError(t, os.WriteFile(state, []byte(`[]`), 0o640)) }},
		{"an empty object", func(t *testing.T) { require.NoError(t, os.WriteFile(state, []byte(`{}`), 0o640)) }},
		{"null", func(t *testing.T) { require.NoError(t, os.WriteFile(state, []byte(`null`), 0o640)) }},
		{"a directory", func(t *testing.T) { require.NoError(t, os.Mkdir(state, 0o750)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, os.RemoveAll(state))
			tc.damage(t)
			body := get(t)
			require.NotNil(t, body.StateError, "the body says the alert state is unreadable")
			assert.Contains(t, *body.StateError, state)
			assert.Contains(t, *body.StateError, "open alerts unknown")
			assert.Contains(t, *body.StateError, "remove it to start over")
			assert.Empty(t, body.Hosts[0].OpenAlerts)
		})
	}
	require.NoError(t, os.RemoveAll(state))
	assert.Nil(t, get(t).StateError, "no state yet is no error")
}

// The receiver's own row in GET /v1/fleet comes from what it knows in-process: its
// data folder on a 16 MiB tmpfs, far under twice min_free_bytes (512 MiB), is
// disk-low; the gate (open) is not stale, and the receiver, answering, is not down.
func TestFleetHasTheReceiversOwnRow(t *testing.T) {
	t.Parallel()
	f := newAlertsFixtureWith(t, setup{root: testutil.Tmpfs(t, 16<<20), fleet: receiver.FleetOptions{Host: "pi"}})
	r := f.do(req{method: http.MethodPost, path: "/v1/heartbeat", token: f.host, commit: "1234567"})
	require.Equal(t, http.StatusNoContent, r.status, string(r.body)) // a heartbeat's index line is written before its 204

	r = f.do(req{method: http.MethodGet, path: "/v1/fleet", token: f.admin})
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	var body fleethealth.Fleet
	require.NoError(t, json.Unmarshal(r.body, &body), string(r.body))
	require.Len(t, body.Hosts, 2, string(r.body))
	pi, lab := body.Hosts[0], body.Hosts[1]
	assert.Equal(t, "pi", pi.Host, "alerting first")
	assert.Equal(t, fleethealth.HostAlerting, pi.Status)
	require.Len(t, pi.Symptoms, 1, "%+v", pi.Symptoms)
	assert.Equal(t, fleethealth.DiskLow, pi.Symptoms[0].Symptom)
	assert.Equal(t, fleethealth.DiskLow, pi.WorstSymptom)
	assert.Equal(t, fleethealth.Critical, pi.WorstSeverity)
	assert.Regexp(t, `^pi's disk is low: 1[56]\.\d MiB free in `+regexp.QuoteMeta(f.data), pi.Symptoms[0].Summary)
	assert.Equal(t, "lab-07", lab.Host)
	assert.Equal(t, fleethealth.HostOK, lab.Status)
	assert.Equal(t, fleethealth.Summary{Hosts: 2, OK: 1, Alerting: 1, Critical: 1}, body.Summary)
	assert.Equal(t, "2 hosts: 1 ok, 1 alerting, 0 silenced", body.Summary.String())
}

// Whether a commit is allowed is the live gate's answer, also for a commit the host
// has only stamped a report with (the index alone could not tell).
func TestFleetAsksTheLiveGate(t *testing.T) {
	t.Parallel()
	const allowed, other = "1234567890abcdef1234567890abcdef12345678", "abcdef0abcdef0abcdef0abcdef0abcdef0abcd"
	f := newAlertsFixtureWith(t, setup{allow: []string{allowed}})
	lab08 := f.mint(tokens.Identity{Host: "lab-08"})
	waitForToken(t, f.harness, f.client, lab08)
	for _, tok := range []string{f.host, lab08} {
		r := f.do(req{method: http.MethodPost, path: "/v1/heartbeat", token: tok, commit: allowed})
		require.Equal(t, http.StatusNoContent, r.status, string(r.body))
	}
	r := f.do(req{method: http.MethodPut, path: "/v1/host-health/lab-08", token: lab08, commit: other,
		body: jsonBody(`{"schema":"cis490.doctor/v1","status":"ok","checks":[]}`)})
	require.Equal(t, http.StatusNoContent, r.status, string(r.body))
	waitIndexLine(t, f.harness, r.header.Get(protocol.HeaderRequestID))

	r = f.do(req{method: http.MethodGet, path: "/v1/fleet", token: f.admin})
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	var body fleethealth.Fleet
	require.NoError(t, json.Unmarshal(r.body, &body), string(r.body))
	require.Len(t, body.Hosts, 2, string(r.body))
	commits := map[string]string{}
	verdicts := map[string]*bool{}
	for _, h := range body.Hosts {
		commits[h.Host], verdicts[h.Host] = h.Commit, h.CommitAllowed
	}
	assert.Equal(t, map[string]string{"lab-07": allowed, "lab-08": other}, commits)
	require.NotNil(t, verdicts["lab-07"])
	assert.True(t, *verdicts["lab-07"])
	require.NotNil(t, verdicts["lab-08"], "the live gate knows what the index cannot")
	assert.False(t, *verdicts["lab-08"])
}

// testClock is a receiver's clock that a test moves.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// GET /v1/fleet answers with the same evaluation for 5 seconds by the receiver's
// clock: a host that appears meanwhile shows up only in the next one.
func TestFleetReusesAnEvaluationFor5s(t *testing.T) {
	t.Parallel()
	clock := &testClock{now: time.Now().UTC()}
	f := newAlertsFixtureWith(t, setup{now: clock.Now})
	t0 := clock.Now()
	get := func(t *testing.T) fleethealth.Fleet {
		t.Helper()
		r := f.do(req{method: http.MethodGet, path: "/v1/fleet", token: f.admin})
		require.Equal(t, http.StatusOK, r.status, string(r.body))
		var body fleethealth.Fleet
		require.NoError(t, json.Unmarshal(r.body, &body), string(r.body))
		return body
	}
	r := f.do(req{method: http.MethodPost, path: "/v1/heartbeat", token: f.host})
	require.Equal(t, http.StatusNoContent, r.status, string(r.body)) // its index line is written before its 204
	first := get(t)
	assert.Equal(t, t0, first.GeneratedAt)
	assert.Equal(t, []string{"lab-07"}, rowHosts(first))

	lab08 := f.mint(tokens.Identity{Host: "lab-08"})
	waitForToken(t, f.harness, f.client, lab08)
	clock.add(time.Second)
	r = f.do(req{method: http.MethodPost, path: "/v1/heartbeat", token: lab08})
	require.Equal(t, http.StatusNoContent, r.status, string(r.body))
	clock.add(3900 * time.Millisecond)
	again := get(t)
	assert.Equal(t, t0, again.GeneratedAt, "4.9 s later: the same evaluation")
	assert.Equal(t, []string{"lab-07"}, rowHosts(again))

	// Older than 5 s, younger than a fleet-health period: answered at once from the
	// last evaluation while a new one runs in the background; the next request has it.
	clock.add(100 * time.Millisecond)
	stale := get(t)
	assert.Equal(t, t0, stale.GeneratedAt, "5 s later: the last evaluation at once")
	var fresh fleethealth.Fleet
	require.Eventually(t, func() bool {
		r := f.do(req{method: http.MethodGet, path: "/v1/fleet", token: f.admin})
		fresh = fleethealth.Fleet{}
		return r.status == http.StatusOK && json.Unmarshal(r.body, &fresh) == nil && fresh.GeneratedAt.Equal(t0.Add(5*time.Second))
	}, 10*time.Second, 10*time.Millisecond, "the background evaluation as of 5 s later")
	assert.Equal(t, []string{"lab-07", "lab-08"}, rowHosts(fresh))

	// Older than a fleet-health period: the request waits for a new evaluation.
	clock.add(receiver.DefaultFleetStale)
	late := get(t)
	assert.Equal(t, t0.Add(5*time.Second+receiver.DefaultFleetStale), late.GeneratedAt)
}

func rowHosts(v fleethealth.Fleet) []string {
	out := []string{}
	for _, h := range v.Hosts {
		out = append(out, h.Host)
	}
	return out
}

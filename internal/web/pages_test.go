package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/alerts"
	"github.com/cis490/cis490/internal/fleethealth"
	"github.com/cis490/cis490/internal/index"
	"github.com/cis490/cis490/internal/protocol"
	"github.com/cis490/cis490/internal/silences"
)

func silencesRequest(host, symptom, dur, reason string) silences.Request {
	return silences.Request{Host: host, Symptom: symptom, For: dur, Reason: reason}
}

func doctorJSON(t testing.TB, status string, checks ...map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"schema": "cis490.doctor/v1", "host": "lab-02", "version": "1.4.0",
		"commit": "abcdef0123456789", "generated_at": testNow.Add(-31 * time.Minute), "received_at": testNow.Add(-30 * time.Minute),
		"status": status, "checks": checks})
	require.NoError(t, err)
	return b
}

var hostRowRE = regexp.MustCompile(`<tr data-host="([^"]+)" data-status="([^"]+)">`)

func rowsOf(page string) [][2]string {
	var out [][2]string
	for _, m := range hostRowRE.FindAllStringSubmatch(page, -1) {
		out = append(out, [2]string{m[1], m[2]})
	}
	return out
}

func TestSecurityHeaders(t *testing.T) {
	src := newFake()
	src.fleet = testFleet()
	h := signedIn(t, src, false)
	for _, path := range []string{"/", "/hosts/lab-01", "/signin", "/hosts/NOT_A_HOST"} {
		resp, _ := h.get(path)
		hd := resp.Header
		assert.Contains(t, hd.Get("Content-Security-Policy"), "default-src 'self'", path)
		assert.Contains(t, hd.Get("Content-Security-Policy"), "frame-ancestors 'none'", path)
		assert.NotContains(t, hd.Get("Content-Security-Policy"), "unsafe-inline", path)
		assert.Equal(t, "nosniff", hd.Get("X-Content-Type-Options"), path)
		assert.Equal(t, "no-referrer", hd.Get("Referrer-Policy"), path)
		assert.Equal(t, "DENY", hd.Get("X-Frame-Options"), path)
		assert.Equal(t, "no-store", hd.Get("Cache-Control"), path)
	}
}

func TestStaticAssets(t *testing.T) {
	src := newFake()
	h := newHarness(t, src, false)
	_, page := h.get("/signin") // no session needed for the style sheet
	m := regexp.MustCompile(`<link rel="stylesheet" href="(/static/page\.[0-9a-f]{12}\.css)">`).FindStringSubmatch(page)
	require.NotNil(t, m, "the page links its style sheet by a hashed name")
	resp, css := h.get(m[1])
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "text/css; charset=utf-8", resp.Header.Get("Content-Type"))
	assert.Equal(t, "public, max-age=31536000, immutable", resp.Header.Get("Cache-Control"))
	assert.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"))
	assert.Contains(t, css, ".status-ok")
	resp, _ = h.get("/static/page.css")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "no-cache", resp.Header.Get("Cache-Control"))
	resp, _ = h.get("/static/page.000000000000.css")
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
}

func TestFleetPage(t *testing.T) {
	src := newFake()
	src.fleet = testFleet()
	h := signedIn(t, src, false)
	resp, page := h.get("/")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"))
	assert.Equal(t, [][2]string{{"lab-02", "alerting"}, {"lab-03", "silenced"}, {"lab-04", "inactive"}, {"lab-01", "ok"}}, rowsOf(page),
		"Fleet's order, worst first")
	for _, want := range []string{
		`<html lang="en">`, `<meta name="viewport"`,
		`<table id="fleet">`, `<th scope="col">Host</th>`,
		`<span class="status status-alerting">alerting</span>`, `<span class="status status-ok">ok</span>`,
		`<a href="/hosts/lab-02">lab-02</a>`,
		`silent <span title="since 2026-11-28 15:00:00 UTC">for 3 h</span>`,
		`<time datetime="2026-11-28T17:56:00Z" title="2026-11-28 17:56:00 UTC">4 min ago</time>`,
		`<code>abcdef0</code> <span class="yes">✓<span class="vh"> allowed by the gate</span></span>`,
		`ok, 20 min`, `<td>25</td>`,
		`<span title="2026-11-28 22:00:00 UTC">in 4 h</span>`,
		`aria-label="requests in 24 h: 279 ok, 4 refused, 1 failed"`,
		`aria-label="requests in 24 h: 0 ok, 0 refused, 0 failed"`, // lab-02 has no Hourly: an empty sparkline
		`1 silent`, // alerting by symptom
		`<code>lab-99</code>`, `<code>192.0.2.7</code>`,
		`40.0 GiB`, `(minimum 1.0 GiB)`, `Version 1.4.0`, `<code>0123456</code>`, `Up <span title="since 2026-11-26 16:00:00 UTC">2 d 2 h</span>`,
		`<form id="filter" method="get" action="/">`, `<label for="q">`, `<input id="q" name="q"`, `<label for="status">`, `<select id="status" name="status">`,
		`<noscript><meta http-equiv="refresh" content="60"></noscript>`,
	} {
		assert.Contains(t, page, want)
	}
	assert.NotContains(t, page, "<script>", "no inline script")
	assert.NotContains(t, page, `style="`, "no inline style (the CSP forbids it)")
}

func TestFleetPageGateAndWarnings(t *testing.T) {
	src := newFake()
	src.fleet = testFleet()
	src.fleet.StateError = "fleet-health.json cannot be read: run fleet-health check"
	src.recv.FreeBytes = 1 << 30
	src.recv.Gate = []protocol.GateSource{
		{Name: protocol.GateSourceAllowlistFile, Loaded: true, LastOK: testNow.Add(-2 * time.Minute)},
		{Name: protocol.GateSourceGit, Loaded: true, LastOK: testNow.Add(-3 * time.Hour), FailingSince: testNow.Add(-150 * time.Minute)},
	}
	h := signedIn(t, src, false)
	_, page := h.get("/")
	assert.Contains(t, page, `<p id="state-error" class="warning" role="alert">Open alerts are unknown: fleet-health.json cannot be read`)
	assert.Contains(t, page, `<span class="bad">1.0 GiB</span>`, "under twice min_free_bytes")
	assert.Contains(t, page, `allowlist_file refreshed <time datetime="2026-11-28T17:58:00Z"`)
	assert.Contains(t, page, `git <span class="bad">failing <span title="2026-11-28 15:30:00 UTC">for 2 h</span></span>`)

	src.recv.Gate, src.recv.FreeErr = nil, errors.New("statfs /data: permission denied")
	_, page = h.get("/")
	assert.Contains(t, page, "Gate: open")
	assert.Contains(t, page, "unknown (statfs /data: permission denied)")
}

func TestFleetUnavailable(t *testing.T) {
	src := newFake()
	src.fleetErr = errors.New("index: permission denied")
	h := signedIn(t, src, false)
	resp, page := h.get("/")
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Contains(t, page, "index: permission denied")
}

func TestFleetFilters(t *testing.T) {
	src := newFake()
	src.fleet = testFleet()
	h := signedIn(t, src, false)
	for _, tc := range []struct {
		query string
		want  [][2]string
	}{
		{"?status=alerting", [][2]string{{"lab-02", "alerting"}}},
		{"?status=ok", [][2]string{{"lab-01", "ok"}}},
		{"?q=lab-0", [][2]string{{"lab-02", "alerting"}, {"lab-03", "silenced"}, {"lab-04", "inactive"}, {"lab-01", "ok"}}},
		{"?q=LAB-03", [][2]string{{"lab-03", "silenced"}}},
		{"?status=inactive&q=04", [][2]string{{"lab-04", "inactive"}}},
		{"?status=&q=", [][2]string{{"lab-02", "alerting"}, {"lab-03", "silenced"}, {"lab-04", "inactive"}, {"lab-01", "ok"}}},
	} {
		resp, page := h.get("/" + tc.query)
		require.Equal(t, http.StatusOK, resp.StatusCode, tc.query)
		assert.Equal(t, tc.want, rowsOf(page), tc.query)
		assert.NotContains(t, page, `id="no-match"`, tc.query)
	}
	_, page := h.get("/?status=alerting")
	assert.Contains(t, page, `<option value="alerting" selected>alerting</option>`)
	assert.Contains(t, page, "1 of 4 match the filter")

	_, page = h.get("/?status=ok&q=lab-02")
	assert.Empty(t, rowsOf(page))
	assert.Contains(t, page, `<p id="no-match" class="note" role="status">No host matches this filter (status ok, name containing “lab-02”)`)
	assert.Contains(t, page, `value="lab-02"`, "the form keeps the filter")

	resp, page := h.get("/?status=broken")
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Contains(t, page, `status &#34;broken&#34; is not a host status: use one of ok, alerting, silenced, inactive`)
	resp, _ = h.get("/?q=" + strings.Repeat("a", 254))
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
}

func TestHostPageBadNameAndUnknownHost(t *testing.T) {
	src := newFake()
	src.fleet = testFleet()
	h := signedIn(t, src, false)
	resp, page := h.get("/hosts/lab_02")
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Contains(t, page, "is not a host name")
	resp, page = h.get("/hosts/lab-77")
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	assert.Contains(t, page, "lab-77")
	// A host out of the fleet with a report still has a page.
	src.reports["lab-88"] = doctorJSON(t, "ok")
	resp, page = h.get("/hosts/lab-88")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, page, "Not in the fleet now")
	// The name is folded as the API folds it.
	resp, _ = h.get("/hosts/LAB-02")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}

func TestHostPage(t *testing.T) {
	src := newFake()
	src.fleet = testFleet()
	src.reports["lab-02"] = doctorJSON(t, "fail",
		map[string]any{"id": "config", "status": "ok", "summary": "config loads"},
		map[string]any{"id": "timers", "status": "skip", "summary": "no systemd"},
		map[string]any{"id": "token", "status": "fail", "summary": "the receiver refuses the token", "hint": "cis490 install lab-host --update-token"},
		map[string]any{"id": "clock", "status": "warn", "summary": "clock 2 min off", "hint": "timedatectl set-ntp true"})
	src.requests["lab-02"] = []index.Entry{
		{TS: testNow.Add(-210 * time.Minute), Host: "lab-02", Route: "heartbeat", Method: "POST", Status: 401, Remote: "10.0.0.2:5000", Error: "token refused", DurMS: 1.25},
		{TS: testNow.Add(-215 * time.Minute), Host: "lab-02", Route: "episodes", Method: "PUT", Status: 201, Bytes: 2048, Commit: "abcdef0123456789", Stamped: true},
	}
	src.alerts["lab-02"] = []alerts.Alert{{TS: testNow.Add(-3 * time.Hour), Host: "lab-02", Symptom: "silent", Severity: "critical", Status: "firing",
		Since: testNow.Add(-3 * time.Hour), Summary: "no request for 30m"}}
	src.silences["lab-02"] = []silences.View{{Silence: silences.Silence{ID: "0badf00d", Host: "lab-02", Symptom: "",
		Start: testNow.Add(time.Hour), End: testNow.Add(5 * time.Hour), Reason: "rack move", By: "bob"}, State: silences.StatePending}}
	h := signedIn(t, src, false)
	resp, page := h.get("/hosts/lab-02")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	for _, want := range []string{
		`<table id="checks">`,
		`<tr data-check="token" data-status="fail"><th scope="row"><code>token</code></th><td><span class="status status-fail">fail</span></td><td class="wrap">the receiver refuses the token<code class="hint">cis490 install lab-host --update-token</code></td></tr>`,
		`<tr data-check="clock" data-status="warn">`, `<tr data-check="timers" data-status="skip">`, `<tr data-check="config" data-status="ok">`,
		`received <time datetime="2026-11-28T17:30:00Z"`,
		`<table id="requests">`, `<td class="bad">401</td>`, `token refused`, `2.0 KiB`, `1.2 ms`,
		`<table id="alerts">`, `no request for 30m`,
		`<form class="end-silence inline" method="post" action="/hosts/lab-02/silences/0badf00d/end">`, `rack move`, `every symptom`, `pending`,
		`<form id="silence" method="post" action="/hosts/lab-02/silence">`,
		`<label for="symptom">`, `<select id="symptom" name="symptom"><option value="" selected>every symptom</option><option value="silent">silent</option>`,
		`<label for="for">`, `<select id="for" name="for"><option value="1h">1h</option><option value="4h" selected>4h</option>`, `<option value="7d">7d</option>`,
		`<label for="reason">`, `<input id="reason" name="reason" required`,
		`<table id="symptoms">`, `<table id="open-alerts">`,
	} {
		assert.Contains(t, page, want)
	}
	order := []string{`data-check="token"`, `data-check="clock"`, `data-check="config"`, `data-check="timers"`}
	for i := 1; i < len(order); i++ {
		assert.Less(t, strings.Index(page, order[i-1]), strings.Index(page, order[i]), "problems first")
	}
}

func TestHostPageSilenceChoicesFollowMax(t *testing.T) {
	src := newFake()
	src.fleet = testFleet()
	src.recv.MaxSilence = 24 * time.Hour
	h := signedIn(t, src, false)
	_, page := h.get("/hosts/lab-02")
	assert.Contains(t, page, `<option value="1d">1d</option>`)
	assert.NotContains(t, page, `<option value="3d">`)
	resp, _ := h.post("/hosts/lab-02/silence", url.Values{"csrf": {csrfOf(t, page)}, "for": {"3d"}, "reason": {"long"}})
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	made, _ := src.calls()
	assert.Empty(t, made)
}

func TestSilenceRefusedRerendersWithError(t *testing.T) {
	src := newFake()
	src.fleet = testFleet()
	src.silenceErr = fmt.Errorf("%w: a reason is required: say why", silences.ErrInvalid)
	h := signedIn(t, src, false)
	_, page := h.get("/hosts/lab-02")
	resp, page := h.post("/hosts/lab-02/silence", url.Values{"csrf": {csrfOf(t, page)}, "symptom": {"silent"}, "for": {"12h"}, "reason": {"  "}})
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Contains(t, page, `<p id="problem" class="error" role="alert">Nothing was silenced: invalid silence: a reason is required: say why.</p>`)
	assert.Contains(t, page, `<option value="12h" selected>`, "the form keeps what was sent")
	assert.Contains(t, page, `<option value="silent" selected>`)
	assert.NotContains(t, page, `http-equiv="refresh"`, "a reload would post again")

	resp, _ = h.post("/hosts/lab-02/silence", url.Values{"csrf": {csrfOf(t, page)}, "symptom": {"nonsense"}, "for": {"1h"}, "reason": {"x"}})
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
}

func TestEndSilence(t *testing.T) {
	src := newFake()
	src.fleet = testFleet()
	src.silences["lab-03"] = []silences.View{{Silence: silences.Silence{ID: "0badf00d", Host: "lab-03", Start: testNow.Add(-time.Hour),
		End: testNow.Add(4 * time.Hour), Reason: "maintenance"}, State: silences.StateActive}}
	h := signedIn(t, src, false)
	_, page := h.get("/hosts/lab-03")
	token := csrfOf(t, page)

	resp, _ := h.post("/hosts/lab-03/silences/0badf00d/end", url.Values{})
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	resp, _ = h.post("/hosts/lab-02/silences/0badf00d/end", url.Values{"csrf": {token}})
	assert.Equal(t, http.StatusNotFound, resp.StatusCode, "another host's silence is not this page's to end")
	_, ended := src.calls()
	assert.Empty(t, ended)

	resp, _ = h.post("/hosts/lab-03/silences/0badf00d/end", url.Values{"csrf": {token}})
	assert.Equal(t, http.StatusSeeOther, resp.StatusCode)
	assert.Equal(t, "/hosts/lab-03", resp.Header.Get("Location"))
	_, ended = src.calls()
	assert.Equal(t, []string{"0badf00d by alice"}, ended)

	src.endErr = fmt.Errorf("%w: silence 0badf00d already ended", silences.ErrOver)
	resp, page = h.post("/hosts/lab-03/silences/0badf00d/end", url.Values{"csrf": {token}})
	assert.Equal(t, http.StatusConflict, resp.StatusCode)
	assert.Contains(t, page, "already ended")
}

// A host name (as far as a valid one allows), a doctor summary and hint, a silence
// reason, an alert summary and names of the not tracked render as text.
func TestEscaping(t *testing.T) {
	const evil = `<script>alert(1)</script>`
	src := newFake()
	src.fleet = testFleet()
	src.fleet.Unproven = []string{evil}
	src.fleet.StateError = evil
	src.fleet.Hosts[0].Symptoms[0].Summary = evil
	src.reports["lab-02"] = doctorJSON(t, "fail", map[string]any{"id": evil, "status": "fail", "summary": evil, "hint": evil})
	src.alerts["lab-02"] = []alerts.Alert{{TS: testNow, Host: "lab-02", Symptom: evil, Status: "firing", Summary: evil}}
	src.requests["lab-02"] = []index.Entry{{TS: testNow, Host: "lab-02", Route: evil, Error: evil}}
	src.silences["lab-02"] = []silences.View{{Silence: silences.Silence{ID: "0badf00d", Reason: evil, By: evil,
		Start: testNow, End: testNow.Add(time.Hour)}, State: silences.StateActive}}
	h := signedIn(t, src, false)
	for _, path := range []string{"/", "/hosts/lab-02", "/hosts/" + url.PathEscape(evil), "/?q=" + url.QueryEscape(evil)} {
		resp, page := h.get(path)
		assert.NotContains(t, page, "<script>alert", path)
		assert.Equal(t, strings.Count(page, "<script"), strings.Count(page, `<script src="/static/refresh.`), "%s: the page's own script only", path)
		if resp.StatusCode == http.StatusOK && path != "/?q="+url.QueryEscape(evil) {
			assert.Contains(t, page, "&lt;script&gt;alert(1)&lt;/script&gt;", path)
		}
	}
	resp, page := h.get("/hosts/" + url.PathEscape(evil))
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Contains(t, page, "&lt;script&gt;alert(1)&lt;/script&gt;")
	_, page = h.get("/?q=" + url.QueryEscape(evil))
	assert.Contains(t, page, `value="&lt;script&gt;alert(1)&lt;/script&gt;"`)

	src.silenceErr = fmt.Errorf("%w: %s", silences.ErrInvalid, evil)
	_, page = h.get("/hosts/lab-02")
	_, page = h.post("/hosts/lab-02/silence", url.Values{"csrf": {csrfOf(t, page)}, "for": {"1h"}, "reason": {evil}})
	assert.NotContains(t, page, "<script>alert")
	assert.Contains(t, page, `value="&lt;script&gt;alert(1)&lt;/script&gt;"`)
}

// The fleet page's view of a row with every optional fact missing still renders.
func TestRowWithNothingKnown(t *testing.T) {
	v := facts(&fleethealth.Row{Host: "lab-05", Status: fleethealth.HostInactive}, testNow)
	assert.Equal(t, "none", v.Doctor)
	assert.Empty(t, v.Cert)
	assert.Empty(t, v.Mark)
	assert.Contains(t, string(v.Spark), `<path class="base"`)
}

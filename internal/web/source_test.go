package web

import (
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/alerts"
	"github.com/cis490/cis490/internal/fleethealth"
	"github.com/cis490/cis490/internal/index"
	"github.com/cis490/cis490/internal/silences"
)

// fakeSource is a test double of Source, written by hand: the real Source is the
// receiver (internal/receiver/page.go), which reads the data folder and is tested
// there against real files. Here the pages are tested against what a Source answers.
type fakeSource struct {
	mu       sync.Mutex
	fleet    fleethealth.Fleet
	fleetErr error
	recv     Receiver
	reports  map[string][]byte
	requests map[string][]index.Entry
	alerts   map[string][]alerts.Alert
	silences map[string][]silences.View
	// admins are the live admin tokens and their names; hostTokens are tokens of
	// hosts (Admin says no to them, as the receiver does).
	admins     map[string]string
	hostTokens map[string]bool
	// silenceErr is what Silence answers; made and ended record the calls.
	silenceErr error
	endErr     error
	made       []madeSilence
	ended      []string
	adminCalls int
}

type madeSilence struct {
	Req   silences.Request
	Admin string
}

func newFake() *fakeSource {
	return &fakeSource{
		reports: map[string][]byte{}, requests: map[string][]index.Entry{}, alerts: map[string][]alerts.Alert{},
		silences: map[string][]silences.View{}, admins: map[string]string{}, hostTokens: map[string]bool{},
		recv: Receiver{Host: "pi", Version: "1.4.0", Commit: "0123456789abcdef0123456789abcdef01234567",
			Started: testNow.Add(-50 * time.Hour), FreeBytes: 40 << 30, MinFreeBytes: 1 << 30},
	}
}

func (f *fakeSource) Fleet() (fleethealth.Fleet, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fleet, f.fleetErr
}

func (f *fakeSource) Receiver() Receiver {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.recv
}

func (f *fakeSource) Report(host string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r, ok := f.reports[host]; ok {
		return r, nil
	}
	return nil, fmt.Errorf("report of %s: %w", host, fs.ErrNotExist)
}

func (f *fakeSource) Requests(host string, n int) ([]index.Entry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	es := f.requests[host]
	return es[:min(n, len(es))], nil
}

func (f *fakeSource) Alerts(host string, n int) ([]alerts.Alert, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	as := f.alerts[host]
	return as[:min(n, len(as))], nil
}

func (f *fakeSource) Silences(host string) ([]silences.View, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.silences[host], nil
}

func (f *fakeSource) Silence(req silences.Request, admin string) (silences.Silence, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.silenceErr != nil {
		return silences.Silence{}, f.silenceErr
	}
	f.made = append(f.made, madeSilence{req, admin})
	return silences.Silence{ID: "5ca1ab1e", Host: req.Host, Symptom: req.Symptom, Reason: req.Reason, By: admin}, nil
}

func (f *fakeSource) EndSilence(id, admin string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.endErr != nil {
		return f.endErr
	}
	f.ended = append(f.ended, id+" by "+admin)
	return nil
}

func (f *fakeSource) Admin(token string) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.adminCalls++
	name, ok := f.admins[token]
	return name, ok
}

func (f *fakeSource) revoke(token string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.admins, token)
}

func (f *fakeSource) calls() (made []madeSilence, ended []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]madeSilence(nil), f.made...), append([]string(nil), f.ended...)
}

// Tokens of the test fleet: never printed anywhere, which the tests check.
const (
	adminToken = "adm1n-t0ken-SECRET-0f3c9a7e"
	hostToken  = "h0st-t0ken-SECRET-77a1b2c3"
)

var testNow = time.Date(2026, 11, 28, 18, 0, 0, 0, time.UTC)

// testFleet is a small fleet of every status.
func testFleet() fleethealth.Fleet {
	yes := true
	days := 25
	hourly := make([]fleethealth.HourCounts, fleethealth.SparkHours)
	for i := range hourly {
		hourly[i] = fleethealth.HourCounts{OK: 12}
	}
	hourly[20] = fleethealth.HourCounts{OK: 3, Refused: 4, Failed: 1}
	rows := []fleethealth.Row{
		{Host: "lab-02", Status: fleethealth.HostAlerting, WorstSymptom: fleethealth.Silent, WorstSeverity: fleethealth.Critical,
			WorstSince: testNow.Add(-3 * time.Hour), LastSeen: testNow.Add(-3*time.Hour - 30*time.Minute),
			Symptoms:   []fleethealth.Finding{{Symptom: fleethealth.Silent, Since: testNow.Add(-3 * time.Hour), Severity: fleethealth.Critical, Summary: "no request for 3h30m"}},
			OpenAlerts: []fleethealth.OpenAlert{{Symptom: fleethealth.Silent, Since: testNow.Add(-3 * time.Hour), Announced: true, Summary: "no request for 3h"}}},
		{Host: "lab-03", Status: fleethealth.HostSilenced, WorstSymptom: fleethealth.ReportFailing, WorstSeverity: fleethealth.Critical,
			WorstSince: testNow.Add(-time.Hour), LastSeen: testNow.Add(-2 * time.Minute), Commit: "abcdef0123456789", CommitAllowed: &yes,
			Silence: &fleethealth.SilenceRef{ID: "0badf00d", Until: testNow.Add(4 * time.Hour), Reason: "maintenance"}},
		{Host: "lab-04", Status: fleethealth.HostInactive},
		{Host: "lab-01", Status: fleethealth.HostOK, LastSeen: testNow.Add(-4 * time.Minute), LastEpisode: testNow.Add(-9 * time.Minute),
			Commit: "abcdef0123456789", CommitAllowed: &yes, CertDaysLeft: &days, Hourly: hourly,
			Report:   &fleethealth.Report{Status: "ok", ReceivedAt: testNow.Add(-20 * time.Minute)},
			Requests: fleethealth.Counts{Requests: 291, OK: 286, Refused: 4, Failed: 1}},
	}
	return fleethealth.Fleet{GeneratedAt: testNow, WindowFrom: testNow.Add(-24 * time.Hour), Hosts: rows,
		Unproven: []string{"lab-99"}, UnprovenCount: 1,
		RefusedHandshakes: []fleethealth.RefusedHandshake{{Remote: "192.0.2.7", Reason: "unknown_ca", Count: 3, Last: testNow.Add(-time.Hour)}}, RefusedHandshakesCount: 1}
}

// harness is the pages on a real loopback server, with a browser-like client: a
// cookie jar, no redirect followed (so a test sees each 303).
type harness struct {
	t     *testing.T
	src   *fakeSource
	pages *Pages
	srv   *httptest.Server
	c     *http.Client
	logs  *strings.Builder
	now   time.Time
	nowMu sync.Mutex
}

func newHarness(t *testing.T, src *fakeSource, tls bool) *harness {
	t.Helper()
	h := &harness{t: t, src: src, logs: &strings.Builder{}, now: testNow}
	logMu := &sync.Mutex{}
	logger := zerolog.New(zerolog.SyncWriter(lockedWriter{h.logs, logMu}))
	h.pages = New(Options{Source: src, Logger: logger, Now: h.clock})
	mux := http.NewServeMux()
	h.pages.Register(mux)
	if tls {
		h.srv = httptest.NewTLSServer(mux)
	} else {
		h.srv = httptest.NewServer(mux)
	}
	t.Cleanup(h.srv.Close)
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	h.c = h.srv.Client()
	h.c.Jar = jar
	h.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return h
}

type lockedWriter struct {
	b  *strings.Builder
	mu *sync.Mutex
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (h *harness) clock() time.Time {
	h.nowMu.Lock()
	defer h.nowMu.Unlock()
	return h.now
}

func (h *harness) advance(d time.Duration) {
	h.nowMu.Lock()
	defer h.nowMu.Unlock()
	h.now = h.now.Add(d)
}

// page is a GET's status, body and response.
func (h *harness) get(path string) (*http.Response, string) {
	h.t.Helper()
	resp, err := h.c.Get(h.srv.URL + path)
	require.NoError(h.t, err)
	return resp, body(h.t, resp)
}

func (h *harness) post(path string, form url.Values) (*http.Response, string) {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.srv.URL+path, strings.NewReader(form.Encode()))
	require.NoError(h.t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := h.c.Do(req)
	require.NoError(h.t, err)
	return resp, body(h.t, resp)
}

func body(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrfOf is the CSRF token a page's forms carry.
func csrfOf(t *testing.T, page string) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(page)
	require.NotNil(t, m, "the page has a form with a csrf field")
	return m[1]
}

// signIn signs in with token through the form, as a browser does: the form's page
// first (its CSRF cookie), then the POST.
func (h *harness) signIn(token string) (*http.Response, string) {
	h.t.Helper()
	_, page := h.get("/signin")
	return h.post("/signin", url.Values{"csrf": {csrfOf(h.t, page)}, "token": {token}})
}

// signedIn is a harness signed in as the admin "alice".
func signedIn(t *testing.T, src *fakeSource, tls bool) *harness {
	t.Helper()
	src.admins[adminToken] = "alice"
	h := newHarness(t, src, tls)
	resp, _ := h.signIn(adminToken)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	return h
}

func sessionCookieOf(resp *http.Response) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == sessionCookie {
			return c
		}
	}
	return nil
}

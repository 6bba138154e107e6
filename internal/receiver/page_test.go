package receiver_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/alerts"
	"github.com/cis490/cis490/internal/fleethealth"
	"github.com/cis490/cis490/internal/silences"
	"github.com/cis490/cis490/internal/tokens"
)

// browser is a visitor of the fleet page: cookies kept, redirects not followed (the
// tests look at them), no bearer token and no client certificate.
type browser struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newBrowser(t *testing.T, base string, transport http.RoundTripper) *browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &browser{t: t, base: base, c: &http.Client{Transport: transport, Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type page struct {
	status int
	header http.Header
	body   string
}

func (b *browser) get(path string) page {
	b.t.Helper()
	res, err := b.c.Get(b.base + path)
	require.NoError(b.t, err)
	return b.read(res)
}

func (b *browser) post(path string, form url.Values) page {
	b.t.Helper()
	res, err := b.c.PostForm(b.base+path, form)
	require.NoError(b.t, err)
	return b.read(res)
}

func (b *browser) read(res *http.Response) page {
	b.t.Helper()
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(b.t, err)
	return page{res.StatusCode, res.Header, string(body)}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf is the CSRF token of a page's forms.
func (p page) csrf(t *testing.T) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(p.body)
	require.NotNil(t, m, "no form with a CSRF token on the page:\n%s", p.body)
	return m[1]
}

// signIn signs in through the sign-in form with token and answers the form's answer.
func (b *browser) signIn(token string) page {
	b.t.Helper()
	form := b.get("/signin")
	require.Equal(b.t, http.StatusOK, form.status, form.body)
	return b.post("/signin", url.Values{"csrf": {form.csrf(b.t)}, "token": {token}, "next": {"/"}})
}

func (b *browser) cookie(name string) *http.Cookie {
	u, _ := url.Parse(b.base)
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// pageFixture is a receiver with tokens, an admin, and two hosts that sent a
// heartbeat; lab-07's doctor report fails, so it is alerting.
type pageFixture struct {
	*harness
	admin, lab07, lab08 string
}

func newPageFixture(t *testing.T) *pageFixture {
	t.Helper()
	h := newHarness(t, setup{tokens: true})
	f := &pageFixture{harness: h}
	f.admin = h.mint(tokens.Identity{Admin: "alice"})
	f.lab07 = h.mint(tokens.Identity{Host: "lab-07"})
	f.lab08 = h.mint(tokens.Identity{Host: "lab-08"})
	waitForToken(t, h, h.client, f.lab08)
	for _, tok := range []string{f.lab07, f.lab08} {
		r := h.do(req{method: http.MethodPost, path: "/v1/heartbeat", token: tok})
		require.Equal(t, http.StatusNoContent, r.status, "%s", r.body)
	}
	report := `{"status":"fail","checks":[{"id":"spool","status":"fail","summary":"the spool is full","hint":"cis490 ship --drain"}]}`
	r := h.do(req{method: http.MethodPut, path: "/v1/host-health/lab-07", token: f.lab07, body: strings.NewReader(report)})
	require.Equal(t, http.StatusNoContent, r.status, "%s", r.body)
	r = h.do(req{method: http.MethodPut, path: "/v1/host-health/lab-08", token: f.lab08, body: strings.NewReader(`{"status":"ok","checks":[]}`)})
	require.Equal(t, http.StatusNoContent, r.status, "%s", r.body)
	return f
}

func (f *pageFixture) browser() *browser { return newBrowser(f.t, f.ts.URL, f.client.Transport) }

func (f *pageFixture) fleet() fleethealth.Fleet {
	f.t.Helper()
	r := f.do(req{method: http.MethodGet, path: "/v1/fleet", token: f.admin})
	require.Equal(f.t, http.StatusOK, r.status, "%s", r.body)
	var v fleethealth.Fleet
	require.NoError(f.t, json.Unmarshal(r.body, &v))
	return v
}

func statusOf(v fleethealth.Fleet, host string) string {
	for _, r := range v.Hosts {
		if r.Host == host {
			return r.Status
		}
	}
	return "(no row)"
}

func TestFleetPageSignInThroughTheReceiver(t *testing.T) {
	t.Parallel()
	f := newPageFixture(t)
	b := f.browser()

	r := b.get("/")
	assert.Equal(t, http.StatusSeeOther, r.status, "no session: to the sign-in form")
	assert.Equal(t, "/signin", r.header.Get("Location"))

	r = b.signIn(f.admin)
	require.Equal(t, http.StatusSeeOther, r.status, r.body)
	assert.Equal(t, "/", r.header.Get("Location"))
	require.NotNil(t, b.cookie("cis490_session"), "signed in")

	r = b.get("/")
	require.Equal(t, http.StatusOK, r.status, r.body)
	assert.True(t, strings.HasPrefix(r.header.Get("Content-Type"), "text/html"), r.header.Get("Content-Type"))
	assert.Contains(t, r.body, `href="/hosts/lab-07"`)
	assert.Contains(t, r.body, `href="/hosts/lab-08"`)
	assert.Less(t, strings.Index(r.body, `href="/hosts/lab-07"`), strings.Index(r.body, `href="/hosts/lab-08"`),
		"worst first: lab-07's report fails")
	assert.Contains(t, r.body, "alice", "signed in as the admin the token names")

	// The host page: its failing check's hint, its index lines, its alerts.
	require.NoError(t, alerts.Append(f.data+"/alerts.jsonl", alerts.Alert{TS: time.Now().UTC(), Host: "lab-07",
		Symptom: fleethealth.ReportFailing, Severity: fleethealth.Critical, Status: alerts.StatusFiring,
		DedupKey: alerts.DedupKey("lab-07", fleethealth.ReportFailing, time.Now()), Since: time.Now().UTC(),
		Summary: "lab-07's doctor says fail (an alert of the test)", Evidence: json.RawMessage(`{}`)}))
	r = b.get("/hosts/lab-07")
	require.Equal(t, http.StatusOK, r.status, r.body)
	assert.Contains(t, r.body, "cis490 ship --drain")
	assert.Contains(t, r.body, "heartbeat", "its requests, from the index")
	assert.Contains(t, r.body, "(an alert of the test)")

	r = b.get("/hosts/lab-99")
	assert.Equal(t, http.StatusNotFound, r.status)
}

func TestFleetPageRefusesAHostToken(t *testing.T) {
	t.Parallel()
	f := newPageFixture(t)
	b := f.browser()
	r := b.signIn(f.lab07)
	assert.Equal(t, http.StatusUnauthorized, r.status)
	assert.Nil(t, b.cookie("cis490_session"), "no session for a host token")
	r = b.signIn("not-a-token-at-all")
	assert.Equal(t, http.StatusUnauthorized, r.status)
	assert.Nil(t, b.cookie("cis490_session"))
	r = b.get("/")
	assert.Equal(t, http.StatusSeeOther, r.status, "still signed out")
}

// The silence form makes the silence POST /v1/silences would: listed by the API, and
// the host shows silenced in the very next GET /v1/fleet (the cache is forgotten).
func TestFleetPageSilenceFormThroughTheReceiver(t *testing.T) {
	t.Parallel()
	f := newPageFixture(t)
	require.Equal(t, fleethealth.HostAlerting, statusOf(f.fleet(), "lab-07"), "evaluated and cached")

	b := f.browser()
	require.Equal(t, http.StatusSeeOther, b.signIn(f.admin).status)
	hostPage := b.get("/hosts/lab-07")
	require.Equal(t, http.StatusOK, hostPage.status, hostPage.body)
	r := b.post("/hosts/lab-07/silence", url.Values{"csrf": {hostPage.csrf(t)}, "symptom": {""}, "for": {"4h"}, "reason": {"replacing the spool disk"}})
	require.Equal(t, http.StatusSeeOther, r.status, r.body)

	views := f.silences()
	require.Len(t, views, 1)
	assert.Equal(t, "lab-07", views[0].Host)
	assert.Equal(t, "alice", views[0].By)
	assert.Equal(t, "replacing the spool disk", views[0].Reason)
	assert.Equal(t, silences.StateActive, views[0].State)
	assert.WithinDuration(t, time.Now().Add(4*time.Hour), views[0].End, time.Minute)
	assert.Equal(t, fleethealth.HostSilenced, statusOf(f.fleet(), "lab-07"), "right after, not 5 s later")
	assert.Contains(t, f.logs.String(), `"message":"silence made"`, "the API's log line")

	// The same checks as the API: a host nobody knows is refused, nothing written.
	r = b.post("/hosts/lab-99/silence", url.Values{"csrf": {hostPage.csrf(t)}, "for": {"4h"}, "reason": {"typo"}})
	assert.True(t, r.status >= 400 && r.status < 500, "refused: %d", r.status)
	assert.Len(t, f.silences(), 1)

	// A host page lists only its own silences.
	r2 := f.do(req{method: http.MethodPost, path: "/v1/silences", token: f.admin, header: map[string]string{"Content-Type": "application/json"},
		body: strings.NewReader(`{"host":"lab-08","for":"1h","reason":"lab-08's own"}`)})
	require.Equal(t, http.StatusCreated, r2.status, "%s", r2.body)
	hostPage = b.get("/hosts/lab-07")
	assert.Contains(t, hostPage.body, `data-silence="`+views[0].ID+`"`)
	assert.NotContains(t, hostPage.body, "lab-08's own")

	// Ending it from the page.
	require.Contains(t, hostPage.body, "/hosts/lab-07/silences/"+views[0].ID+"/end")
	r = b.post("/hosts/lab-07/silences/"+views[0].ID+"/end", url.Values{"csrf": {hostPage.csrf(t)}})
	require.Equal(t, http.StatusSeeOther, r.status, r.body)
	for _, v := range f.silences() {
		if v.ID == views[0].ID {
			assert.Equal(t, silences.StateEnded, v.State)
		}
	}
	assert.Equal(t, fleethealth.HostAlerting, statusOf(f.fleet(), "lab-07"))
	assert.Contains(t, f.logs.String(), `"message":"silence ended"`)
	assert.NotContains(t, b.get("/hosts/lab-07").body, `data-silence="`+views[0].ID+`"`, "an ended silence is not listed")
}

func (f *pageFixture) silences() []silences.View {
	f.t.Helper()
	r := f.do(req{method: http.MethodGet, path: "/v1/silences", token: f.admin})
	require.Equal(f.t, http.StatusOK, r.status, "%s", r.body)
	var views []silences.View
	require.NoError(f.t, json.Unmarshal(r.body, &views))
	return views
}

// The pages are not /v1: they write no index line, and no token reaches the log.
func TestFleetPageWritesNoIndexLineAndLogsNoToken(t *testing.T) {
	t.Parallel()
	f := newPageFixture(t)
	before := len(f.indexLines())
	b := f.browser()
	b.signIn(f.lab07)
	b.signIn("wrong-" + f.admin)
	require.Equal(t, http.StatusSeeOther, b.signIn(f.admin).status)
	for _, path := range []string{"/", "/?status=alerting&q=lab-0", "/hosts/lab-07", "/hosts/lab-08", "/hosts/nobody", "/signin", "/static/nope.css"} {
		b.get(path)
	}
	hostPage := b.get("/hosts/lab-07")
	b.post("/hosts/lab-07/silence", url.Values{"csrf": {hostPage.csrf(t)}, "for": {"4h"}, "reason": {"x"}})
	b.post("/signout", url.Values{"csrf": {hostPage.csrf(t)}})
	assert.Len(t, f.indexLines(), before, "page requests are not indexed")

	logs := f.logs.String()
	assert.Contains(t, logs, `"path":"/hosts/lab-07"`, "page requests have access lines")
	for _, tok := range []string{f.admin, f.lab07, f.lab08} {
		assert.NotContains(t, logs, tok)
	}
}

// GET /nope and the like are still the API's JSON 404; wrong methods on /v1 still 405.
func TestFleetPageLeavesUnknownPathsToTheAPI(t *testing.T) {
	t.Parallel()
	f := newPageFixture(t)
	for _, path := range []string{"/nope", "/hosts", "/hosts/lab-07/more", "/v1/nope", "/index.html"} {
		r := f.do(req{method: http.MethodGet, path: path, token: f.admin})
		assertAPIError(t, r, http.StatusNotFound, "not_found")
	}
	r := f.do(req{method: http.MethodPost, path: "/v1/fleet", token: f.admin})
	assertAPIError(t, r, http.StatusMethodNotAllowed, "method_not_allowed")
	r = f.do(req{method: http.MethodGet, path: "/healthz"})
	assert.Equal(t, http.StatusOK, r.status)
}

// Under mTLS (the real Run, its TLS configuration) the pages need no client
// certificate, as /healthz; the API still does. The session cookie is Secure.
func TestFleetPageNeedsNoClientCertificate(t *testing.T) {
	t.Parallel()
	m := startMTLS(t)
	noCert := m.client(nil)
	r, err := noCert.Get(m.url + "/v1/whoami")
	require.NoError(t, err)
	r.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, r.StatusCode, "the API asks for a certificate")

	b := newBrowser(t, m.url, noCert.Transport)
	assert.Equal(t, http.StatusSeeOther, b.get("/").status)
	si := b.signIn(m.admin)
	require.Equal(t, http.StatusSeeOther, si.status)
	var session string
	for _, c := range si.header.Values("Set-Cookie") {
		if strings.HasPrefix(c, "cis490_session=") {
			session = c
		}
	}
	assert.Contains(t, session, "; Secure")
	assert.Contains(t, session, "; HttpOnly")
	assert.Contains(t, session, "; SameSite=Strict")
	p := b.get("/")
	require.Equal(t, http.StatusOK, p.status, p.body)
	assert.Contains(t, p.body, "ops")
	assert.NotContains(t, m.logs.String(), m.admin)
}

// In open mode (loopback, no tokens file) the page needs no sign-in.
func TestFleetPageOpenMode(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	r := h.do(req{method: http.MethodPost, path: "/v1/heartbeat", host: "lab-07"})
	require.Equal(t, http.StatusNoContent, r.status, "%s", r.body)
	b := newBrowser(t, h.ts.URL, h.client.Transport)
	p := b.get("/")
	require.Equal(t, http.StatusOK, p.status, p.body)
	assert.Contains(t, p.body, `id="open-mode"`)
	assert.Contains(t, p.body, `href="/hosts/lab-07"`)
}

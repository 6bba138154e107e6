package web

import (
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/rs/zerolog/hlog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPageWithoutSessionGoesToSignIn(t *testing.T) {
	h := newHarness(t, newFake(), false)
	for path, loc := range map[string]string{
		"/":              "/signin",
		"/hosts/lab-01":  "/signin?next=%2Fhosts%2Flab-01",
		"/?status=ok&q=": "/signin", // only the path is remembered
	} {
		resp, _ := h.get(path)
		assert.Equal(t, http.StatusSeeOther, resp.StatusCode, path)
		assert.Equal(t, loc, resp.Header.Get("Location"), path)
	}
}

func TestSignInWrongTokenMakesNoSession(t *testing.T) {
	src := newFake()
	src.admins[adminToken] = "alice"
	h := newHarness(t, src, false)
	resp, page := h.signIn("not-the-token-SECRET")
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Contains(t, page, "not an admin token")
	assert.Empty(t, resp.Header.Values("Set-Cookie"), "no cookie, session or other")
	assert.Zero(t, h.pages.sessions.len())
	assert.NotContains(t, page, "not-the-token-SECRET")
	resp, _ = h.get("/")
	assert.Equal(t, http.StatusSeeOther, resp.StatusCode, "still not signed in")
}

func TestSignInRefusesHostToken(t *testing.T) {
	src := newFake()
	src.hostTokens[hostToken] = true
	h := newHarness(t, src, false)
	resp, page := h.signIn(hostToken)
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Contains(t, page, "not an admin token")
	assert.Nil(t, sessionCookieOf(resp))
	assert.Zero(t, h.pages.sessions.len())
}

func TestSignInCookieFlags(t *testing.T) {
	for _, tls := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "tls"}[tls], func(t *testing.T) {
			src := newFake()
			src.admins[adminToken] = "alice"
			h := newHarness(t, src, tls)
			_, page := h.get("/signin")
			resp, _ := h.post("/signin", url.Values{"csrf": {csrfOf(t, page)}, "token": {adminToken}, "next": {"/hosts/lab-01"}})
			require.Equal(t, http.StatusSeeOther, resp.StatusCode)
			assert.Equal(t, "/hosts/lab-01", resp.Header.Get("Location"))
			c := sessionCookieOf(resp)
			require.NotNil(t, c)
			assert.True(t, c.HttpOnly)
			assert.Equal(t, http.SameSiteStrictMode, c.SameSite)
			assert.Equal(t, tls, c.Secure)
			assert.Equal(t, 43200, c.MaxAge)
			assert.Equal(t, "/", c.Path)
			assert.True(t, wellFormed(c.Value), "a random 256-bit id")
			assert.NotContains(t, c.Value, adminToken)
			assert.Equal(t, 1, h.pages.sessions.len())
			resp, page = h.get("/")
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Contains(t, page, `<form id="signout" method="post" action="/signout">`)
			assert.Contains(t, page, "Sign out alice")
		})
	}
}

func TestSignInRedirectStaysLocal(t *testing.T) {
	for next, want := range map[string]string{
		"/hosts/lab-01":        "/hosts/lab-01",
		"/":                    "/",
		"":                     "/",
		"//evil.example/":      "/",
		"/\\evil.example":      "/",
		"https://evil.example": "/",
		"hosts/lab-01":         "/",
		"/?token=x":            "/",
		"/a\nb":                "/",
	} {
		assert.Equal(t, want, localPath(next), "%q", next)
	}
}

func TestSignInNeedsItsCSRFCookie(t *testing.T) {
	src := newFake()
	src.admins[adminToken] = "alice"
	h := newHarness(t, src, false)
	// No form page first: no CSRF cookie, so the field proves nothing.
	resp, _ := h.post("/signin", url.Values{"csrf": {randomToken()}, "token": {adminToken}})
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	assert.Nil(t, sessionCookieOf(resp))
	assert.Zero(t, src.adminCalls, "the token is not even checked")
}

func TestSilenceCSRF(t *testing.T) {
	src := newFake()
	src.fleet = testFleet()
	h := signedIn(t, src, false)
	_, page := h.get("/hosts/lab-02")
	token := csrfOf(t, page)
	form := url.Values{"symptom": {"silent"}, "for": {"4h"}, "reason": {"moving racks"}}

	resp, page := h.post("/hosts/lab-02/silence", form)
	assert.Equal(t, http.StatusForbidden, resp.StatusCode, "no token")
	assert.Contains(t, page, "nothing was changed")
	form.Set("csrf", randomToken())
	resp, _ = h.post("/hosts/lab-02/silence", form)
	assert.Equal(t, http.StatusForbidden, resp.StatusCode, "a wrong token")
	made, _ := src.calls()
	assert.Empty(t, made, "Silence not called")

	form.Set("csrf", token)
	resp, _ = h.post("/hosts/lab-02/silence", form)
	assert.Equal(t, http.StatusSeeOther, resp.StatusCode)
	assert.Equal(t, "/hosts/lab-02", resp.Header.Get("Location"))
	made, _ = src.calls()
	require.Len(t, made, 1)
	assert.Equal(t, madeSilence{Req: silencesRequest("lab-02", "silent", "4h", "moving racks"), Admin: "alice"}, made[0])
}

func TestCrossSitePostRefused(t *testing.T) {
	src := newFake()
	src.fleet = testFleet()
	h := signedIn(t, src, false)
	_, page := h.get("/hosts/lab-02")
	form := url.Values{"csrf": {csrfOf(t, page)}, "for": {"4h"}, "reason": {"x"}}
	post := func(headers ...string) int {
		req, err := http.NewRequest(http.MethodPost, h.srv.URL+"/hosts/lab-02/silence", strings.NewReader(form.Encode()))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for i := 0; i < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		resp, err := h.c.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	for name, hdr := range map[string][]string{
		"origin":                  {"Origin", "https://evil.example"},
		"cross-site":              {"Sec-Fetch-Site", "cross-site"},
		"same-site":               {"Sec-Fetch-Site", "same-site"},
		"null origin, cross-site": {"Origin", "null", "Sec-Fetch-Site", "cross-site"},
	} {
		assert.Equal(t, http.StatusForbidden, post(hdr...), name)
	}
	made, _ := src.calls()
	assert.Empty(t, made)
	// The browser's own forms pass: Chromium sends Origin: null under the pages'
	// Referrer-Policy: no-referrer.
	assert.Equal(t, http.StatusSeeOther, post("Origin", "null", "Sec-Fetch-Site", "same-origin"))
	assert.Equal(t, http.StatusSeeOther, post("Origin", h.srv.URL, "Sec-Fetch-Site", "same-origin"))
	assert.Equal(t, http.StatusSeeOther, post("Origin", h.srv.URL))
}

func TestFormBodyLimit(t *testing.T) {
	src := newFake()
	src.fleet = testFleet()
	h := signedIn(t, src, false)
	_, page := h.get("/hosts/lab-02")
	resp, _ := h.post("/hosts/lab-02/silence", url.Values{"csrf": {csrfOf(t, page)}, "for": {"4h"}, "reason": {strings.Repeat("x", 20<<10)}})
	assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	made, _ := src.calls()
	assert.Empty(t, made)
}

func TestSignOutEndsSession(t *testing.T) {
	src := newFake()
	h := signedIn(t, src, false)
	_, page := h.get("/")
	resp, _ := h.post("/signout", url.Values{"csrf": {"wrong"}})
	assert.Equal(t, http.StatusForbidden, resp.StatusCode, "sign-out is CSRF-checked too")
	assert.Equal(t, 1, h.pages.sessions.len())

	resp, _ = h.post("/signout", url.Values{"csrf": {csrfOf(t, page)}})
	assert.Equal(t, http.StatusSeeOther, resp.StatusCode)
	assert.Equal(t, "/signin", resp.Header.Get("Location"))
	c := sessionCookieOf(resp)
	require.NotNil(t, c)
	assert.Equal(t, -1, c.MaxAge, "the cookie is cleared")
	assert.Zero(t, h.pages.sessions.len())
	resp, _ = h.get("/")
	assert.Equal(t, http.StatusSeeOther, resp.StatusCode)
}

func TestSessionCookieReplayedAfterSignOutRefused(t *testing.T) {
	src := newFake()
	h := signedIn(t, src, false)
	u, _ := url.Parse(h.srv.URL)
	var id string
	for _, c := range h.c.Jar.Cookies(u) {
		if c.Name == sessionCookie {
			id = c.Value
		}
	}
	require.NotEmpty(t, id)
	_, page := h.get("/")
	h.post("/signout", url.Values{"csrf": {csrfOf(t, page)}})
	req, _ := http.NewRequest(http.MethodGet, h.srv.URL+"/", nil)
	req.AddCookie(&http.Cookie{Name: sessionCookie, Value: id})
	resp, err := (&http.Client{CheckRedirect: h.c.CheckRedirect}).Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusSeeOther, resp.StatusCode)
}

func TestRevokedAdminTokenEndsSession(t *testing.T) {
	src := newFake()
	h := signedIn(t, src, false)
	resp, _ := h.get("/")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	src.revoke(adminToken)
	resp, _ = h.get("/")
	assert.Equal(t, http.StatusSeeOther, resp.StatusCode)
	assert.Equal(t, "/signin", resp.Header.Get("Location"))
	assert.Zero(t, h.pages.sessions.len(), "the session is gone, not just refused")
}

func TestSessionExpires(t *testing.T) {
	src := newFake()
	h := signedIn(t, src, false)
	h.advance(12*time.Hour - time.Second)
	resp, _ := h.get("/")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	h.advance(time.Second)
	resp, _ = h.get("/")
	assert.Equal(t, http.StatusSeeOther, resp.StatusCode)
	assert.Zero(t, h.pages.sessions.len())
}

func TestSessionsBoundedAndSwept(t *testing.T) {
	st := newSessionStore(3)
	now := testNow
	for i := range 3 {
		st.add(&session{id: string(rune('a' + i)), created: now.Add(time.Duration(i) * time.Second), expires: now.Add(time.Hour)}, now)
	}
	st.add(&session{id: "d", created: now.Add(time.Minute), expires: now.Add(time.Hour)}, now)
	assert.Equal(t, 3, st.len())
	assert.Nil(t, st.get("a", now), "the oldest was dropped")
	assert.NotNil(t, st.get("b", now))

	later := now.Add(2 * time.Hour) // every one has expired
	st.add(&session{id: "e", created: later, expires: later.Add(time.Hour)}, later)
	assert.Equal(t, 1, st.len(), "expired sessions are swept")
}

// No token in a log line, a page or a Location: through a sign-in, a failed one,
// pages, a silence and a sign-out.
func TestNoTokenInLogsPagesOrURLs(t *testing.T) {
	src := newFake()
	src.fleet = testFleet()
	src.admins[adminToken] = "alice"
	h := newHarness(t, src, false)
	var seen []string
	keep := func(resp *http.Response, page string) {
		seen = append(seen, page, resp.Header.Get("Location"), resp.Request.URL.String())
		for _, c := range resp.Cookies() {
			if c.Name != sessionCookie {
				seen = append(seen, c.Value)
			}
		}
	}
	keep(h.signIn(hostToken))
	keep(h.signIn("typo" + adminToken))
	keep(h.signIn(adminToken))
	keep(h.get("/"))
	resp, page := h.get("/hosts/lab-02")
	keep(resp, page)
	keep(h.post("/hosts/lab-02/silence", url.Values{"csrf": {csrfOf(t, page)}, "for": {"1h"}, "reason": {"r"}}))
	keep(h.post("/signout", url.Values{"csrf": {csrfOf(t, page)}}))

	logs := h.logs.String()
	assert.Contains(t, logs, `"admin":"alice"`, "the success names the admin")
	assert.Contains(t, logs, `"admin":"unknown token"`)
	assert.Contains(t, logs, `"remote":"127.0.0.1:`)
	for _, secret := range []string{adminToken, hostToken, "SECRET"} {
		assert.NotContains(t, logs, secret)
		for _, s := range seen {
			assert.NotContains(t, s, secret)
		}
	}
}

func TestOpenModeNeedsNoSignIn(t *testing.T) {
	src := newFake()
	src.fleet = testFleet()
	src.recv.Open = true
	h := newHarness(t, src, false)
	resp, page := h.get("/")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, page, `<div id="open-mode" class="banner" role="status">`)
	assert.Contains(t, page, "anyone who can reach it can silence hosts")
	assert.NotContains(t, page, `id="signout"`)
	resp, _ = h.get("/signin")
	assert.Equal(t, http.StatusSeeOther, resp.StatusCode)
	assert.Zero(t, src.adminCalls, "open mode never checks a token")

	// Forms still carry a CSRF token, tied to a cookie.
	_, page = h.get("/hosts/lab-02")
	form := url.Values{"for": {"1h"}, "reason": {"maintenance"}}
	resp, _ = h.post("/hosts/lab-02/silence", form)
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	form.Set("csrf", csrfOf(t, page))
	resp, _ = h.post("/hosts/lab-02/silence", form)
	assert.Equal(t, http.StatusSeeOther, resp.StatusCode)
	made, _ := src.calls()
	require.Len(t, made, 1)
	assert.Equal(t, "open", made[0].Admin)

	// A client without the cookie (another site's form) has no token to send.
	other := &http.Client{CheckRedirect: h.c.CheckRedirect}
	req, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/hosts/lab-02/silence", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := other.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
}

func TestBannerAbsentWithTokens(t *testing.T) {
	src := newFake()
	src.fleet = testFleet()
	h := signedIn(t, src, false)
	_, page := h.get("/")
	assert.NotContains(t, page, `id="open-mode"`)
	_, page = h.get("/hosts/lab-02")
	assert.NotContains(t, page, `id="open-mode"`)
}

func TestPostWithoutSessionChangesNothing(t *testing.T) {
	src := newFake()
	src.fleet = testFleet()
	h := newHarness(t, src, false)
	resp, _ := h.post("/hosts/lab-02/silence", url.Values{"csrf": {randomToken()}, "for": {"1h"}, "reason": {"x"}})
	assert.Equal(t, http.StatusSeeOther, resp.StatusCode)
	assert.Equal(t, "/signin?next=%2Fhosts%2Flab-02", resp.Header.Get("Location"), "back to the form's page after signing in")
	resp, _ = h.post("/hosts/lab-02/silences/0badf00d/end", url.Values{"csrf": {randomToken()}})
	assert.Equal(t, http.StatusSeeOther, resp.StatusCode)
	made, ended := src.calls()
	assert.Empty(t, made)
	assert.Empty(t, ended)
}

// Behind the receiver's middleware, the pages log through the request's logger (it
// carries the request id).
func TestLogsThroughRequestLogger(t *testing.T) {
	src := newFake()
	src.admins[adminToken] = "alice"
	mu := &sync.Mutex{}
	var own, reqLog strings.Builder
	p := New(Options{Source: src, Logger: zerolog.New(lockedWriter{&own, mu}), Now: func() time.Time { return testNow }})
	mux := http.NewServeMux()
	p.Register(mux)
	srv := httptest.NewServer(hlog.NewHandler(zerolog.New(lockedWriter{&reqLog, mu}).With().Str("req", "r1").Logger())(mux))
	t.Cleanup(srv.Close)
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(srv.URL + "/signin")
	require.NoError(t, err)
	page := body(t, resp)
	resp, err = c.PostForm(srv.URL+"/signin", url.Values{"csrf": {csrfOf(t, page)}, "token": {adminToken}})
	require.NoError(t, err)
	resp.Body.Close()
	mu.Lock()
	defer mu.Unlock()
	assert.Contains(t, reqLog.String(), `"req":"r1"`)
	assert.Contains(t, reqLog.String(), "signed in")
	assert.Empty(t, own.String())
}

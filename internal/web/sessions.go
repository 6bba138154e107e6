package web

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode"
)

// Sign-in (SPEC §3.5). A browser has no client certificate and no bearer header, so
// the pages keep their own sessions: an admin token typed into the sign-in form
// becomes a random 256-bit session id in an HttpOnly, SameSite=Strict cookie. The
// token stays in the session, in memory only, and is checked again (Source.Admin) on
// every request, so revoking it ends its sessions at once. Every POST carries a CSRF
// token: the session's, or before a session (the sign-in form; open mode) one
// double-submitted in a cookie of its own.

const (
	sessionCookie = "cis490_session"
	csrfCookie    = "cis490_csrf"
	// maxSessions bounds the memory sessions take: past it, the oldest is dropped.
	maxSessions = 1000
	// maxFormBytes bounds a form's body: the longest (a silence) is a few hundred bytes.
	maxFormBytes = 16 << 10
	// openAdmin is who made a silence in open mode, as the API says (role "open").
	openAdmin = "open"
)

type session struct {
	id, token, csrf string
	created         time.Time
	expires         time.Time
}

// sessionStore holds the sessions, in memory only: a restart signs everyone out.
type sessionStore struct {
	mu   sync.Mutex
	byID map[string]*session
	max  int
}

func newSessionStore(max int) *sessionStore {
	return &sessionStore{byID: map[string]*session{}, max: max}
}

// add stores s, first sweeping the expired sessions and, at the bound, the oldest.
func (st *sessionStore) add(s *session, now time.Time) {
	st.mu.Lock()
	defer st.mu.Unlock()
	for id, old := range st.byID {
		if !now.Before(old.expires) {
			delete(st.byID, id)
		}
	}
	for len(st.byID) >= st.max {
		var oldest *session
		for _, old := range st.byID {
			if oldest == nil || old.created.Before(oldest.created) {
				oldest = old
			}
		}
		delete(st.byID, oldest.id)
	}
	st.byID[s.id] = s
}

// get is the live session with this id; an expired one is removed.
func (st *sessionStore) get(id string, now time.Time) *session {
	st.mu.Lock()
	defer st.mu.Unlock()
	s := st.byID[id]
	if s != nil && !now.Before(s.expires) {
		delete(st.byID, id)
		return nil
	}
	return s
}

func (st *sessionStore) remove(id string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	delete(st.byID, id)
}

func (st *sessionStore) len() int {
	st.mu.Lock()
	defer st.mu.Unlock()
	return len(st.byID)
}

// randomToken is 256 random bits, as a cookie or form field carries them.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand: it crashes the program instead)
	return base64.RawURLEncoding.EncodeToString(b)
}

// wellFormed is whether s could be a randomToken: anything else in a cookie was not
// set by these pages.
func wellFormed(s string) bool {
	if len(s) != 43 {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(s)
	return err == nil
}

func sameToken(want, got string) bool {
	return want != "" && subtle.ConstantTimeCompare([]byte(want), []byte(got)) == 1
}

// visitor is who is looking at a page, and the state of the receiver they look at.
type visitor struct {
	recv  Receiver
	open  bool
	sess  *session // nil in open mode
	admin string   // the admin's name; openAdmin in open mode
	csrf  string   // what this visitor's forms carry
}

// visit is the visitor of a page request, or false when it was answered: without a
// live session (or with a revoked token) it went to the sign-in form.
func (p *Pages) visit(w http.ResponseWriter, r *http.Request) (*visitor, bool) {
	v := &visitor{recv: p.src.Receiver()}
	if v.recv.Open {
		v.open, v.admin = true, openAdmin
		v.csrf = p.preSessionCSRF(w, r)
		return v, true
	}
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		p.toSignIn(w, r)
		return nil, false
	}
	s := p.sessions.get(c.Value, p.now())
	if s == nil {
		p.toSignIn(w, r)
		return nil, false
	}
	name, ok := p.src.Admin(s.token)
	if !ok {
		p.sessions.remove(s.id)
		p.logger(r).Info().Str("remote", r.RemoteAddr).Msg("fleet page: a session ended: its admin token is no longer valid")
		p.clearSession(w, r)
		p.toSignIn(w, r)
		return nil, false
	}
	v.sess, v.admin, v.csrf = s, name, s.csrf
	return v, true
}

// preSessionCSRF is the CSRF token of a visitor without a session: the one its
// cookie carries, or a new one set now (a form posted from this page will send it
// back). A POST needs the cookie: a new one set by that same POST proves nothing.
func (p *Pages) preSessionCSRF(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(csrfCookie); err == nil && wellFormed(c.Value) {
		return c.Value
	}
	if r.Method == http.MethodPost {
		return ""
	}
	t := randomToken()
	http.SetCookie(w, &http.Cookie{Name: csrfCookie, Value: t, Path: "/", HttpOnly: true, Secure: r.TLS != nil,
		SameSite: http.SameSiteStrictMode})
	return t
}

// toSignIn sends a visitor without a session to the sign-in form, remembering only
// the path to come back to (a POST comes back to the page its form was on).
func (p *Pages) toSignIn(w http.ResponseWriter, r *http.Request) {
	next := r.URL.Path
	if r.Method == http.MethodPost {
		next = "/"
		if host := r.PathValue("host"); host != "" && r.URL.Path != "/signout" {
			next = "/hosts/" + url.PathEscape(host)
		}
	}
	loc := "/signin"
	if next = localPath(next); next != "/" {
		loc += "?next=" + url.QueryEscape(next)
	}
	http.Redirect(w, r, loc, http.StatusSeeOther)
}

// localPath is next when it is a path on this server ("/", "/hosts/lab-01"), else
// "/": a sign-in never sends anyone elsewhere ("//evil.example", "/\evil", a scheme).
func localPath(next string) string {
	if len(next) == 0 || next[0] != '/' || len(next) > 512 {
		return "/"
	}
	if len(next) > 1 && (next[1] == '/' || next[1] == '\\') {
		return "/"
	}
	if strings.ContainsAny(next, "\\?#") || strings.ContainsFunc(next, unicode.IsControl) {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return "/"
	}
	return next
}

// checkPost is what every POST passes before it changes anything: the request comes
// from this origin, its form is small, and it carries the visitor's CSRF token.
// False when it was answered (400, 403 or 413).
func (p *Pages) checkPost(w http.ResponseWriter, r *http.Request, v *visitor) bool {
	if !sameOrigin(r) {
		p.fail(w, r, v, http.StatusForbidden, "Refused", "This form was sent from another site, so nothing was changed. Use the form on this receiver's own page.")
		return false
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			p.fail(w, r, v, http.StatusRequestEntityTooLarge, "Form too large", "The form is larger than 16 KiB, so nothing was changed. Shorten the reason and send it again.")
			return false
		}
		p.fail(w, r, v, http.StatusBadRequest, "Bad form", "The form could not be read, so nothing was changed: send it again from the page.")
		return false
	}
	if !sameToken(v.csrf, r.PostForm.Get("csrf")) {
		p.fail(w, r, v, http.StatusForbidden, "Refused", "The form's security token is missing or out of date (a page from before a sign-in, or from another tab), so nothing was changed. Reload the page and send the form again.")
		return false
	}
	return true
}

// sameOrigin refuses a cross-site POST where the browser says it is one: by
// Sec-Fetch-Site, or else by Origin. SameSite=Strict cookies and the CSRF token
// refuse it anyway; this refuses it before the form is read. An Origin of "null"
// says nothing: it is what Chromium sends for the pages' own forms, since their
// Referrer-Policy is no-referrer.
func sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
		return site == "same-origin" || site == "none"
	}
	origin := r.Header.Get("Origin")
	if origin == "" || origin == "null" {
		return true
	}
	u, err := url.Parse(origin)
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host)
}

func (p *Pages) setSession(w http.ResponseWriter, r *http.Request, s *session) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: s.id, Path: "/", MaxAge: int(p.ttl / time.Second),
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
}

func (p *Pages) clearSession(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
}

// signinView is the sign-in form.
type signinView struct {
	frame
	Next    string
	Problem string
	TTL     string
}

func (p *Pages) signinPage(w http.ResponseWriter, r *http.Request) {
	rs := p.src.Receiver()
	next := localPath(r.URL.Query().Get("next"))
	if rs.Open {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	if c, err := r.Cookie(sessionCookie); err == nil {
		if s := p.sessions.get(c.Value, p.now()); s != nil {
			if _, ok := p.src.Admin(s.token); ok {
				http.Redirect(w, r, next, http.StatusSeeOther)
				return
			}
		}
	}
	v := &visitor{recv: rs, csrf: p.preSessionCSRF(w, r)}
	p.render(w, r, http.StatusOK, p.signinT, signinView{frame: p.frame(v, "Sign in"), Next: next, TTL: span(p.ttl)}, nil)
}

// signin checks an admin token as the API does and starts a session. Neither the
// token nor anything derived from it reaches a log line, a URL or the page.
func (p *Pages) signin(w http.ResponseWriter, r *http.Request) {
	rs := p.src.Receiver()
	if rs.Open {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	v := &visitor{recv: rs, csrf: p.preSessionCSRF(w, r)}
	if !p.checkPost(w, r, v) {
		return
	}
	next := localPath(r.PostForm.Get("next"))
	token := strings.TrimSpace(r.PostForm.Get("token"))
	name, ok := "", false
	if token != "" {
		name, ok = p.src.Admin(token)
	}
	if !ok {
		p.logger(r).Warn().Str("admin", "unknown token").Str("remote", r.RemoteAddr).Msg("fleet page: sign-in refused: not an admin token")
		view := signinView{frame: p.frame(v, "Sign in"), Next: next, TTL: span(p.ttl),
			Problem: "That is not an admin token. Sign in with a token the receiver's tokens file lists as an admin's (a host's token will not do)."}
		p.render(w, r, http.StatusUnauthorized, p.signinT, view, nil)
		return
	}
	now := p.now()
	s := &session{id: randomToken(), token: token, csrf: randomToken(), created: now, expires: now.Add(p.ttl)}
	p.sessions.add(s, now)
	p.setSession(w, r, s)
	p.logger(r).Info().Str("admin", name).Str("remote", r.RemoteAddr).Msg("fleet page: signed in")
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (p *Pages) signout(w http.ResponseWriter, r *http.Request) {
	if p.src.Receiver().Open {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	v, ok := p.visit(w, r)
	if !ok {
		return
	}
	if !p.checkPost(w, r, v) {
		return
	}
	p.sessions.remove(v.sess.id)
	p.clearSession(w, r)
	p.logger(r).Info().Str("admin", v.admin).Str("remote", r.RemoteAddr).Msg("fleet page: signed out")
	http.Redirect(w, r, "/signin", http.StatusSeeOther)
}

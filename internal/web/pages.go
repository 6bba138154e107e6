package web

import (
	"bytes"
	"compress/gzip"
	"embed"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

//go:embed templates/*.html
var templateFS embed.FS

// Options are what the pages need from the receiver.
type Options struct {
	Source Source
	Logger zerolog.Logger
	Now    func() time.Time // nil: time.Now
	// SessionTTL is how long a sign-in lasts; 0: 12 h.
	SessionTTL time.Duration
}

// Pages are the fleet page's handlers (Register mounts them).
type Pages struct {
	src      Source
	log      zerolog.Logger
	now      func() time.Time
	ttl      time.Duration
	sessions *sessionStore
	assets   []asset // page.css first
	css, js  string  // their hashed URLs

	fleetT, hostT, signinT, errorT *template.Template
}

// DefaultSessionTTL is how long a sign-in lasts unless Options say otherwise.
const DefaultSessionTTL = 12 * time.Hour

// New parses the templates (once: a render only executes them) and starts with no
// session.
func New(opts Options) *Pages {
	p := &Pages{src: opts.Source, log: opts.Logger, now: opts.Now, ttl: opts.SessionTTL, sessions: newSessionStore(maxSessions)}
	if p.now == nil {
		p.now = time.Now
	}
	if p.ttl <= 0 {
		p.ttl = DefaultSessionTTL
	}
	p.assets = []asset{loadAsset("page.css", "text/css; charset=utf-8"), loadAsset("refresh.js", "text/javascript; charset=utf-8")}
	p.css, p.js = p.assets[0].url(), p.assets[1].url()
	base := template.Must(template.New("base").ParseFS(templateFS, "templates/layout.html"))
	page := func(name string) *template.Template {
		return template.Must(template.Must(base.Clone()).ParseFS(templateFS, "templates/"+name))
	}
	p.fleetT, p.hostT, p.signinT, p.errorT = page("fleet.html"), page("host.html"), page("signin.html"), page("error.html")
	return p
}

// Register adds the page routes to the receiver's mux. They need no client
// certificate or bearer token: the pages check their own session (sessions.go).
func (p *Pages) Register(mux *http.ServeMux) {
	mux.Handle("GET /{$}", secure(p.fleetPage))
	mux.Handle("GET /hosts/{host}", secure(p.hostPage))
	mux.Handle("POST /hosts/{host}/silence", secure(p.silence))
	mux.Handle("POST /hosts/{host}/silences/{id}/end", secure(p.endSilence))
	mux.Handle("GET /signin", secure(p.signinPage))
	mux.Handle("POST /signin", secure(p.signin))
	mux.Handle("POST /signout", secure(p.signout))
	mux.Handle("GET /static/{file}", secure(p.static))
}

// csp allows the page's own style sheet and script, nothing inline, no frames, and
// forms posting only back here.
const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; object-src 'none'; " +
	"base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// secure sets the headers every answer of the pages carries, the redirects and the
// style sheet included; a page adds Cache-Control: no-store when it renders.
func secure(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", csp)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Cross-Origin-Opener-Policy", "same-origin")
		if !strings.HasPrefix(r.URL.Path, "/static/") {
			hd.Set("Cache-Control", "no-store")
		}
		h(w, r)
	})
}

// logger is the request's logger when the receiver's middleware gave it one (it
// carries the request id), else Options.Logger.
func (p *Pages) logger(r *http.Request) *zerolog.Logger {
	if l := zerolog.Ctx(r.Context()); l.GetLevel() != zerolog.Disabled && l != zerolog.DefaultContextLogger {
		return l
	}
	return &p.log
}

// frame is what the layout shows around every page.
type frame struct {
	Title   string
	CSS, JS string
	// Refresh: reload every 60 s (not a page that answered a form: reloading it would
	// post the form again).
	Refresh bool
	Open    bool
	// SignedIn: the sign-out button, as Admin, carrying CSRF.
	SignedIn bool
	Admin    string
	CSRF     string
}

func (p *Pages) frame(v *visitor, title string) frame {
	f := frame{Title: title, CSS: p.css, JS: p.js}
	if v != nil {
		f.Open, f.CSRF = v.open, v.csrf
		f.SignedIn, f.Admin = v.sess != nil, v.admin
	}
	return f
}

var (
	bufs    = sync.Pool{New: func() any { return new(bytes.Buffer) }}
	writers = sync.Pool{New: func() any { return new(htmlWriter) }}
	gzips   = sync.Pool{New: func() any { w, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed); return w }}
)

// render writes a whole page or, when a template fails, a 500 and no half page. rows,
// when not nil, writes the fleet table's rows between the page's two halves ("page",
// "page-end"; markup.go says why in Go).
//
// A page goes gzipped to a browser that takes it: the 300-host fleet page is 280 KB,
// 25 KB gzipped. Compressing a page that holds a secret (the CSRF token) beside
// text an attacker chooses (the ?q= filter) is what BREACH guesses the secret from,
// by making the victim's browser load many variants; here the cookies are
// SameSite=Strict, so a request another site makes carries no session and no CSRF
// cookie, and its page holds a fresh token that guessing cannot converge on.
func (p *Pages) render(w http.ResponseWriter, r *http.Request, status int, t *template.Template, data any, rows func(*htmlWriter)) {
	buf := bufs.Get().(*bytes.Buffer)
	buf.Reset()
	defer bufs.Put(buf)
	err := t.ExecuteTemplate(buf, "page", data)
	if err == nil && rows != nil {
		hw := writers.Get().(*htmlWriter)
		hw.b = hw.b[:0]
		rows(hw)
		buf.Write(hw.b)
		writers.Put(hw)
		err = t.ExecuteTemplate(buf, "page-end", data)
	}
	if err != nil {
		p.logger(r).Error().Err(err).Msg("fleet page: render failed")
		http.Error(w, "the page could not be rendered: the receiver's log says why", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Add("Vary", "Accept-Encoding")
	if !acceptsGzip(r) {
		h.Set("Content-Length", strconv.Itoa(buf.Len()))
		w.WriteHeader(status)
		_, _ = w.Write(buf.Bytes())
		return
	}
	h.Set("Content-Encoding", "gzip")
	w.WriteHeader(status)
	zw := gzips.Get().(*gzip.Writer)
	zw.Reset(w)
	_, _ = zw.Write(buf.Bytes())
	_ = zw.Close()
	gzips.Put(zw)
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(coding), "gzip") && strings.ReplaceAll(strings.TrimSpace(params), " ", "") != "q=0" {
			return true
		}
	}
	return false
}

// errorView is a page that only says what went wrong.
type errorView struct {
	frame
	Message string
}

func (p *Pages) fail(w http.ResponseWriter, r *http.Request, v *visitor, status int, title, message string) {
	p.render(w, r, status, p.errorT, errorView{frame: p.frame(v, title), Message: message}, nil)
}

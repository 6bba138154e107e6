// Package receiver is the Pi's HTTP server: authentication, the version gate, episode
// uploads, host-health reports and the request index (SPEC §3).
package receiver

import (
	"fmt"
	"net/http"
	"runtime/debug"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"github.com/rs/zerolog/hlog"

	"github.com/cis490/cis490/internal/ca"
	"github.com/cis490/cis490/internal/config"
	"github.com/cis490/cis490/internal/gate"
	"github.com/cis490/cis490/internal/index"
	"github.com/cis490/cis490/internal/protocol"
	"github.com/cis490/cis490/internal/store"
	"github.com/cis490/cis490/internal/tokens"
	"github.com/cis490/cis490/internal/web"
)

// Options are a Server's parts; Run builds them from the configuration, tests may
// build them by hand.
type Options struct {
	Config config.Serve
	Store  *store.Store
	Index  *index.Writer
	Gate   *gate.Gate
	Tokens *tokens.Store // nil: open mode
	Logger zerolog.Logger
	// Metrics is optional; nil gets a private registry.
	Metrics *Metrics
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
	// StallTimeout is how long an upload may send nothing before the connection is
	// dropped; 0 means one minute.
	StallTimeout time.Duration
	// Fleet is where fleet health keeps its output (GET /v1/alerts, /v1/fleet).
	Fleet FleetOptions
	// CA is data_dir/ca/ when the receiver is the lab's CA; nil: it issues nothing.
	CA *ca.CA
	// LimitWait is how long an upload over serve.max_uploads or max_uploads_per_host
	// waits for a slot before it is answered 503; 0 means one second.
	LimitWait time.Duration
	// MinBodyRate is the slowest an upload's body may arrive once its first bytes are
	// in, in bytes a second averaged over BodyRateWindow; 0 means 1 KiB/s over 60 s.
	MinBodyRate    int64
	BodyRateWindow time.Duration
	// Episodes is where episodes go; nil means Store (serve.storage.backend fs).
	Episodes store.Episodes
}

// Server answers the v1 API.
type Server struct {
	cfg          config.Serve
	unstamped    string
	store        *store.Store
	episodes     store.Episodes
	index        *index.Writer
	gate         *gate.Gate
	tokens       *tokens.Store
	log          zerolog.Logger
	metrics      *Metrics
	now          func() time.Time
	stallTimeout time.Duration
	draining     atomic.Bool
	fleet        FleetOptions
	fleetView    *fleetCache // GET /v1/fleet's latest evaluation (fleetcache.go)
	ca           *ca.CA
	started      time.Time // by the clock: the fleet page's uptime

	uploads        *uploadLimiter
	minBodyRate    int64
	bodyRateWindow time.Duration
	requests       requestCounter
	cutting        atomic.Bool  // drain_timeout reached: what still runs is being cut
	cut            atomic.Int64 // uploads cut
}

// New returns a Server; it starts nothing.
func New(opts Options) *Server {
	s := &Server{
		cfg:          opts.Config,
		unstamped:    opts.Config.Gate.Unstamped,
		store:        opts.Store,
		episodes:     opts.Episodes,
		index:        opts.Index,
		gate:         opts.Gate,
		tokens:       opts.Tokens,
		log:          opts.Logger,
		metrics:      opts.Metrics,
		now:          opts.Now,
		stallTimeout: opts.StallTimeout,
		fleet:        opts.Fleet,
		ca:           opts.CA,

		minBodyRate:    opts.MinBodyRate,
		bodyRateWindow: opts.BodyRateWindow,
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.started = s.now()
	if s.episodes == nil {
		s.episodes = s.store
	}
	s.fleetView = s.newFleetCache()
	if s.stallTimeout == 0 {
		s.stallTimeout = time.Minute
	}
	if s.minBodyRate == 0 {
		s.minBodyRate = 1024
	}
	if s.bodyRateWindow == 0 {
		s.bodyRateWindow = time.Minute
	}
	wait := opts.LimitWait
	if wait == 0 {
		wait = time.Second
	}
	s.uploads = newUploadLimiter(opts.Config.MaxUploads, opts.Config.MaxUploadsPerHost, wait)
	if s.metrics == nil {
		s.metrics = NewMetrics(s.gate, s.store)
	}
	return s
}

// Drain makes the server answer 503 to every new request while in-flight ones finish.
func (s *Server) Drain() { s.draining.Store(true) }

// route is one v1 endpoint. Each is written once, in routes: the mux gets its handler
// from it and its path's method-not-allowed answer, so the two cannot disagree.
type route struct {
	method, path string
	name         string // the request index's "route"
	handler      http.HandlerFunc
	gated        bool // behind the version gate
}

func (s *Server) routes() []route {
	return []route{
		{http.MethodPut, "/v1/episodes", "episodes", s.limited(s.putEpisode), true},
		{http.MethodHead, "/v1/episodes/{sha256}", "episodes", s.headEpisode, true}, // resume.go
		{http.MethodPost, "/v1/heartbeat", "heartbeat", s.heartbeat, true},
		{http.MethodPut, "/v1/host-health/{host}", "host-health", s.putHostHealth, false},
		{http.MethodGet, "/v1/host-health/{host}", "host-health", s.getHostHealth, false},
		{http.MethodGet, "/v1/host-health", "host-health", s.listHostHealth, false},
		{http.MethodGet, "/v1/whoami", "whoami", s.whoami, false},
		{http.MethodGet, "/v1/alerts", "alerts", s.getAlerts, false},
		{http.MethodGet, "/v1/fleet", "fleet", s.getFleet, false},
		{http.MethodGet, "/v1/silences", "silences", s.listSilences, false},
		{http.MethodPost, "/v1/silences", "silences", s.postSilence, false},
		{http.MethodDelete, "/v1/silences/{id}", "silences", s.deleteSilence, false},
		{http.MethodGet, "/v1/releases", "releases", s.listReleases, false},
		{http.MethodPut, "/v1/releases/{commit}", "releases", s.putRelease, false},
		{http.MethodGet, "/v1/releases/{commit}", "releases", s.getRelease, false}, // and /v1/releases/target (releases.go)
		{http.MethodGet, "/v1/releases/{commit}/{file}", "releases", s.getReleaseFile, false},
		{http.MethodPost, "/v1/certs/{host}", "certs", s.postCert, false},
	}
}

// Handler is the whole HTTP API.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	allowed := map[string][]string{} // path: its methods
	for _, rt := range s.routes() {
		var next http.Handler = rt.handler
		if rt.gated {
			next = s.gated(next)
		}
		mux.Handle(rt.method+" "+rt.path, s.indexed(rt.name, s.authenticated(next)))
		allowed[rt.path] = append(allowed[rt.path], rt.method)
	}
	// JSON answers for wrong methods and unknown paths instead of the mux's plain text.
	for path, methods := range allowed {
		slices.Sort(methods)
		mux.Handle(path, s.indexed("method", s.authenticated(methodNotAllowed(strings.Join(methods, ", ")))))
	}
	mux.Handle("/v1/", s.indexed("unknown", s.authenticated(http.HandlerFunc(notFound))))
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.Handle("/healthz", methodNotAllowed("GET"))
	// The fleet page (SPEC §3.5, page.go): outside /v1, so not indexed and asking for
	// no bearer token or client certificate, like /healthz; it has its own sign-in.
	web.New(web.Options{Source: pageSource{s}, Logger: s.log, Now: s.now}).Register(mux)
	mux.HandleFunc("/", notFound)

	return s.withRequestLogs(mux)
}

// withRequestLogs gives every request an id and an access line, and is where the
// shutdown counts requests in flight.
func (s *Server) withRequestLogs(h http.Handler) http.Handler {
	h = recovered(h)
	h = hlog.AccessHandler(s.accessLog)(h)
	h = hlog.RequestIDHandler("req_id", protocol.HeaderRequestID)(h)
	h = hlog.NewHandler(s.log)(h)
	// Outermost: a shutdown that waits for the requests it cut waits for their log lines too.
	h = s.requests.track(h)
	return h
}

// refuseDraining answers 503 once shutdown has begun; requests in flight finish.
func (s *Server) refuseDraining(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Connection", "close")
	w.Header().Set("Retry-After", "30")
	fail(w, r, http.StatusServiceUnavailable, codeShuttingDown, "the receiver is shutting down: retry shortly")
}

// recovered logs a handler's panic as a line about its request, with its id: net/http
// would log it without. The connection is then dropped, as net/http does.
func recovered(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			switch v := recover(); v {
			case nil:
			case http.ErrAbortHandler:
				panic(v)
			default:
				hlog.FromRequest(r).Error().Str("panic", fmt.Sprint(v)).Str("stack", string(debug.Stack())).
					Str("method", r.Method).Str("path", r.URL.Path).Msg("request panicked")
				panic(http.ErrAbortHandler) // logged: net/http only drops the connection
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// accessLog logs each request without its headers or query: no token reaches a log.
func (s *Server) accessLog(r *http.Request, status, size int, dur time.Duration) {
	ev := hlog.FromRequest(r).Info()
	if status >= 500 {
		ev = hlog.FromRequest(r).Warn()
	}
	ev.Str("method", r.Method).Str("path", r.URL.Path).Int("status", status).Int("size", size).
		Str("dur", dur.Round(time.Microsecond).String()).Str("remote", r.RemoteAddr).Msg("request")
}

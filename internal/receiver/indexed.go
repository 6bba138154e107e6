package receiver

import (
	"context"
	"net/http"
	"time"

	"github.com/rs/zerolog/hlog"

	"github.com/cis490/cis490/internal/gate"
	"github.com/cis490/cis490/internal/index"
)

type recordKey struct{}

// record collects what a handler learned about a request, for its index line.
type record struct {
	Host    string
	Route   string
	Bytes   int64
	SHA256  string
	Commit  string
	Stamped bool
	Error   string
	// Unverified: Host is only what an unauthenticated request claimed.
	Unverified bool
	// Gate is the version gate's view of the request's stamp.
	Gate gate.Decision

	start time.Time
	// indexed: the handler wrote the line itself, before answering (writeIndexLine).
	indexed bool
}

// recordOf returns the request's record; a throwaway one outside the /v1 tree, so
// handlers never need to check.
func recordOf(r *http.Request) *record {
	if rec, ok := r.Context().Value(recordKey{}).(*record); ok {
		return rec
	}
	return &record{}
}

// statusWriter remembers the status code a handler answered with.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// indexed writes one index line per request once it has finished, and counts it in
// the metrics. Fleet health reads these lines, so refused requests matter as much as
// accepted ones.
func (s *Server) indexed(route string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &record{Route: route, start: time.Now()}
		sw := &statusWriter{ResponseWriter: w}
		r = r.WithContext(context.WithValue(r.Context(), recordKey{}, rec))
		if r.Method == http.MethodPut || r.Method == http.MethodPost {
			// A body that stops arriving must not pin the connection; uploads push this
			// deadline forward while data flows (countingReader). Not for GETs: a read
			// deadline would end a streaming ?follow=1 answer.
			_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(s.stallTimeout))
		}
		if s.draining.Load() {
			s.refuseDraining(sw, r)
		} else {
			next.ServeHTTP(sw, r)
		}
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		s.metrics.observe(route, sw.status, rec.Bytes, time.Since(rec.start))
		if rec.indexed {
			return
		}
		if err := s.writeIndexLine(r, sw.status); err != nil {
			hlog.FromRequest(r).Error().Err(err).Msg("could not write the request index: fleet health will not see this request")
		}
	})
}

// writeIndexLine appends the request's index line as if answered with status. A
// handler whose answer claims the request was recorded (a heartbeat's 204) calls it
// before answering, and answers otherwise when it fails; the line is then not
// written again when the request ends.
func (s *Server) writeIndexLine(r *http.Request, status int) error {
	rec := recordOf(r)
	id, _ := hlog.IDFromRequest(r)
	err := s.index.Append(index.Entry{
		TS:      s.now().UTC(),
		ID:      id.String(),
		Host:    rec.Host,
		Route:   rec.Route,
		Method:  r.Method,
		Status:  status,
		Bytes:   rec.Bytes,
		SHA256:  rec.SHA256,
		Commit:  rec.Commit,
		Stamped: rec.Stamped,
		DurMS:   float64(time.Since(rec.start).Microseconds()) / 1000,
		Remote:  r.RemoteAddr,
		Error:   rec.Error,

		Unverified: rec.Unverified,
	})
	rec.indexed = err == nil
	return err
}

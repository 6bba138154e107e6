package receiver

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cis490/cis490/internal/gate"
	"github.com/cis490/cis490/internal/store"
)

// Metrics is the receiver's Prometheus registry. It is built per server, never
// registered globally, so tests and several servers in one process do not collide.
type Metrics struct {
	reg         *prometheus.Registry
	requests    *prometheus.CounterVec
	received    prometheus.Counter
	upload      prometheus.Histogram
	gateRefused prometheus.Counter
	// storageErrors counts the requests to the object store (serve.storage s3) that
	// failed, by operation (objstore.Ops).
	storageErrors *prometheus.CounterVec
	// resumedUploads and resumedBytes count uploads that continued a partial, and the
	// bytes their hosts did not send again (SPEC §3.3).
	resumedUploads, resumedBytes prometheus.Counter
}

// NewMetrics registers the receiver's metrics; g and st feed the gauges read at scrape.
func NewMetrics(g *gate.Gate, st *store.Store) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cis490_requests_total", Help: "API requests by route and status code.",
		}, []string{"route", "code"}),
		received: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cis490_received_bytes_total", Help: "Request body bytes received on the API.",
		}),
		upload: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "cis490_upload_duration_seconds",
			Help:    "Time to receive, verify and store one episode upload.",
			Buckets: prometheus.ExponentialBuckets(0.005, 4, 10),
		}),
		gateRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cis490_gate_refused_total", Help: "Requests refused because their commit is not on the allow-list.",
		}),
	}
	m.storageErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cis490_storage_errors_total", Help: "Requests to the object store holding episodes that failed (unreachable, 5xx, refused, stalled), by operation.",
	}, []string{"op"})
	m.resumedUploads = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "cis490_resumed_uploads_total", Help: "Episode uploads stored by a PUT that continued a partial upload (Upload-Offset).",
	})
	m.resumedBytes = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "cis490_resumed_bytes_total", Help: "Bytes of partial uploads that resumed uploads did not have to send again.",
	})
	reg.MustRegister(m.requests, m.received, m.upload, m.gateRefused, m.storageErrors, m.resumedUploads, m.resumedBytes,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if g != nil {
		reg.MustRegister(
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "cis490_gate_allowlist_entries", Help: "Commits on the merged allow-list.",
			}, func() float64 { return float64(g.Stats().Entries) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "cis490_gate_refresh_errors_total", Help: "Allow-list source refreshes that failed (the last good list was kept).",
			}, func() float64 { return float64(g.Stats().RefreshErrors) }),
		)
	}
	if st != nil {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "cis490_disk_free_bytes", Help: "Free bytes on the data folder's file system.",
		}, func() float64 {
			free, err := st.FreeBytes()
			if err != nil {
				return -1
			}
			return float64(free)
		}))
	}
	return m
}

func (m *Metrics) observe(route string, status int, bytes int64, dur time.Duration) {
	m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	m.received.Add(float64(bytes))
	if route == "episodes" && status == http.StatusCreated { // duplicates are answered without reading the body
		m.upload.Observe(dur.Seconds())
	}
}

// resumed counts an upload stored by continuing a partial of from bytes.
func (m *Metrics) resumed(from int64) {
	m.resumedUploads.Inc()
	m.resumedBytes.Add(float64(from))
}

// StorageError counts a failed request to the object store.
func (m *Metrics) StorageError(op string) { m.storageErrors.WithLabelValues(op).Inc() }

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

package receiver_test

import (
	"bufio"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/config"
	"github.com/cis490/cis490/internal/gate"
	"github.com/cis490/cis490/internal/index"
	"github.com/cis490/cis490/internal/receiver"
	"github.com/cis490/cis490/internal/store"
	"github.com/cis490/cis490/internal/testutil"
)

// newMetricsHarness is an open-mode receiver like newHarness, built with Metrics of its
// own so the test can scrape them the way serve.metrics_listen serves them.
func newMetricsHarness(t *testing.T, allow []string) (*harness, *httptest.Server) {
	t.Helper()
	root := t.TempDir()
	h := &harness{t: t, root: root, data: filepath.Join(root, "data"), logs: &testutil.SyncBuffer{}}
	log := zerolog.New(h.logs)
	cfg := config.Default().Serve
	cfg.DataDir = h.data
	cfg.Gate.Unstamped = config.UnstampedAllow
	st, err := store.Open(h.data, store.Options{Logger: log})
	require.NoError(t, err)
	h.index, err = index.OpenWriter(filepath.Join(h.data, "index"))
	require.NoError(t, err)
	t.Cleanup(func() { h.index.Close() })
	list := filepath.Join(t.TempDir(), "allowlist")
	require.NoError(t, os.WriteFile(list, []byte(strings.Join(allow, "\n")+"\n"), 0o600))
	g := gate.New([]gate.Source{gate.NewFileSource(list)}, gate.Options{Logger: log})
	require.NoError(t, g.Refresh(t.Context()))

	m := receiver.NewMetrics(g, st)
	h.srv = receiver.New(receiver.Options{Config: cfg, Store: st, Index: h.index, Gate: g, Logger: log, Metrics: m})
	h.ts = httptest.NewServer(h.srv.Handler())
	t.Cleanup(h.ts.Close)
	h.client = h.ts.Client()
	metrics := httptest.NewServer(m.Handler())
	t.Cleanup(metrics.Close)
	return h, metrics
}

// sample is one line of the Prometheus text format.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// scrape fetches and parses a metrics page: enough of the text format for our own
// metrics (no escaped quotes or commas in label values).
func scrape(url string) ([]sample, error) {
	res, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	var out []sample
	sc := bufio.NewScanner(io.LimitReader(res.Body, 4<<20))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			return nil, err
		}
		s := sample{name: line[:i], labels: map[string]string{}, value: v}
		if name, labels, ok := strings.Cut(s.name, "{"); ok {
			s.name = name
			for _, kv := range strings.Split(strings.TrimSuffix(labels, "}"), ",") {
				k, v, _ := strings.Cut(kv, "=")
				s.labels[k] = strings.Trim(v, `"`)
			}
		}
		out = append(out, s)
	}
	return out, sc.Err()
}

// value returns the sample named name whose labels include want; -1 when there is none.
func value(samples []sample, name string, want map[string]string) float64 {
next:
	for _, s := range samples {
		if s.name != name {
			continue
		}
		for k, v := range want {
			if s.labels[k] != v {
				continue next
			}
		}
		return s.value
	}
	return -1
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	allow := []string{allowedCommit, allowedShort}
	h, metrics := newMetricsHarness(t, allow)
	before, err := scrape(metrics.URL)
	require.NoError(t, err)
	assert.Equal(t, -1.0, value(before, "cis490_requests_total", nil), "no request counted yet")
	assert.Equal(t, 0.0, value(before, "cis490_received_bytes_total", nil))

	d1, d2 := []byte("first episode"), []byte("second, longer episode")
	require.Equal(t, http.StatusCreated, h.upload(req{host: "lab-a", commit: allowedCommit}, "ep1.tar", d1).status)
	require.Equal(t, http.StatusCreated, h.upload(req{host: "lab-a", commit: allowedCommit}, "ep2.tar", d2).status)
	require.Equal(t, http.StatusOK, h.upload(req{host: "lab-a", commit: allowedCommit}, "ep1.tar", d1).status)
	require.Equal(t, http.StatusUpgradeRequired, h.upload(req{host: "lab-a", commit: refusedCommit}, "ep3.tar", []byte("x")).status)
	require.Equal(t, http.StatusNoContent, h.do(req{method: http.MethodPost, path: "/v1/heartbeat", host: "lab-a", body: jsonBody("ping")}).status)

	require.Eventually(t, func() bool {
		s, err := scrape(metrics.URL)
		return err == nil && value(s, "cis490_requests_total", map[string]string{"route": "heartbeat", "code": "204"}) == 1
	}, 5*time.Second, 20*time.Millisecond)
	got, err := scrape(metrics.URL)
	require.NoError(t, err)

	requests := func(route, code string) float64 {
		return value(got, "cis490_requests_total", map[string]string{"route": route, "code": code})
	}
	assert.Equal(t, 2.0, requests("episodes", "201"))
	assert.Equal(t, 1.0, requests("episodes", "200"))
	assert.Equal(t, 1.0, requests("episodes", "426"))
	assert.Equal(t, -1.0, requests("episodes", "400"), "no label for what did not happen")
	assert.Equal(t, float64(len(d1)+len(d2)+len("ping")), value(got, "cis490_received_bytes_total", nil),
		"bytes read: a duplicate and a refused upload are answered without reading their bodies")
	assert.Equal(t, 2.0, value(got, "cis490_upload_duration_seconds_count", nil), "the two created; a duplicate reads no body")
	assert.Greater(t, value(got, "cis490_upload_duration_seconds_sum", nil), 0.0)
	assert.Equal(t, 1.0, value(got, "cis490_gate_refused_total", nil))
	assert.Equal(t, float64(len(allow)), value(got, "cis490_gate_allowlist_entries", nil))
	assert.Equal(t, 0.0, value(got, "cis490_gate_refresh_errors_total", nil))
	assert.Greater(t, value(got, "cis490_disk_free_bytes", nil), 0.0)
}

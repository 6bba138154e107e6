package web

import (
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/alerts"
	"github.com/cis490/cis490/internal/fleethealth"
	"github.com/cis490/cis490/internal/index"
)

// bigFleet is n hosts as a busy lab might show them: most ok with a full day of
// heartbeats, some alerting (critical and warning), silenced, inactive; every
// optional fact filled, so each row is as long as a row gets.
func bigFleet(n int, now time.Time) fleethealth.Fleet {
	yes, no := true, false
	fl := fleethealth.Fleet{GeneratedAt: now, WindowFrom: now.Add(-24 * time.Hour)}
	for i := range n {
		days := 29 - i%30
		r := fleethealth.Row{
			Host: fmt.Sprintf("lab-%03d.cs.example.edu", i), Status: fleethealth.HostOK,
			LastSeen: now.Add(-time.Duration(i%5) * time.Minute), LastEpisode: now.Add(-time.Duration(i%50) * time.Minute),
			Commit: "0123456789abcdef0123456789abcdef01234567", CommitAllowed: &yes, CertDaysLeft: &days,
			Report: &fleethealth.Report{Status: "ok", ReceivedAt: now.Add(-time.Duration(i%60) * time.Minute)},
			Hourly: make([]fleethealth.HourCounts, fleethealth.SparkHours),
		}
		for h := range r.Hourly {
			r.Hourly[h] = fleethealth.HourCounts{OK: 12 + (i+h)%7}
			if (i+h)%11 == 0 {
				r.Hourly[h].Refused = 1 + h%3
			}
			if (i+h)%29 == 0 {
				r.Hourly[h].Failed = 1
			}
		}
		switch {
		case i%10 == 0:
			r.Status, r.WorstSymptom, r.WorstSeverity, r.WorstSince = fleethealth.HostAlerting, fleethealth.FatalOnly, fleethealth.Critical, now.Add(-2*time.Hour)
			r.CommitAllowed = &no
			r.OpenAlerts = []fleethealth.OpenAlert{{Symptom: fleethealth.FatalOnly}}
		case i%10 == 1:
			r.Status, r.WorstSymptom, r.WorstSeverity, r.WorstSince = fleethealth.HostAlerting, fleethealth.ReportWarning, fleethealth.Warning, now.Add(-5*time.Hour)
			r.Report.Status = "warn"
		case i%25 == 2:
			r.Status, r.WorstSymptom, r.WorstSeverity = fleethealth.HostSilenced, fleethealth.Silent, fleethealth.Critical
			r.Silence = &fleethealth.SilenceRef{ID: "0badf00d", Until: now.Add(3 * time.Hour), Reason: "rack move"}
		case i%50 == 3:
			r.Status, r.Hourly, r.LastSeen, r.LastEpisode, r.Report = fleethealth.HostInactive, nil, time.Time{}, time.Time{}, nil
		}
		fl.Hosts = append(fl.Hosts, r)
	}
	fl.Unproven, fl.UnprovenCount = []string{"lab-999", "lab-x"}, 2
	return fl
}

// discard is a ResponseWriter that keeps only the byte count: the benchmark times
// the render, not a recorder's copying.
type discard struct {
	h http.Header
	n int
}

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) WriteHeader(int)             {}
func (d *discard) Write(b []byte) (int, error) { d.n += len(b); return len(b), nil }

// BenchmarkFleetPage300 renders the fleet page of 300 hosts through its handler
// (view model, template, rows, headers, and gzip as a browser asks for it), as many
// times as -benchtime says and at least 1000, and reports the p50 and p99 of a
// render (wall time, and CPU time of the rendering thread: on a shared machine the
// wall p99 is mostly time spent waiting for a core) and the bytes the page weighs as
// sent. Source.Fleet is a ready value here:
// the receiver caches its evaluation for 5 s, so this is the page's own cost.
//
//	go test ./internal/web -run '^$' -bench FleetPage300 -benchtime 2000x
func BenchmarkFleetPage300(b *testing.B) {
	for _, enc := range []string{"gzip", "identity"} {
		b.Run(enc, func(b *testing.B) { benchFleetPage(b, enc) })
	}
}

func benchFleetPage(b *testing.B, encoding string) {
	src := newFake()
	src.recv.Open = true
	src.fleet = bigFleet(300, testNow)
	p := New(Options{Source: src, Logger: zerolog.Nop(), Now: func() time.Time { return testNow }})
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.AddCookie(&http.Cookie{Name: csrfCookie, Value: randomToken()})
	req.Header.Set("Accept-Encoding", encoding)
	runtime.LockOSThread() // threadCPU reads this goroutine's thread
	defer runtime.UnlockOSThread()
	var wall, cpu []time.Duration
	n := 0
	render := func() {
		w := &discard{h: http.Header{}}
		start, startCPU := time.Now(), threadCPU()
		p.fleetPage(w, req)
		wall, cpu = append(wall, time.Since(start)), append(cpu, threadCPU()-startCPU)
		n = w.n
	}
	b.ReportAllocs()
	for b.Loop() {
		render()
	}
	for len(wall) < 1000 { // the percentiles need at least 1000 renders
		render()
	}
	slices.Sort(wall)
	slices.Sort(cpu)
	b.ReportMetric(float64(wall[len(wall)/2].Nanoseconds()), "p50-ns/render")
	b.ReportMetric(float64(wall[len(wall)*99/100].Nanoseconds()), "p99-ns/render")
	b.ReportMetric(float64(cpu[len(cpu)/2].Nanoseconds()), "p50-cpu-ns/render")
	b.ReportMetric(float64(cpu[len(cpu)*99/100].Nanoseconds()), "p99-cpu-ns/render")
	b.ReportMetric(float64(n), "bytes/page")
}

// The 300-host page weighs under the 150 KB as a browser gets it (gzipped),
// and says the same thing as the page sent plain.
func TestFleetPage300Weight(t *testing.T) {
	src := newFake()
	src.fleet = bigFleet(300, testNow)
	h := signedIn(t, src, false)
	get := func(encoding string) (*http.Response, string) {
		req, err := http.NewRequest(http.MethodGet, h.srv.URL+"/", nil)
		require.NoError(t, err)
		req.Header.Set("Accept-Encoding", encoding) // set by hand: the client then leaves the body as sent
		resp, err := h.c.Do(req)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		return resp, body(t, resp)
	}
	plainResp, plain := get("identity")
	assert.Empty(t, plainResp.Header.Get("Content-Encoding"))
	assert.Len(t, rowsOf(plain), 300)
	resp, sent := get("gzip")
	assert.Equal(t, "gzip", resp.Header.Get("Content-Encoding"))
	assert.Contains(t, resp.Header.Values("Vary"), "Accept-Encoding")
	assert.Less(t, len(sent), 150_000, "the fleet page of 300 hosts weighs %d bytes gzipped", len(sent))
	zr, err := gzip.NewReader(strings.NewReader(sent))
	require.NoError(t, err)
	unzipped, err := io.ReadAll(zr)
	require.NoError(t, err)
	assert.Equal(t, plain, string(unzipped))
	t.Logf("300 hosts: %d bytes, %d gzipped", len(plain), len(sent))
}

// BenchmarkHostPage renders a host page at its longest: 50 index lines, 50 alert
// lines, 20 doctor checks, through html/template alone.
func BenchmarkHostPage(b *testing.B) {
	src := newFake()
	src.recv.Open = true
	src.fleet = bigFleet(300, testNow)
	host := src.fleet.Hosts[0].Host
	checks := make([]map[string]any, 20)
	for i := range checks {
		checks[i] = map[string]any{"id": fmt.Sprintf("check-%02d", i), "status": []string{"ok", "warn", "fail", "skip"}[i%4],
			"summary": "a summary of one line, as doctor writes them", "hint": "cis490 install lab-host --update-token"}
	}
	src.reports[host] = doctorJSON(b, "fail", checks...)
	for i := range 50 {
		src.requests[host] = append(src.requests[host], index.Entry{TS: testNow.Add(-time.Duration(i) * 5 * time.Minute), Host: host,
			Route: "heartbeat", Method: "POST", Status: 204, Commit: "0123456789abcdef", Remote: "10.0.0.7:41234", DurMS: 1.5})
		src.alerts[host] = append(src.alerts[host], alerts.Alert{TS: testNow.Add(-time.Duration(i) * time.Hour), Host: host,
			Symptom: fleethealth.FatalOnly, Severity: fleethealth.Critical, Status: alerts.StatusFiring, Since: testNow.Add(-time.Duration(i+1) * time.Hour),
			Summary: "3 refusals since the last success"})
	}
	p := New(Options{Source: src, Logger: zerolog.Nop(), Now: func() time.Time { return testNow }})
	req := httptest.NewRequest(http.MethodGet, "/hosts/"+host, nil)
	req.SetPathValue("host", host)
	req.AddCookie(&http.Cookie{Name: csrfCookie, Value: randomToken()})
	req.Header.Set("Accept-Encoding", "gzip")
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		w := &discard{h: http.Header{}}
		p.hostPage(w, req)
		n = w.n
	}
	b.ReportMetric(float64(n), "bytes/page")
}

package receiver_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/config"
	"github.com/cis490/cis490/internal/gate"
	"github.com/cis490/cis490/internal/index"
	"github.com/cis490/cis490/internal/receiver"
	"github.com/cis490/cis490/internal/store"
	"github.com/cis490/cis490/internal/tokens"
)

// BenchmarkFleetPage300Receiver renders GET / through the receiver's whole handler
// (request logs, session, the fleet page) over a data folder of 300 roster hosts
// shipping every 5 minutes for a day (bench/fleetview's shape, some of them silent,
// failing or refused), signed in as an admin, gzipped as a browser takes it:
//
//   - evaluated: FleetOptions.CacheFor < 0, so every render evaluates the fleet, as
//     GET /v1/fleet does with its cache off: a fleet-health evaluation and a render;
//   - cached: the receiver's default 5 s cache, the clock still: a render alone.
//
// It reports each render's server time (p50, p99) and the page's weight as sent
// (gzipped) and as HTML. The numbers are over 1000 renders:
//
//	go test -run '^$' -bench BenchmarkFleetPage300Receiver -benchtime 1000x ./internal/receiver
func BenchmarkFleetPage300Receiver(b *testing.B) {
	end := time.Date(2026, 11, 28, 23, 59, 0, 0, time.UTC)
	data := filepath.Join(b.TempDir(), "data")
	tokensFile, admin := writePageFleet(b, data, 300, end)
	for _, tc := range []struct {
		name  string
		cache time.Duration
	}{{"evaluated", -1}, {"cached", 0}} {
		b.Run(tc.name, func(b *testing.B) {
			h := pageBenchReceiver(b, data, tokensFile, tc.cache, end)
			session := benchSignIn(b, h, admin)
			get := func() *httptest.ResponseRecorder {
				r := httptest.NewRequest(http.MethodGet, "/", nil)
				r.Header.Set("Cookie", session)
				r.Header.Set("Accept-Encoding", "gzip")
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				return w
			}
			first := get()
			require.Equal(b, http.StatusOK, first.Code, first.Body.String())
			sent := first.Body.Len()
			html := gunzip(b, first)
			require.Contains(b, html, `href="/hosts/lab-299"`)
			took := make([]time.Duration, 0, b.N)
			for b.Loop() {
				start := time.Now()
				w := get()
				took = append(took, time.Since(start))
				if w.Code != http.StatusOK {
					b.Fatalf("GET /: %d", w.Code)
				}
			}
			slices.Sort(took)
			pct := func(p float64) float64 {
				return float64(took[min(len(took)-1, int(p*float64(len(took))))]) / float64(time.Millisecond)
			}
			b.ReportMetric(pct(0.50), "p50-ms")
			b.ReportMetric(pct(0.99), "p99-ms")
			b.ReportMetric(float64(sent), "sent-bytes")
			b.ReportMetric(float64(len(html)), "html-bytes")
		})
	}
}

func gunzip(b *testing.B, w *httptest.ResponseRecorder) string {
	b.Helper()
	if w.Header().Get("Content-Encoding") != "gzip" {
		return w.Body.String()
	}
	zr, err := gzip.NewReader(bytes.NewReader(w.Body.Bytes()))
	require.NoError(b, err)
	out, err := io.ReadAll(zr)
	require.NoError(b, err)
	return string(out)
}

// pageBenchReceiver is the receiver's handler over data, with its clock at now. Its
// own index lines (none: the page is not indexed) would go to data/index.
func pageBenchReceiver(b *testing.B, data, tokensFile string, cache time.Duration, now time.Time) http.Handler {
	b.Helper()
	log := zerolog.Nop()
	st, err := store.Open(data, store.Options{Logger: log})
	require.NoError(b, err)
	idx, err := index.OpenWriter(filepath.Join(data, "index"))
	require.NoError(b, err)
	b.Cleanup(func() { idx.Close() })
	toks, err := tokens.OpenStore(tokensFile, log)
	require.NoError(b, err)
	cfg := config.Default()
	cfg.Serve.DataDir, cfg.Serve.TokensFile, cfg.Serve.MinFreeBytes = data, tokensFile, 0
	cfg.FleetHealth.Syslog = false
	srv := receiver.New(receiver.Options{Config: cfg.Serve, Store: st, Index: idx, Gate: gate.New(nil, gate.Options{}),
		Tokens: toks, Logger: log, Now: func() time.Time { return now },
		Fleet: receiver.FleetOptions{Host: "pi", Config: cfg.FleetHealth, CacheFor: cache}})
	return srv.Handler()
}

// benchSignIn signs in through the sign-in form and returns the Cookie header a
// browser would send after.
func benchSignIn(b *testing.B, h http.Handler, token string) string {
	b.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/signin", nil))
	require.Equal(b, http.StatusOK, w.Code)
	m := csrfField.FindStringSubmatch(w.Body.String())
	require.NotNil(b, m)
	var cookies []string
	for _, c := range w.Result().Cookies() {
		cookies = append(cookies, c.Name+"="+c.Value)
	}
	form := url.Values{"csrf": {m[1]}, "token": {token}, "next": {"/"}}
	r := httptest.NewRequest(http.MethodPost, "/signin", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Cookie", strings.Join(cookies, "; "))
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	require.Equal(b, http.StatusSeeOther, w.Code, w.Body.String())
	for _, c := range w.Result().Cookies() {
		if c.Name == "cis490_session" {
			return c.Name + "=" + c.Value
		}
	}
	b.Fatal("no session cookie")
	return ""
}

// writePageFleet writes a receiver data folder: the day before end of hosts shipping
// every 5 minutes (a heartbeat and an episode each time), as `cis490 serve` writes
// them, a doctor report and a host token each, and an admin token, which it returns
// with the tokens file. Every 30th host went quiet two hours before end (silent),
// every 50th reports fail, every 70th has been refused 426 for the last hour.
func writePageFleet(b *testing.B, data string, hosts int, end time.Time) (string, string) {
	b.Helper()
	require.NoError(b, os.MkdirAll(filepath.Join(data, "index"), 0o750))
	require.NoError(b, os.MkdirAll(filepath.Join(data, "host-health"), 0o750))
	rng := rand.New(rand.NewPCG(4, 90))
	const commit = "1234567890abcdef1234567890abcdef12345678"
	var (
		day string
		f   *os.File
		w   *bufio.Writer
	)
	closeDay := func() {
		if f != nil {
			require.NoError(b, w.Flush())
			require.NoError(b, f.Close())
		}
	}
	start := end.Add(-24 * time.Hour).Truncate(5 * time.Minute)
	for at := start; at.Before(end.Add(-5 * time.Minute)); at = at.Add(5 * time.Minute) {
		for h := range hosts {
			ts := at.Add(time.Duration(h) * time.Second) // the hosts' timers are spread out
			if d := ts.Format(time.DateOnly); d != day {
				closeDay()
				var err error
				f, err = os.Create(filepath.Join(data, "index", d+".jsonl"))
				require.NoError(b, err)
				day, w = d, bufio.NewWriterSize(f, 1<<20)
			}
			host := fmt.Sprintf("lab-%03d", h)
			if h%30 == 29 && ts.After(end.Add(-2*time.Hour)) {
				continue
			}
			hb, ep := 204, 201
			if h%70 == 69 && ts.After(end.Add(-time.Hour)) {
				hb, ep = 426, 426
			}
			remote := fmt.Sprintf("10.0.%d.%d:%d", h/250, h%250+1, 40000+rng.IntN(20000))
			for _, e := range []index.Entry{
				{TS: ts, Host: host, Route: "heartbeat", Method: "POST", Status: hb,
					Commit: commit, Stamped: true, DurMS: 0.4 + rng.Float64(), Remote: remote},
				{TS: ts.Add(2 * time.Second), Host: host, Route: "episodes", Method: "PUT", Status: ep,
					Bytes: 5<<20 + rng.Int64N(1<<20), SHA256: fmt.Sprintf("%064x", rng.Uint64()), Commit: commit, Stamped: true,
					DurMS: 300 + 100*rng.Float64(), Remote: remote},
			} {
				line, err := json.Marshal(e)
				require.NoError(b, err)
				_, _ = w.Write(append(line, '\n'))
			}
		}
	}
	closeDay()
	tokensFile := filepath.Join(data, "tokens.toml")
	for h := range hosts {
		host := fmt.Sprintf("lab-%03d", h)
		status := "ok"
		if h%50 == 49 {
			status = "fail"
		}
		var checks []map[string]any
		for _, id := range []string{"config", "host-name", "receiver-reachable", "token", "commit-allowed", "client-cert",
			"clock-skew", "spool", "disk", "timers", "version"} {
			c := map[string]any{"id": id, "status": "ok", "summary": id + " is fine", "duration_ms": 3, "details": map[string]any{}}
			if id == "client-cert" {
				c["details"] = map[string]any{"not_after": end.AddDate(0, 0, 20)}
			}
			if id == "spool" && status == "fail" {
				c["status"], c["summary"], c["hint"] = "fail", "the spool holds 412 episodes", "cis490 ship --drain"
			}
			checks = append(checks, c)
		}
		doc, err := json.Marshal(map[string]any{"schema": "cis490.doctor/v1", "host": host, "version": "v1.0.0", "commit": "1234567",
			"generated_at": end.Add(-6 * time.Hour), "received_at": end.Add(-6 * time.Hour), "status": status, "checks": checks})
		require.NoError(b, err)
		require.NoError(b, os.WriteFile(filepath.Join(data, "host-health", host+".json"), doc, 0o640))
		_, _, err = tokens.Mint(tokensFile, tokens.Identity{Host: host}, end.AddDate(0, 0, -30))
		require.NoError(b, err)
	}
	admin, _, err := tokens.Mint(tokensFile, tokens.Identity{Admin: "bench"}, end.AddDate(0, 0, -30))
	require.NoError(b, err)
	return tokensFile, admin
}

package fleethealth

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/alerts"
	"github.com/cis490/cis490/internal/config"
	"github.com/cis490/cis490/internal/index"
	"github.com/cis490/cis490/internal/tokens"
)

// t0 is 18:00 UTC: tests run their checks around it.
var t0 = time.Date(2026, 11, 28, 18, 0, 0, 0, time.UTC)

const commitOK = "1234567890abcdef1234567890abcdef12345678"

// fleet is a receiver data folder written by hand: an index through the receiver's own
// index.Writer, doctor reports as the store writes them, and checks run over it.
type fleet struct {
	t          *testing.T
	dir        string
	idx        *index.Writer
	cfg        config.FleetHealth
	alertsPath string
	notifier   *Notifier
	// tokensPath is the tokens file, once a test mints a host token: the roster.
	tokensPath string
}

func newFleet(t *testing.T) *fleet {
	t.Helper()
	return newFleetIn(t, t.TempDir())
}

// newFleetIn keeps the data folder in dir (a tmpfs that fills up, say).
func newFleetIn(t *testing.T, dir string) *fleet {
	t.Helper()
	w, err := index.OpenWriter(indexDir(dir))
	require.NoError(t, err)
	t.Cleanup(func() { w.Close() })
	cfg := config.Default().FleetHealth
	cfg.Syslog = false
	return &fleet{t: t, dir: dir, idx: w, cfg: cfg, alertsPath: filepath.Join(dir, "alerts.jsonl")}
}

// req indexes one request; an empty commit is an unstamped one.
func (f *fleet) req(host, route string, status int, at time.Time, commit string) {
	f.t.Helper()
	method := map[string]string{"episodes": "PUT", "heartbeat": "POST", "host-health": "PUT"}[route]
	e := index.Entry{TS: at, Host: host, Route: route, Method: method, Status: status, Commit: commit, Stamped: commit != ""}
	if status >= 400 {
		e.Error = "refused for a test reason"
	}
	require.NoError(f.t, f.idx.Append(e))
}

// heartbeats indexes a 204 heartbeat every period in [from, to].
func (f *fleet) heartbeats(host string, from, to time.Time, every time.Duration) {
	f.t.Helper()
	for at := from; !at.After(to); at = at.Add(every) {
		f.req(host, "heartbeat", 204, at, commitOK)
	}
}

// handshake indexes a TLS handshake the receiver refused, as it writes one: route tls,
// status 0, the name the certificate carries ("" for none), the reason in error.
func (f *fleet) handshake(host, reason string, at time.Time, remote string) {
	f.t.Helper()
	require.NoError(f.t, f.idx.Append(index.Entry{TS: at, Host: host, Route: "tls", Status: 0, Error: reason, Remote: remote}))
}

// report stores a doctor report as the receiver does; the checks named are failing
// ones, or warning ones in a "warn" report.
func (f *fleet) report(host, status string, received time.Time, failing ...string) {
	f.t.Helper()
	var checks []map[string]string
	checkStatus := "fail"
	if status == "warn" {
		checkStatus = "warn"
	}
	for _, id := range failing {
		checks = append(checks, map[string]string{"id": id, "status": checkStatus, "summary": id + " is broken", "hint": "fix " + id})
	}
	checks = append(checks, map[string]string{"id": "config", "status": "ok"})
	doc, err := json.Marshal(map[string]any{
		"schema": "cis490.doctor/v1", "host": host, "status": status, "checks": checks,
		"generated_at": received.Add(-time.Second), "received_at": received,
	})
	require.NoError(f.t, err)
	require.NoError(f.t, os.MkdirAll(reportDir(f.dir), 0o750))
	require.NoError(f.t, os.WriteFile(filepath.Join(reportDir(f.dir), host+".json"), doc, 0o640))
}

// token gives host a host token created at created (zero: a tokens file written
// before creation times were kept), putting the fleet in roster mode.
func (f *fleet) token(host string, created time.Time) {
	f.t.Helper()
	f.tokensPath = filepath.Join(f.dir, "tokens.toml")
	if created.IsZero() {
		line := fmt.Sprintf("[[token]]\nsha256 = %q\nhost = %q\n", tokens.Hash(host+" token"), host)
		file, err := os.OpenFile(f.tokensPath, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
		require.NoError(f.t, err)
		_, err = file.WriteString(line)
		require.NoError(f.t, errors.Join(err, file.Close()))
		return
	}
	_, _, err := tokens.Mint(f.tokensPath, tokens.Identity{Host: host}, created)
	require.NoError(f.t, err)
}

// revoke removes host's tokens, as `cis490 token revoke --host` does.
func (f *fleet) revoke(host string) {
	f.t.Helper()
	_, err := tokens.Revoke(f.tokensPath, tokens.Selector{Host: host})
	require.NoError(f.t, err)
}

func (f *fleet) opts(now time.Time) Options {
	return Options{Config: f.cfg, DataDir: f.dir, AlertsPath: f.alertsPath, TokensFile: f.tokensPath, Now: now,
		Logger: zerolog.New(zerolog.NewTestWriter(f.t)), Notifier: f.notifier}
}

func (f *fleet) check(now time.Time) *Result {
	f.t.Helper()
	res, err := Check(f.t.Context(), f.opts(now))
	require.NoError(f.t, err)
	return res
}

// every runs a check every period in [from, to], as the timer does.
func (f *fleet) every(from, to time.Time, period time.Duration) {
	f.t.Helper()
	for at := from; !at.After(to); at = at.Add(period) {
		f.check(at)
	}
}

// lines reads alerts.jsonl back.
func (f *fleet) lines() []alerts.Alert {
	f.t.Helper()
	got, err := alerts.Collect(alerts.NewReader(f.alertsPath), -1, alerts.Filter{})
	require.NoError(f.t, err)
	out := make([]alerts.Alert, 0, len(got))
	for _, l := range got {
		out = append(out, l.Alert)
	}
	return out
}

func evidence(t *testing.T, a alerts.Alert) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(a.Evidence, &m), string(a.Evidence))
	return m
}

// statuses summarises lines as "status host/symptom@HH:MM" for readable assertions.
func statuses(lines []alerts.Alert) []string {
	out := make([]string, 0, len(lines))
	for _, l := range lines {
		out = append(out, l.Status+" "+l.Host+"/"+l.Symptom+"@"+l.TS.Format("15:04"))
	}
	return out
}

func mins(m int) time.Duration { return time.Duration(m) * time.Minute }

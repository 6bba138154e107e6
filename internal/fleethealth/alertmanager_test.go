package fleethealth

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const alertmanagerBin = "/usr/bin/prometheus-alertmanager"

// startAlertmanager runs the real Alertmanager (Debian's prometheus-alertmanager) on a
// free loopback port, clustering off, state in a temp folder. CI installs it and must
// run this test; elsewhere a missing binary skips it.
func startAlertmanager(t *testing.T) string {
	t.Helper()
	bin := alertmanagerBin
	if _, err := os.Stat(bin); err != nil {
		if p, lerr := exec.LookPath("prometheus-alertmanager"); lerr == nil {
			bin = p
		} else if os.Getenv("CI") == "true" {
			t.Fatalf("CI must test against a real Alertmanager, but %s is missing: .ci/run installs prometheus-alertmanager", alertmanagerBin)
		} else {
			t.Skipf("no Alertmanager here (apt-get install prometheus-alertmanager): %v", err)
		}
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "alertmanager.yml")
	require.NoError(t, os.WriteFile(cfg, []byte("route:\n  receiver: discard\nreceivers:\n  - name: discard\n"), 0o600))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	var out bytes.Buffer
	cmd := exec.Command(bin, "--config.file="+cfg, "--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--cluster.listen-address=")
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	url := "http://" + addr
	ready := func() bool {
		select {
		case <-done:
			return false
		default:
		}
		res, err := http.Get(url + "/-/ready")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	}
	if !assert.Eventually(t, ready, 20*time.Second, 50*time.Millisecond) {
		t.Fatalf("Alertmanager did not become ready on %s:\n%s", addr, out.String())
	}
	return url
}

type amGot struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"startsAt"`
	EndsAt      time.Time         `json:"endsAt"`
	Status      struct {
		State string `json:"state"`
	} `json:"status"`
}

func amAlerts(url string) ([]amGot, error) {
	res, err := http.Get(url + "/api/v2/alerts")
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /api/v2/alerts: %s", res.Status)
	}
	var got []amGot
	return got, json.NewDecoder(res.Body).Decode(&got)
}

func TestAlertmanagerGetsFiringThenResolved(t *testing.T) {
	t.Parallel()
	url := startAlertmanager(t)
	f := newFleet(t)
	f.cfg.AlertmanagerURL = url + "/" // a trailing slash is fine
	f.notifier = NewNotifier(f.cfg, zerolog.New(zerolog.NewTestWriter(t)))
	// Alertmanager judges endsAt by its own clock, so this test lives in the present.
	now := time.Now().UTC().Truncate(time.Second)
	f.heartbeats("lab-07", now.Add(-3*time.Hour), now.Add(-mins(45)), mins(5))
	f.report("lab-07", "ok", now.Add(-time.Hour))
	f.heartbeats("lab-ok", now.Add(-3*time.Hour), now, mins(5))
	f.report("lab-ok", "ok", now.Add(-time.Hour))
	f.check(now)

	var got []amGot
	require.Eventually(t, func() bool {
		var err error
		got, err = amAlerts(url)
		return err == nil && len(got) == 1
	}, 10*time.Second, 50*time.Millisecond, "the firing alert never showed in Alertmanager")
	a := got[0]
	assert.Equal(t, map[string]string{"alertname": "Cis490Silent", "host": "lab-07", "symptom": "silent", "severity": "critical"}, a.Labels)
	assert.Contains(t, a.Annotations["summary"], "lab-07 has sent nothing for 45m")
	assert.Equal(t, "active", a.Status.State)
	assert.True(t, a.StartsAt.Equal(now.Add(-mins(15))), "startsAt is the threshold time, got %v", a.StartsAt)
	assert.True(t, a.EndsAt.Equal(now.Add(3*RunInterval)), "endsAt is three runs ahead, got %v", a.EndsAt)

	// It comes back: the next check resolves the alert in Alertmanager.
	back := time.Now().UTC()
	f.req("lab-07", "heartbeat", 204, back, commitOK)
	f.check(back.Add(time.Second))
	require.Eventually(t, func() bool {
		got, err := amAlerts(url)
		return err == nil && len(got) == 0
	}, 10*time.Second, 50*time.Millisecond, "Alertmanager still lists the alert after it was resolved")
	assert.Equal(t, []string{"firing lab-07/silent", "resolved lab-07/silent"}, trimTimes(statuses(f.lines())))
}

func trimTimes(s []string) []string {
	for i := range s {
		s[i] = s[i][:len(s[i])-len("@15:04")]
	}
	return s
}

// A doctor report that warns reaches the real Alertmanager as a warning, not paged as
// critical: the label comes from the one severity table.
func TestAlertmanagerGetsAWarningReportAsAWarning(t *testing.T) {
	t.Parallel()
	url := startAlertmanager(t)
	f := newFleet(t)
	f.cfg.AlertmanagerURL = url
	f.notifier = NewNotifier(f.cfg, zerolog.New(zerolog.NewTestWriter(t)))
	now := time.Now().UTC().Truncate(time.Second)
	f.heartbeats("lab-07", now.Add(-3*time.Hour), now, mins(5))
	f.report("lab-07", "warn", now.Add(-time.Hour), "client-cert")
	res := f.check(now)
	require.Equal(t, []string{"firing lab-07/report-warning"}, trimTimes(statuses(res.Notifications)))
	assert.Equal(t, Warning, res.Notifications[0].Severity, "the alerts.jsonl line says it too")

	var got []amGot
	require.Eventually(t, func() bool {
		var err error
		got, err = amAlerts(url)
		return err == nil && len(got) == 1
	}, 10*time.Second, 50*time.Millisecond, "the firing alert never showed in Alertmanager")
	assert.Equal(t, map[string]string{"alertname": "Cis490ReportWarning", "host": "lab-07", "symptom": "report-warning", "severity": "warning"}, got[0].Labels)
	assert.Contains(t, got[0].Annotations["summary"], "warns: client-cert: client-cert is broken")
	assert.Equal(t, "active", got[0].Status.State)
}

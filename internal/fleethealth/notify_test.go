package fleethealth

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/testutil"
)

// syslogSocket is a syslog daemon stand-in: a unix datagram socket with a short path
// (t.TempDir's can exceed the 108 bytes a socket path may have).
func syslogSocket(t *testing.T) (string, *net.UnixConn) {
	t.Helper()
	dir, err := os.MkdirTemp("", "fh-syslog-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "log")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return path, conn
}

func readDatagram(t *testing.T, conn *net.UnixConn) string {
	t.Helper()
	buf := make([]byte, 64<<10)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(5*time.Second)))
	n, err := conn.Read(buf)
	require.NoError(t, err, "no syslog message arrived")
	return string(buf[:n])
}

func TestSyslogPriorityAndIdentifier(t *testing.T) {
	t.Parallel()
	path, conn := syslogSocket(t)
	f := newFleet(t)
	f.cfg.Syslog, f.cfg.SyslogSocket = true, path
	f.notifier = NewNotifier(f.cfg, zerolog.New(zerolog.NewTestWriter(t)))
	quiet(f)
	f.check(t0)
	msg := readDatagram(t, conn)
	// daemon (3) * 8 + warning (4) = 28
	assert.True(t, strings.HasPrefix(msg, "<28>"), msg)
	assert.Contains(t, msg, " "+SyslogTag+"[")
	assert.Contains(t, msg, "]: firing critical lab-07/silent: lab-07 has sent nothing for 30m")
	assert.Contains(t, msg, "lab-07/silent/2026-11-28T18")

	f.req("lab-07", "heartbeat", 204, t0.Add(mins(3)), commitOK)
	f.check(t0.Add(mins(5)))
	msg = readDatagram(t, conn)
	// daemon (3) * 8 + notice (5) = 29
	assert.True(t, strings.HasPrefix(msg, "<29>"), msg)
	assert.Contains(t, msg, SyslogTag+"[")
	assert.Contains(t, msg, "resolved critical lab-07/silent: lab-07 is no longer silent")
}

func TestMissingSyslogSocketIsAWarning(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	f.cfg.Syslog, f.cfg.SyslogSocket = true, filepath.Join(t.TempDir(), "no-such.sock")
	logs := &testutil.SyncBuffer{}
	f.notifier = NewNotifier(f.cfg, zerolog.New(logs))
	quiet(f)
	f.check(t0)
	assert.Len(t, f.lines(), 1, "the alert is recorded all the same")
	assert.Contains(t, logs.String(), `"level":"warn"`)
	assert.Contains(t, logs.String(), "syslog is not reachable")
}

func TestWebhookGetsEachLine(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, r.Method+" "+r.Header.Get("Content-Type")+" "+string(body))
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(hook.Close)
	f := newFleet(t)
	f.cfg.WebhookURL = hook.URL
	f.notifier = NewNotifier(f.cfg, zerolog.New(zerolog.NewTestWriter(t)))
	quiet(f)
	f.check(t0)
	f.req("lab-07", "heartbeat", 204, t0.Add(mins(3)), commitOK)
	f.check(t0.Add(mins(5)))
	raw, err := os.ReadFile(f.alertsPath)
	require.NoError(t, err)
	var want []string
	for _, l := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		want = append(want, "POST application/json "+l)
	}
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, want, got, "the webhook gets the alerts.jsonl lines as they are")
	require.Len(t, got, 2)
	var line map[string]any
	require.NoError(t, json.Unmarshal([]byte(strings.TrimPrefix(got[1], "POST application/json ")), &line))
	assert.Equal(t, "resolved", line["status"])
}

func TestFailingWebhookDoesNotFailTheCheck(t *testing.T) {
	t.Parallel()
	calls := 0
	var mu sync.Mutex
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		mu.Unlock()
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
	}))
	t.Cleanup(hook.Close)
	f := newFleet(t)
	f.cfg.WebhookURL = hook.URL
	logs := &testutil.SyncBuffer{}
	f.notifier = NewNotifier(f.cfg, zerolog.New(logs))
	quiet(f)
	f.heartbeats("lab-08", t0.Add(-3*time.Hour), t0.Add(-time.Hour), mins(5))
	f.check(t0)
	assert.Len(t, f.lines(), 2)
	assert.Contains(t, logs.String(), "down for maintenance")
	assert.Contains(t, logs.String(), `"not_sent":2`)
	mu.Lock()
	assert.Equal(t, 1, calls, "the first failure stops the rest of the run's posts")
	mu.Unlock()
}

func TestAlertNames(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "Cis490Silent", alertName(Silent))
	assert.Equal(t, "Cis490FatalOnly", alertName(FatalOnly))
	assert.Equal(t, "Cis490ReportStale", alertName(ReportStale))
}

// Every symptom has its severity in one table; critical is for data that does not
// reach the receiver, a host that says it is broken, or a receiver that cannot take it.
func TestSeverityTable(t *testing.T) {
	t.Parallel()
	for sym, want := range map[string]string{
		Silent: Critical, FatalOnly: Critical, TLSRefused: Critical, ReportFailing: Critical,
		"disk-low": Critical, "receiver-down": Critical,
		Unstamped: Warning, ReportStale: Warning, ReportWarning: Warning, "gate-stale": Warning,
		"a-symptom-of-a-newer-cis490": Warning,
	} {
		assert.Equal(t, want, Severity(sym), sym)
	}
	for _, sym := range Symptoms {
		assert.Contains(t, severities, sym, "every symptom is in the table")
	}
}

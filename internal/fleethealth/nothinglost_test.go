package fleethealth

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/alerts"
	"github.com/cis490/cis490/internal/testutil"
)

// hook is a webhook receiver that keeps "status host/symptom" of each line it gets.
type hook struct {
	url string
	mu  sync.Mutex
	got []string
}

func newHook(t *testing.T) *hook {
	t.Helper()
	h := &hook{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var a alerts.Alert
		body, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(body, &a)
		h.mu.Lock()
		h.got = append(h.got, a.Status+" "+a.Host+"/"+a.Symptom)
		h.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	h.url = srv.URL
	return h
}

func (h *hook) lines() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.got...)
}

// forwarding is a fleet whose notifier sends to a syslog socket and a webhook.
func forwarding(t *testing.T, f *fleet) (*hook, func() string) {
	t.Helper()
	sock, conn := syslogSocket(t)
	h := newHook(t)
	f.cfg.Syslog, f.cfg.SyslogSocket, f.cfg.WebhookURL = true, sock, h.url
	f.notifier = NewNotifier(f.cfg, zerolog.New(zerolog.NewTestWriter(t)))
	return h, func() string { return readDatagram(t, conn) }
}

// A full disk, or something else at the alerts path, must not silence an alert: syslog
// and the webhook need no disk and still hear of it, the run fails loudly, and the line
// goes to alerts.jsonl at the first run that can write it, not a repeat_interval later.
func TestUnwritableAlertsFileStillForwardsAndRetries(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		// breakIt makes f's alerts file unwritable and returns what gives it back.
		breakIt func(t *testing.T, f *fleet) (fix func())
		// newFleet builds the fleet the way the case needs it.
		newFleet func(t *testing.T) *fleet
	}{
		{
			name:     "a directory at the path",
			newFleet: newFleet,
			breakIt: func(t *testing.T, f *fleet) func() {
				require.NoError(t, os.Mkdir(f.alertsPath, 0o750))
				return func() { require.NoError(t, os.Remove(f.alertsPath)) }
			},
		},
		{
			name:     "a full disk",
			newFleet: func(t *testing.T) *fleet { return newFleetIn(t, testutil.Tmpfs(t, 1<<20)) },
			breakIt: func(t *testing.T, f *fleet) func() {
				filler := testutil.FillDisk(t, f.dir)
				return func() { require.NoError(t, os.Remove(filler)) }
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := tc.newFleet(t)
			hook, syslogMsg := forwarding(t, f)
			quiet(f)
			fix := tc.breakIt(t, f)

			_, err := Check(t.Context(), f.opts(t0))
			require.Error(t, err, "a run that could not record its notifications fails")
			assert.ErrorContains(t, err, f.alertsPath)
			assert.ErrorContains(t, err, "fleet_health.alerts_file")
			assert.ErrorContains(t, err, "next run")
			assert.Contains(t, syslogMsg(), "firing critical lab-07/silent", "syslog needs no disk")
			assert.Equal(t, []string{"firing lab-07/silent"}, hook.lines(), "nor does the webhook")

			fix()
			f.check(t0.Add(mins(5)))
			assert.Equal(t, []string{"firing lab-07/silent@18:05"}, statuses(f.lines()),
				"the line not written is written at the next run, not a repeat_interval later")
			assert.Contains(t, syslogMsg(), "firing critical lab-07/silent")

			f.check(t0.Add(mins(10)))
			assert.Len(t, f.lines(), 1, "once written, it is recorded as notified")
			assert.Equal(t, []string{"firing lab-07/silent", "firing lab-07/silent"}, hook.lines())
		})
	}
}

// A resolved line that could not be written is retried too: the alert stays open in
// the state until its resolution is on record.
func TestUnwrittenResolvedLineIsRetried(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	hook, _ := forwarding(t, f)
	quiet(f)
	f.check(t0)
	f.req("lab-07", "heartbeat", 204, t0.Add(mins(3)), commitOK)
	moved := f.alertsPath + ".kept"
	require.NoError(t, os.Rename(f.alertsPath, moved))
	require.NoError(t, os.Mkdir(f.alertsPath, 0o750))

	_, err := Check(t.Context(), f.opts(t0.Add(mins(5))))
	require.ErrorContains(t, err, "fleet_health.alerts_file")
	assert.Equal(t, []string{"firing lab-07/silent", "resolved lab-07/silent"}, hook.lines())

	require.NoError(t, os.Remove(f.alertsPath))
	require.NoError(t, os.Rename(moved, f.alertsPath))
	f.check(t0.Add(mins(10)))
	assert.Equal(t, []string{"firing lab-07/silent@18:00", "resolved lab-07/silent@18:10"}, statuses(f.lines()))
}

// A state that is valid JSON but not the state document is no fresh start: it would
// announce every open alert again.
func TestStateThatIsNotTheDocumentIsAnError(t *testing.T) {
	t.Parallel()
	for _, doc := range []string{
		`{}`, `null`, `[]`, `""`, `7`,
		`{"hosts":{},"fired":{}}`,
		`{"version":"1","hosts":{},"fired":{}}`,
		`{"version":1}`,
		`{"version":1,"hosts":{},"fired":null}`,
		`{"version":1,"hosts":[],"fired":{}}`,
		`{"version":1,"hosts":{"lab-07":null},"fired":{}}`,
		`{"version":1,"hosts":{"lab-07":{"first_seen":"2026-11-28T12:00:00Z","alerts":{"silent":null}}},"fired":{}}`,
	} {
		t.Run(doc, func(t *testing.T) {
			t.Parallel()
			f := newFleet(t)
			quiet(f)
			require.NoError(t, os.WriteFile(statePath(f.dir), []byte(doc), 0o640))
			_, err := Check(t.Context(), f.opts(t0))
			require.Error(t, err)
			assert.ErrorContains(t, err, statePath(f.dir))
			assert.ErrorContains(t, err, "remove it to start over")
			assert.NoFileExists(t, f.alertsPath)
		})
	}
}

// The dedup guarantee holds on alerts.jsonl itself: a state removed (a legitimate
// fresh start) does not bring a second firing line with this hour's key.
func TestFreshStateDoesNotRepeatThisHoursFiringLine(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	quiet(f)
	f.check(t0)
	require.NoError(t, os.Remove(statePath(f.dir)))
	f.check(t0.Add(mins(10)))
	f.check(t0.Add(mins(15)))
	assert.Equal(t, []string{"firing lab-07/silent@18:00"}, statuses(f.lines()))

	f.check(t0.Add(time.Hour))
	lines := f.lines()
	assert.Equal(t, []string{"firing lab-07/silent@18:00", "firing lab-07/silent@19:00"}, statuses(lines),
		"the repeat counts from the line in alerts.jsonl")
	assertUniqueFiringKeys(t, lines)
}

// A crash after the lines were appended and before the state was saved leaves the
// old state: the next run must not write the firing line again.
func TestCrashBetweenAppendAndSaveDoesNotRepeat(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	quiet(f)
	f.check(t0.Add(-mins(5))) // not silent yet
	old, err := os.ReadFile(statePath(f.dir))
	require.NoError(t, err)
	f.check(t0)
	require.NoError(t, os.WriteFile(statePath(f.dir), old, 0o640))
	f.check(t0.Add(mins(5)))
	assert.Equal(t, []string{"firing lab-07/silent@18:00"}, statuses(f.lines()))
}

// A firing line for this hour's key that is older than the repeat interval, with other
// lines after it, is still found.
func TestFiringLineEarlierInTheHourIsFound(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	f.cfg.RepeatInterval = 20 * time.Minute
	quiet(f)
	f.heartbeats("lab-08", t0.Add(-3*time.Hour), t0.Add(time.Hour), mins(5))
	f.check(t0.Add(mins(2)))
	require.NoError(t, alerts.Append(f.alertsPath, alerts.Alert{TS: t0.Add(mins(40)), Host: "lab-09", Symptom: Silent,
		Status: alerts.StatusResolved, DedupKey: "lab-09/silent/2026-11-28T18", Since: t0, Evidence: json.RawMessage(`{}`)}))
	require.NoError(t, os.Remove(statePath(f.dir)))
	f.check(t0.Add(mins(50)))
	lines := f.lines()
	assertUniqueFiringKeys(t, lines)
	assert.Len(t, lines, 2)
}

func TestStateFileIsADirectory(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	quiet(f)
	require.NoError(t, os.Mkdir(statePath(f.dir), 0o750))
	_, err := Check(t.Context(), f.opts(t0))
	require.Error(t, err)
	assert.ErrorContains(t, err, statePath(f.dir))
	assert.ErrorContains(t, err, "remove")
	assert.NoFileExists(t, filepath.Join(f.dir, "alerts.jsonl"))
}

// A firing line in alerts.jsonl that belongs to an earlier episode of the symptom (it
// cleared, and came back after the state was removed) holds the new one back for
// repeat_interval, as the state would have, and the resolved line marks it flapping.
func TestFreshStateHoldsBackASymptomThatCameBack(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	f.cfg.SilentAfter = 10 * time.Minute
	f.report("lab-07", "ok", t0.Add(-time.Hour))
	for _, at := range []time.Time{t0.Add(-mins(20)), t0, t0.Add(mins(15))} { // 17:40, 18:00, 18:15
		f.req("lab-07", "heartbeat", 204, at, commitOK)
	}
	f.check(t0.Add(mins(12))) // silent since 18:10
	f.check(t0.Add(mins(17))) // back
	require.NoError(t, os.Remove(statePath(f.dir)))
	for at := t0.Add(mins(27)); !at.After(t0.Add(mins(77))); at = at.Add(mins(5)) { // silent since 18:25
		f.check(at)
	}
	lines := f.lines()
	require.Equal(t, []string{
		"firing lab-07/silent@18:12", "resolved lab-07/silent@18:17", "firing lab-07/silent@19:12",
	}, statuses(lines))
	assert.Equal(t, t0.Add(mins(25)), lines[2].Since)
	assert.True(t, lines[2].Flapping)
	assertUniqueFiringKeys(t, lines)
}

// A crash after a resolved line was appended and before the state was saved: the
// next run must not resolve the alert a second time.
func TestCrashAfterAResolvedLineDoesNotRepeatIt(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	quiet(f)
	f.check(t0)
	f.req("lab-07", "heartbeat", 204, t0.Add(mins(3)), commitOK)
	old, err := os.ReadFile(statePath(f.dir))
	require.NoError(t, err)
	f.check(t0.Add(mins(5)))
	require.NoError(t, os.WriteFile(statePath(f.dir), old, 0o640))
	f.check(t0.Add(mins(10)))
	assert.Equal(t, []string{"firing lab-07/silent@18:00", "resolved lab-07/silent@18:05"}, statuses(f.lines()))
}

// With the state removed, an alert whose firing line is in alerts.jsonl is still open:
// when its symptom clears, it is resolved.
func TestFreshStateStillResolvesAnAlertOfAlertsJSONL(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	quiet(f)
	f.check(t0)
	require.NoError(t, os.Remove(statePath(f.dir)))
	f.req("lab-07", "heartbeat", 204, t0.Add(mins(12)), commitOK)
	f.check(t0.Add(mins(15)))
	assert.Equal(t, []string{"firing lab-07/silent@18:00", "resolved lab-07/silent@18:15"}, statuses(f.lines()))
}

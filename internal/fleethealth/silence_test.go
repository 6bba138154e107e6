package fleethealth

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/silences"
	"github.com/cis490/cis490/internal/testutil"
)

// silence adds a silence as `cis490 alerts silence` does, made at made.
func (f *fleet) silence(host, symptom string, made, end time.Time) silences.Silence {
	f.t.Helper()
	s, err := silences.Add(silences.Path(f.dir), silences.Silence{Host: host, Symptom: symptom, End: end, Reason: "maintenance", By: "test"},
		made, f.cfg.MaxSilence, Symptoms)
	require.NoError(f.t, err)
	return s
}

// amPushes is an Alertmanager stand-in that keeps host/symptom of every alert pushed.
type amPushes struct {
	mu     sync.Mutex
	pushed []string
}

func newAMPushes(t *testing.T) (*amPushes, string) {
	t.Helper()
	p := &amPushes{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var batch []amAlert
		body, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(body, &batch)
		p.mu.Lock()
		for _, a := range batch {
			p.pushed = append(p.pushed, a.Labels["host"]+"/"+a.Labels["symptom"])
		}
		p.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	return p, srv.URL
}

func (p *amPushes) take() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.pushed
	p.pushed = nil
	return out
}

// While a silence matches, the symptom is evaluated and shown, and nothing is written
// or pushed; when it ends and the symptom lasts, it fires at the next run.
func TestSilencedHostIsShownNotNotified(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	pushes, url := newAMPushes(t)
	f.cfg.AlertmanagerURL = url
	f.notifier = NewNotifier(f.cfg, zerolog.New(zerolog.NewTestWriter(t)))
	quiet(f) // silent from 18:00
	healthy(f, t0.Add(2*time.Hour))
	s := f.silence("lab-07", "", t0.Add(-time.Hour), t0.Add(mins(62)))
	for at := t0; at.Before(t0.Add(mins(62))); at = at.Add(mins(5)) {
		res := f.check(at)
		row := rowOf(t, res, "lab-07")
		require.Equal(t, HostSilenced, row.Status, at.Format("15:04"))
		require.Equal(t, &SilenceRef{ID: s.ID, Until: t0.Add(mins(62)), Reason: "maintenance"}, row.Silence)
		require.Len(t, row.Symptoms, 1)
		assert.Equal(t, Silent, row.Symptoms[0].Symptom, "still evaluated")
		assert.NotNil(t, row.Symptoms[0].Silence)
	}
	assert.Empty(t, f.lines(), "nothing written while silenced")
	assert.Empty(t, pushes.take(), "nor pushed to Alertmanager")

	res := f.check(t0.Add(mins(65)))
	assert.Equal(t, HostAlerting, rowOf(t, res, "lab-07").Status)
	lines := f.lines()
	require.Equal(t, []string{"firing lab-07/silent@19:05"}, statuses(lines), "at once when the silence ends")
	assert.Equal(t, t0, lines[0].Since, "since its threshold, silenced or not")
	assert.Equal(t, []string{"lab-07/silent"}, pushes.take())
}

// A silence of one symptom holds back that one only.
func TestSilenceOfOneSymptom(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	f.heartbeats("lab-07", t0.Add(-3*time.Hour), t0.Add(-mins(30)), mins(5))
	f.report("lab-07", "fail", t0.Add(-time.Hour), "disk")
	f.silence("lab-07", ReportFailing, t0.Add(-time.Hour), t0.Add(time.Hour))
	res := f.check(t0)
	assert.Equal(t, []string{"firing lab-07/silent@18:00"}, statuses(f.lines()))
	row := rowOf(t, res, "lab-07")
	assert.Equal(t, HostAlerting, row.Status, "silent is not silenced")
	assert.Equal(t, []string{Silent, ReportFailing}, symptomsOf(row))
	assert.Nil(t, row.Silence)
}

// A symptom that starts and clears inside a silence writes nothing at all; one that
// fired before the silence and clears during it is resolved.
func TestSilenceAndResolution(t *testing.T) {
	t.Parallel()
	t.Run("inside", func(t *testing.T) {
		t.Parallel()
		f := newFleet(t)
		quiet(f)
		f.silence("lab-07", "", t0.Add(-time.Hour), t0.Add(time.Hour))
		f.check(t0)
		f.heartbeats("lab-07", t0.Add(mins(10)), t0.Add(2*time.Hour), mins(5)) // back at 18:10
		f.every(t0.Add(mins(15)), t0.Add(2*time.Hour), mins(5))
		assert.Empty(t, f.lines())
	})
	t.Run("across", func(t *testing.T) {
		t.Parallel()
		f := newFleet(t)
		quiet(f)
		f.check(t0)
		f.silence("lab-07", Silent, t0.Add(mins(2)), t0.Add(time.Hour))
		f.check(t0.Add(mins(5)))
		f.req("lab-07", "heartbeat", 204, t0.Add(mins(10)), commitOK)
		f.check(t0.Add(mins(15)))
		f.check(t0.Add(mins(20)))
		assert.Equal(t, []string{"firing lab-07/silent@18:00", "resolved lab-07/silent@18:15"}, statuses(f.lines()))
	})
}

// An announced alert silenced for longer than repeat_interval repeats as soon as its
// silence ends, not an interval later.
func TestRepeatDueDuringASilenceGoesOutWhenItEnds(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	quiet(f)
	f.check(t0)
	f.silence("lab-07", "", t0.Add(mins(1)), t0.Add(2*time.Hour))
	f.every(t0.Add(mins(5)), t0.Add(2*time.Hour), mins(5))
	assert.Equal(t, []string{"firing lab-07/silent@18:00", "firing lab-07/silent@20:00"}, statuses(f.lines()))
}

// A silences file with garbage in it still silences what it can; the check warns.
func TestGarbageInTheSilencesFileIsSkippedWithAWarning(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	quiet(f)
	f.silence("lab-07", "", t0.Add(-time.Hour), t0.Add(time.Hour))
	file, err := os.OpenFile(silences.Path(f.dir), os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = file.WriteString("not a silence\n{\"op\":\"add\",\"silence\":{\"id\":\"x\"")
	require.NoError(t, err)
	require.NoError(t, file.Close())
	logs := &testutil.SyncBuffer{}
	opts := f.opts(t0)
	opts.Logger = zerolog.New(logs)
	res, err := Check(t.Context(), opts)
	require.NoError(t, err)
	assert.Equal(t, HostSilenced, rowOf(t, res, "lab-07").Status)
	assert.Empty(t, f.lines())
	assert.Contains(t, logs.String(), `"level":"warn"`)
	assert.Contains(t, logs.String(), `"skipped":2`)
}

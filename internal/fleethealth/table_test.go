package fleethealth

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/index"
)

func hostsOf(rows []Row) []string {
	out := make([]string, 0, len(rows))
	for _, r := range rows {
		out = append(out, r.Host)
	}
	return out
}

func TestRowsWorstFirst(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		rows []Row
		want []string
	}{
		{"every status", []Row{
			{Host: "a-ok", Status: HostOK},
			{Host: "b-inactive", Status: HostInactive},
			{Host: "c-silenced", Status: HostSilenced, WorstSeverity: Critical},
			{Host: "d-warning", Status: HostAlerting, WorstSeverity: Warning},
			{Host: "e-critical", Status: HostAlerting, WorstSeverity: Critical},
		}, []string{"e-critical", "d-warning", "c-silenced", "b-inactive", "a-ok"}},
		{"ties by host name", []Row{
			{Host: "lab-10", Status: HostAlerting, WorstSeverity: Critical},
			{Host: "lab-02", Status: HostOK},
			{Host: "lab-01", Status: HostOK},
			{Host: "lab-09", Status: HostAlerting, WorstSeverity: Critical},
		}, []string{"lab-09", "lab-10", "lab-01", "lab-02"}},
		{"a silenced critical host comes after an alerting warning one", []Row{
			{Host: "a", Status: HostSilenced, WorstSeverity: Critical},
			{Host: "b", Status: HostAlerting, WorstSeverity: Warning},
		}, []string{"b", "a"}},
		{"an unknown status comes last", []Row{
			{Host: "a", Status: "weird"},
			{Host: "b", Status: HostOK},
		}, []string{"b", "a"}},
		{"none", []Row{}, []string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sortRows(tc.rows)
			assert.Equal(t, tc.want, hostsOf(tc.rows))
		})
	}
}

func TestWorstSymptom(t *testing.T) {
	t.Parallel()
	held := &SilenceRef{ID: "s1", Until: t0.Add(time.Hour)}
	for _, tc := range []struct {
		name     string
		findings []Finding
		want     string
	}{
		{"none", nil, ""},
		{"critical before warning", []Finding{
			{Symptom: Unstamped, Severity: Warning}, {Symptom: ReportFailing, Severity: Critical},
		}, ReportFailing},
		{"then the order of Symptoms", []Finding{
			{Symptom: DiskLow, Severity: Critical}, {Symptom: FatalOnly, Severity: Critical}, {Symptom: Silent, Severity: Critical},
		}, Silent},
		{"one not silenced before a silenced one, however severe", []Finding{
			{Symptom: Silent, Severity: Critical, Silence: held}, {Symptom: ReportStale, Severity: Warning},
		}, ReportStale},
		{"all silenced: the worst of them", []Finding{
			{Symptom: ReportStale, Severity: Warning, Silence: held}, {Symptom: Silent, Severity: Critical, Silence: held},
		}, Silent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := ""
			if w := worst(tc.findings); w != nil {
				got = w.Symptom
			}
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestSummaryLine(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		s    Summary
		want string
	}{
		{Summary{Hosts: 42, OK: 39, Alerting: 2, Critical: 1, Silenced: 1}, "42 hosts: 39 ok, 2 alerting, 1 silenced"},
		{Summary{Hosts: 5, OK: 2, Alerting: 1, Silenced: 1, Inactive: 1}, "5 hosts: 2 ok, 1 alerting, 1 silenced, 1 inactive"},
		{Summary{Hosts: 3, OK: 3, NotTracked: 2}, "3 hosts: 3 ok, 0 alerting, 0 silenced; 2 not tracked"},
		{Summary{Hosts: 1, OK: 1}, "1 host: 1 ok, 0 alerting, 0 silenced"},
		{Summary{}, "0 hosts: 0 ok, 0 alerting, 0 silenced"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tc.want, tc.s.String())
		})
	}
}

func TestCertDaysLeft(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		notAfter time.Time
		want     *int
	}{
		{"unknown", time.Time{}, nil},
		{"ten days and an hour", t0.Add(10*24*time.Hour + time.Hour), ptr(10)},
		{"its last day", t0.Add(12 * time.Hour), ptr(0)},
		{"expired an hour ago", t0.Add(-time.Hour), ptr(-1)},
		{"expired two days ago", t0.Add(-48 * time.Hour), ptr(-2)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tc.want, daysLeft(tc.notAfter, t0))
		})
	}
}

func ptr[T any](v T) *T { return &v }

// reportCert stores an ok doctor report whose check id (client-cert on a lab host,
// server-cert on the Pi) says when the certificate expires, as doctor writes it.
func (f *fleet) reportCert(host, id string, received, notAfter time.Time) {
	f.t.Helper()
	doc, err := json.Marshal(map[string]any{
		"schema": "cis490.doctor/v1", "host": host, "status": "ok", "received_at": received,
		"checks": []map[string]any{
			{"id": "config", "status": "ok", "details": map[string]any{"not_after": "not a time"}},
			{"id": id, "status": "ok", "details": map[string]any{"not_after": notAfter, "days_left": 99}},
		},
	})
	require.NoError(f.t, err)
	require.NoError(f.t, os.MkdirAll(reportDir(f.dir), 0o750))
	require.NoError(f.t, os.WriteFile(filepath.Join(reportDir(f.dir), host+".json"), doc, 0o640))
}

// One fleet with a host of every kind: the rows come worst first with what the table
// shows of each, the same from Check and Snapshot, and the summary counts them.
func TestFleetTableRows(t *testing.T) {
	t.Parallel()
	const commitNew = "abcdef0abcdef0abcdef0abcdef0abcdef0abcd"
	const commitHH = "0000000fffffff0000000fffffff0000000fffff"
	f := newFleet(t)
	for _, h := range []string{"lab-crit", "lab-warn", "lab-sil", "lab-ok", "lab-426", "lab-hh"} {
		f.token(h, t0.Add(-48*time.Hour))
	}
	f.token("lab-new", t0.Add(-time.Minute)) // expected, not overdue yet
	f.heartbeats("lab-crit", t0.Add(-4*time.Hour), t0.Add(-2*time.Hour), 5*time.Minute)
	f.heartbeats("lab-sil", t0.Add(-4*time.Hour), t0.Add(-2*time.Hour), 5*time.Minute)
	f.silence("lab-sil", "", t0.Add(-3*time.Hour), t0.Add(2*time.Hour))
	f.heartbeats("lab-warn", t0.Add(-time.Hour), t0.Add(-10*time.Minute), 5*time.Minute)
	f.req("lab-warn", "heartbeat", 204, t0.Add(-5*time.Minute), "")
	f.heartbeats("lab-ok", t0.Add(-time.Hour), t0, 5*time.Minute)
	f.req("lab-ok", "episodes", 201, t0.Add(-20*time.Minute), commitOK)
	f.req("lab-ok", "episodes", 200, t0.Add(-7*time.Minute), commitOK)
	f.req("lab-ok", "episodes", 507, t0.Add(-3*time.Minute), commitOK) // not accepted
	f.reportCert("lab-ok", "client-cert", t0.Add(-time.Hour), t0.Add(10*24*time.Hour+time.Hour))
	f.heartbeats("lab-426", t0.Add(-time.Hour), t0.Add(-20*time.Minute), 5*time.Minute)
	f.req("lab-426", "heartbeat", 426, t0.Add(-10*time.Minute), commitNew)
	f.req("lab-426", "heartbeat", 426, t0.Add(-5*time.Minute), commitNew)
	f.heartbeats("lab-hh", t0.Add(-time.Hour), t0.Add(-5*time.Minute), 5*time.Minute)
	f.req("lab-hh", "host-health", 204, t0.Add(-time.Minute), commitHH) // not gated: no verdict on commitHH
	require.NoError(t, f.idx.Append(index.Entry{TS: t0.Add(-time.Minute), Host: "lab-stranger", Route: "heartbeat",
		Method: "POST", Status: 401, Unverified: true}))

	check := f.check(t0)
	snap, err := Snapshot(f.opts(t0))
	require.NoError(t, err)
	live := f.opts(t0)
	live.AllowsCommit = func(c string) bool { return c == commitOK || c == commitHH }
	withGate, err := Snapshot(live)
	require.NoError(t, err)

	wantOrder := []string{"lab-crit", "lab-warn", "lab-sil", "lab-new", "lab-426", "lab-hh", "lab-ok"}
	wantSummary := Summary{Hosts: 7, OK: 3, Alerting: 2, Critical: 1, Silenced: 1, Inactive: 1, NotTracked: 1}
	for name, res := range map[string]*Result{"check": check, "snapshot": snap, "snapshot with the live gate": withGate} {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, wantOrder, hostsOf(res.Hosts))
			assert.Equal(t, wantSummary, res.Summary)
			assert.Equal(t, "7 hosts: 3 ok, 2 alerting, 1 silenced, 1 inactive; 1 not tracked", res.Summary.String())
			assert.Equal(t, wantSummary, res.Fleet().Summary)
			assert.Equal(t, res.Hosts, res.Fleet().Hosts)

			crit := rowOf(t, res, "lab-crit")
			assert.Equal(t, Silent, crit.WorstSymptom)
			assert.Equal(t, Critical, crit.WorstSeverity)
			assert.Equal(t, t0.Add(-2*time.Hour+f.cfg.SilentAfter), crit.WorstSince)
			assert.True(t, crit.LastEpisode.IsZero(), "heartbeats only")
			assert.Nil(t, crit.CertDaysLeft, "no report")

			warn := rowOf(t, res, "lab-warn")
			assert.Equal(t, Unstamped, warn.WorstSymptom)
			assert.Equal(t, Warning, warn.WorstSeverity)
			assert.Equal(t, t0.Add(-5*time.Minute), warn.WorstSince)

			sil := rowOf(t, res, "lab-sil")
			assert.Equal(t, HostSilenced, sil.Status)
			assert.Equal(t, Silent, sil.WorstSymptom)
			require.NotNil(t, sil.Silence)
			assert.Equal(t, t0.Add(2*time.Hour), sil.Silence.Until)

			fresh := rowOf(t, res, "lab-new")
			assert.Equal(t, HostInactive, fresh.Status)
			assert.Empty(t, fresh.WorstSymptom)
			assert.Nil(t, fresh.CommitAllowed)

			ok := rowOf(t, res, "lab-ok")
			assert.Empty(t, ok.WorstSymptom)
			assert.Equal(t, t0.Add(-7*time.Minute), ok.LastEpisode, "the latest accepted episode, not the 507")
			assert.Equal(t, ptr(10), ok.CertDaysLeft)
			assert.Equal(t, ptr(true), ok.CommitAllowed)

			refused := rowOf(t, res, "lab-426")
			assert.Equal(t, commitNew, refused.Commit)
			hh := rowOf(t, res, "lab-hh")
			assert.Equal(t, commitHH, hh.Commit)
			if res == withGate {
				assert.Equal(t, ptr(false), refused.CommitAllowed, "the live gate says")
				assert.Equal(t, ptr(true), hh.CommitAllowed, "the live gate says")
				return
			}
			assert.Equal(t, ptr(false), refused.CommitAllowed, "its latest stamped heartbeat was refused 426")
			assert.Nil(t, hh.CommitAllowed, "no upload or heartbeat with that commit: the index cannot tell")
		})
	}
}

// The Pi's row shows its server certificate's days left, from its own doctor report.
func TestFleetTableReceiverCert(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	f.reportCert("pi", "server-cert", t0.Add(-time.Hour), t0.Add(30*24*time.Hour))
	opts := f.opts(t0)
	opts.Receiver = pi(f.dir, 10<<30)
	res, err := Snapshot(opts)
	require.NoError(t, err)
	row := rowOf(t, res, "pi")
	assert.Equal(t, HostOK, row.Status)
	assert.Equal(t, ptr(30), row.CertDaysLeft)
	assert.Equal(t, t0.Add(30*24*time.Hour), row.Report.CertNotAfter)
}

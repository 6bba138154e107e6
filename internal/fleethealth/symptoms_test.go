package fleethealth

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/alerts"
	"github.com/cis490/cis490/internal/index"
)

const commitOld = "abcdef0abcdef0abcdef0abcdef0abcdef0abcd"

// healthy is a host that does everything right: it ships every 5 minutes and reported
// an hour ago. No case may ever alert about it.
func healthy(f *fleet, now time.Time) {
	f.heartbeats("lab-ok", now.Add(-24*time.Hour), now, mins(5))
	f.report("lab-ok", "ok", now.Add(-time.Hour))
}

func TestEachSymptomFiresWithItsEvidence(t *testing.T) {
	t.Parallel()
	now := t0
	for _, tc := range []struct {
		name     string
		setup    func(f *fleet)
		symptom  string
		severity string
		since    time.Time
		want     map[string]any // evidence fields
		summary  string
	}{
		{
			name: "silent",
			setup: func(f *fleet) {
				f.heartbeats("lab-07", now.Add(-3*time.Hour), now.Add(-mins(45)), mins(5))
				f.report("lab-07", "ok", now.Add(-2*time.Hour))
			},
			symptom: Silent, severity: Critical, since: now.Add(-mins(15)),
			want:    map[string]any{"last_seen": "2026-11-28T17:15:00Z", "last_route": "heartbeat", "last_status": 204.0, "quiet_for": "45m"},
			summary: "has sent nothing for 45m",
		},
		{
			name: "fatal-only at the third refusal",
			setup: func(f *fleet) {
				f.heartbeats("lab-07", now.Add(-2*time.Hour), now.Add(-mins(20)), mins(5))
				f.req("lab-07", "heartbeat", 426, now.Add(-mins(15)), commitOld)
				f.req("lab-07", "episodes", 426, now.Add(-mins(10)), commitOld)
				f.req("lab-07", "heartbeat", 426, now.Add(-mins(5)), commitOld)
				f.report("lab-07", "ok", now.Add(-time.Hour))
			},
			symptom: FatalOnly, severity: Critical, since: now.Add(-mins(5)),
			want: map[string]any{"refused": 3.0, "latest_status": 426.0, "latest_commit": commitOld,
				"last_ok": "2026-11-28T17:40:00Z", "statuses": map[string]any{"426": 3.0}},
			summary: "refused 3 times in a row since its last success",
		},
		{
			name: "fatal-only is not hidden by the receiver's own 503",
			setup: func(f *fleet) {
				f.req("lab-07", "heartbeat", 401, now.Add(-mins(20)), commitOK)
				f.req("lab-07", "heartbeat", 503, now.Add(-mins(15)), commitOK)
				f.req("lab-07", "heartbeat", 401, now.Add(-mins(10)), commitOK)
				f.req("lab-07", "heartbeat", 401, now.Add(-mins(1)), commitOK)
				f.report("lab-07", "ok", now.Add(-time.Hour))
			},
			symptom: FatalOnly, severity: Critical, since: now.Add(-mins(1)),
			want:    map[string]any{"refused": 3.0, "latest_status": 401.0, "last_ok": nil},
			summary: "with no success in the active window",
		},
		{
			name: "unstamped at the first unstamped request",
			setup: func(f *fleet) {
				f.heartbeats("lab-07", now.Add(-2*time.Hour), now.Add(-mins(10)), mins(5))
				f.req("lab-07", "heartbeat", 204, now.Add(-mins(5)), "")
				f.req("lab-07", "episodes", 201, now.Add(-mins(4)), "")
				f.report("lab-07", "ok", now.Add(-time.Hour))
			},
			symptom: Unstamped, severity: Warning, since: now.Add(-mins(5)),
			want: map[string]any{"first_unstamped": "2026-11-28T17:55:00Z", "unstamped_requests": 2.0,
				"latest_route": "episodes", "last_stamped": "2026-11-28T17:50:00Z"},
			summary: "without X-Cis490-Code-Commit",
		},
		{
			name: "report-failing",
			setup: func(f *fleet) {
				f.heartbeats("lab-07", now.Add(-2*time.Hour), now, mins(5))
				f.report("lab-07", "fail", now.Add(-mins(30)), "clock-skew", "spool-writable")
			},
			symptom: ReportFailing, severity: Critical, since: now.Add(-mins(30)),
			want: map[string]any{"received_at": "2026-11-28T17:30:00Z", "failing": []any{
				map[string]any{"id": "clock-skew", "summary": "clock-skew is broken", "hint": "fix clock-skew"},
				map[string]any{"id": "spool-writable", "summary": "spool-writable is broken", "hint": "fix spool-writable"},
			}},
			summary: "fails (clock-skew, spool-writable)",
		},
		{
			name: "report-stale",
			setup: func(f *fleet) {
				f.heartbeats("lab-07", now.Add(-2*time.Hour), now, mins(5))
				f.report("lab-07", "ok", now.Add(-40*time.Hour))
			},
			symptom: ReportStale, severity: Warning, since: now.Add(-4 * time.Hour),
			want:    map[string]any{"last_report": "2026-11-27T02:00:00Z", "report_age": "40h"},
			summary: "no doctor report for 40h",
		},
		{
			name: "report-warning names the first warning check",
			setup: func(f *fleet) {
				f.heartbeats("lab-07", now.Add(-2*time.Hour), now, mins(5))
				f.report("lab-07", "warn", now.Add(-mins(30)), "client-cert", "rejected")
			},
			symptom: ReportWarning, severity: Warning, since: now.Add(-mins(30)),
			want: map[string]any{"received_at": "2026-11-28T17:30:00Z", "warnings": []any{
				map[string]any{"id": "client-cert", "summary": "client-cert is broken", "hint": "fix client-cert"},
				map[string]any{"id": "rejected", "summary": "rejected is broken", "hint": "fix rejected"},
			}},
			summary: "warns: client-cert: client-cert is broken (and 1 more); run `cis490 doctor` on it",
		},
		{
			name: "tls-refused from the first refused handshake since its last request",
			setup: func(f *fleet) {
				f.heartbeats("lab-07", now.Add(-2*time.Hour), now.Add(-mins(10)), mins(5))
				f.handshake("lab-07", "expired", now.Add(-mins(12)), "10.0.0.7:40001") // before its last success
				f.handshake("lab-07", "expired", now.Add(-mins(8)), "10.0.0.7:40002")
				f.handshake("lab-07", "unknown_ca", now.Add(-mins(3)), "10.0.0.7:40003")
				f.report("lab-07", "ok", now.Add(-time.Hour))
			},
			symptom: TLSRefused, severity: Critical, since: now.Add(-mins(8)),
			want: map[string]any{"refused": 2.0, "reasons": map[string]any{"expired": 1.0, "unknown_ca": 1.0},
				"latest_reason": "unknown_ca", "latest_remote": "10.0.0.7:40003", "last_ok": "2026-11-28T17:50:00Z"},
			summary: "lab-07's TLS handshake is refused (unknown_ca; 2 since 2026-11-28 17:52Z, latest from 10.0.0.7:40003 at 2026-11-28 17:57Z): its certificate is from another CA: issue one from the lab CA (`cis490 cert renew` on it, or by hand)",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFleet(t)
			healthy(f, now)
			tc.setup(f)
			res := f.check(now)
			lines := f.lines()
			require.Len(t, lines, 1, "%v", statuses(lines))
			l := lines[0]
			assert.Equal(t, alerts.Alert{
				TS: now, Host: "lab-07", Symptom: tc.symptom, Severity: tc.severity, Status: alerts.StatusFiring,
				DedupKey: "lab-07/" + tc.symptom + "/2026-11-28T18", Since: tc.since,
				Summary: l.Summary, Evidence: l.Evidence,
			}, l)
			assert.Contains(t, l.Summary, tc.summary)
			ev := evidence(t, l)
			for k, v := range tc.want {
				assert.Equal(t, v, ev[k], "evidence %s in %s", k, l.Evidence)
			}
			require.Len(t, res.Hosts, 2)
			assert.Equal(t, []string{"lab-07", "lab-ok"}, []string{res.Hosts[0].Host, res.Hosts[1].Host})
			assert.Equal(t, HostAlerting, res.Hosts[0].Status)
			assert.Equal(t, HostOK, res.Hosts[1].Status)
			require.Len(t, res.Hosts[0].Symptoms, 1)
			assert.Equal(t, tc.severity, res.Hosts[0].Symptoms[0].Severity, "the row says the severity too")
		})
	}
}

func TestNoSymptomBeforeItsThreshold(t *testing.T) {
	t.Parallel()
	now := t0
	for _, tc := range []struct {
		name  string
		setup func(f *fleet)
	}{
		{"silent one second short", func(f *fleet) {
			f.req("lab-07", "heartbeat", 204, now.Add(-mins(30)).Add(time.Second), commitOK)
		}},
		{"two refusals are not fatal-only yet", func(f *fleet) {
			f.req("lab-07", "heartbeat", 204, now.Add(-mins(15)), commitOK)
			f.req("lab-07", "heartbeat", 426, now.Add(-mins(10)), commitOld)
			f.req("lab-07", "heartbeat", 426, now.Add(-mins(5)), commitOld)
		}},
		{"refusals before the last success do not count", func(f *fleet) {
			for i := 20; i > 5; i-- {
				f.req("lab-07", "heartbeat", 426, now.Add(-mins(i)), commitOld)
			}
			f.req("lab-07", "heartbeat", 204, now.Add(-mins(5)), commitOK) // indexed last, yet in the middle by time
			f.req("lab-07", "heartbeat", 426, now.Add(-mins(4)), commitOld)
		}},
		{"unstamped cleared by a stamped request", func(f *fleet) {
			f.req("lab-07", "heartbeat", 204, now.Add(-mins(10)), "")
			f.req("lab-07", "heartbeat", 204, now.Add(-mins(5)), commitOK)
		}},
		{"unstamped reads its own report route, not the gate", func(f *fleet) {
			f.req("lab-07", "heartbeat", 204, now.Add(-mins(10)), commitOK)
			f.req("lab-07", "host-health", 204, now.Add(-mins(5)), "")
		}},
		{"a report that is not failing", func(f *fleet) {
			f.req("lab-07", "heartbeat", 204, now.Add(-mins(5)), commitOK)
			f.report("lab-07", "warn", now.Add(-mins(5)))
		}},
		{"a report one second short of stale", func(f *fleet) {
			f.req("lab-07", "heartbeat", 204, now.Add(-mins(5)), commitOK)
			f.report("lab-07", "ok", now.Add(-36*time.Hour).Add(time.Second))
		}},
		{"reads by the maintainer do not make a host", func(f *fleet) {
			for _, route := range []string{"alerts", "fleet", "whoami", "unknown", "host-health"} {
				require.NoError(t, f.idx.Append(indexEntry("alice-laptop", route, "GET", 200, now.Add(-2*time.Hour))))
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFleet(t)
			tc.setup(f)
			f.report("lab-07", "ok", now.Add(-time.Hour)) // overwritten by cases that set one
			res := f.check(now)
			assert.Empty(t, statuses(f.lines()))
			for _, r := range res.Hosts {
				assert.Empty(t, r.Symptoms, r.Host)
			}
		})
	}
}

func TestReportStaleForAHostThatNeverReported(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	f.cfg.ReportStaleAfter = 2 * time.Hour
	f.heartbeats("lab-07", t0.Add(-mins(90)), t0.Add(3*time.Hour), mins(5))
	f.check(t0)
	assert.Empty(t, f.lines(), "seen for 90m: not stale yet")
	f.check(t0.Add(mins(35)))
	lines := f.lines()
	require.Len(t, lines, 1)
	assert.Equal(t, ReportStale, lines[0].Symptom)
	assert.Equal(t, t0.Add(mins(30)), lines[0].Since, "first seen plus report_stale_after")
	assert.Contains(t, lines[0].Summary, "never sent a doctor report")
}

// A healthy host that only heartbeats, every 5 minutes, through a quiet night (across
// midnight, so across two index files) with the timer checking every 5 minutes.
func TestHeartbeatOnlyHostNeverAlertsOvernight(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	evening, morning := t0, t0.Add(14*time.Hour)
	f.heartbeats("lab-01", evening.Add(-time.Hour), morning, mins(5))
	f.report("lab-01", "ok", evening.Add(-time.Hour))
	f.every(evening, morning, mins(5))
	assert.Empty(t, statuses(f.lines()))
}

func indexEntry(host, route, method string, status int, at time.Time) index.Entry {
	return index.Entry{TS: at, Host: host, Route: route, Method: method, Status: status}
}

// unverified indexes a request refused 401 without a token or certificate that
// proves who sent it: its host is only what it claimed.
func (f *fleet) unverified(host string, at time.Time) {
	f.t.Helper()
	require.NoError(f.t, f.idx.Append(index.Entry{TS: at, Host: host, Route: "episodes", Method: "PUT",
		Status: 401, Commit: commitOK, Stamped: true, Error: "unknown token", Unverified: true}))
}

// Without mTLS anyone who reaches the port can claim any host in a refused request.
// Those lines must not make up a host, keep a dead one alive or make a stamped one
// unstamped, but must still count for a host whose token was revoked.
func TestUnverifiedRefusalsCountOnlyForKnownHosts(t *testing.T) {
	t.Parallel()
	now := t0
	f := newFleet(t)
	healthy(f, now)
	for i := range 5 {
		f.unverified("made-up", now.Add(-mins(20-i)))
	}
	// lab-07 shipped with its own token until 17:20, then the token was revoked: it
	// keeps trying, and is refused.
	f.heartbeats("lab-07", now.Add(-2*time.Hour), now.Add(-mins(40)), mins(5))
	f.report("lab-07", "ok", now.Add(-time.Hour))
	for _, m := range []int{25, 15, 5} {
		f.unverified("lab-07", now.Add(-mins(m)))
	}
	// lab-08 died at 17:20; a stranger sends refused requests in its name, stamped
	// and not, to make it look alive.
	f.heartbeats("lab-08", now.Add(-2*time.Hour), now.Add(-mins(40)), mins(5))
	f.report("lab-08", "ok", now.Add(-time.Hour))
	for _, m := range []int{10, 2} {
		require.NoError(t, f.idx.Append(index.Entry{TS: now.Add(-mins(m)), Host: "lab-08", Route: "heartbeat", Method: "POST",
			Status: 401, Error: "no bearer token", Unverified: true}))
	}

	res := f.check(now)
	var hosts []string
	for _, r := range res.Hosts {
		hosts = append(hosts, r.Host)
		if r.Host == "lab-08" {
			assert.Equal(t, 2, r.Requests.Unverified)
		}
	}
	assert.Equal(t, []string{"lab-07", "lab-08", "lab-ok"}, hosts, "made-up is not a fleet host")
	assert.Equal(t, []string{"made-up"}, res.Unproven, "but it is shown, untracked")
	assert.Equal(t, 1, res.UnprovenCount)
	assert.Equal(t, []string{
		"firing lab-07/silent@18:00", "firing lab-07/fatal-only@18:00",
		"firing lab-08/silent@18:00",
	}, statuses(f.lines()), "lab-08 stays silent, and is neither unstamped nor fatal-only below fatal_min_requests")

	// A day later lab-07 has had no accepted request for longer than the active
	// window: only refused claims remain, and they keep nothing alive.
	later := now.Add(25 * time.Hour)
	for _, m := range []int{25, 15, 5} {
		f.unverified("lab-07", later.Add(-mins(m)))
		f.unverified("made-up", later.Add(-mins(m)))
	}
	res = f.check(later)
	hosts = hosts[:0]
	for _, r := range res.Hosts {
		if r.Status != HostInactive {
			hosts = append(hosts, r.Host)
		}
	}
	assert.NotContains(t, hosts, "lab-07")
	assert.NotContains(t, hosts, "made-up")
	for _, l := range f.lines() {
		assert.NotEqual(t, "made-up", l.Host)
	}
}

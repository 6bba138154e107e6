package fleethealth

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/index"
)

// Row.Hourly puts each request in the hour, counted back from the evaluation time,
// that it falls in: the last hour is (now-1h, now], the first (now-24h, now-23h].
func TestHourlyCountsRequestsByOutcomeAndHour(t *testing.T) {
	t.Parallel()
	now := t0.Add(30*time.Minute + 7*time.Second) // not on the hour: the hours end at now
	at := func(d time.Duration) time.Time { return now.Add(-d) }
	for _, tc := range []struct {
		name string
		add  func(f *fleet)
		hour int // -1: in none, so Hourly is nil
		want HourCounts
	}{
		{"at now", func(f *fleet) { f.req("lab-07", "heartbeat", 204, now, commitOK) }, 23, HourCounts{OK: 1}},
		{"just inside the last hour", func(f *fleet) { f.req("lab-07", "episodes", 201, at(time.Hour-time.Nanosecond), commitOK) }, 23, HourCounts{OK: 1}},
		{"an hour ago exactly: the hour before", func(f *fleet) { f.req("lab-07", "heartbeat", 204, at(time.Hour), commitOK) }, 22, HourCounts{OK: 1}},
		{"refused by the gate", func(f *fleet) { f.req("lab-07", "heartbeat", 426, at(90*time.Minute), "abcdef1") }, 22, HourCounts{Refused: 1}},
		{"a report", func(f *fleet) { f.req("lab-07", "host-health", 204, at(2*time.Hour), "") }, 21, HourCounts{OK: 1}},
		{"failed", func(f *fleet) { f.req("lab-07", "episodes", 503, at(3*time.Hour), commitOK) }, 20, HourCounts{Failed: 1}},
		{"a refusal that only claims the host", func(f *fleet) { f.unverified("lab-07", at(5*time.Hour)) }, 18, HourCounts{Refused: 1}},
		{"a refused handshake naming it", func(f *fleet) { f.handshake("lab-07", "expired", at(10*time.Minute), "10.0.0.7:4000") }, 23, HourCounts{Refused: 1}},
		{"the first hour's end", func(f *fleet) { f.req("lab-07", "heartbeat", 204, at(23*time.Hour), commitOK) }, 0, HourCounts{OK: 1}},
		{"just inside the first hour", func(f *fleet) { f.req("lab-07", "heartbeat", 204, at(24*time.Hour-time.Nanosecond), commitOK) }, 0, HourCounts{OK: 1}},
		{"24 h ago exactly: in the window, in no hour", func(f *fleet) { f.req("lab-07", "heartbeat", 204, at(24*time.Hour), commitOK) }, -1, HourCounts{}},
		{"older", func(f *fleet) { f.req("lab-07", "heartbeat", 204, at(30*time.Hour), commitOK) }, -1, HourCounts{}},
		{"after now", func(f *fleet) { f.req("lab-07", "heartbeat", 204, now.Add(time.Nanosecond), commitOK) }, -1, HourCounts{}},
		{"no outcome (3xx)", func(f *fleet) { f.req("lab-07", "heartbeat", 304, at(time.Minute), commitOK) }, -1, HourCounts{}},
		{"not the host's own activity", func(f *fleet) {
			require.NoError(t, f.idx.Append(index.Entry{TS: at(time.Minute), Host: "lab-07", Route: "whoami", Method: "GET", Status: 200}))
		}, -1, HourCounts{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFleet(t)
			f.cfg.ActiveWindow = 48 * time.Hour // the window reaches past the 24 hours
			// The host is in the window, in none of the hours.
			f.req("lab-07", "heartbeat", 204, at(36*time.Hour), commitOK)
			f.report("lab-07", "ok", at(time.Hour))
			tc.add(f)
			require.NoError(t, f.idx.Sync())
			res, err := Snapshot(f.opts(now))
			require.NoError(t, err)
			require.Len(t, res.Hosts, 1)
			row := res.Hosts[0]
			require.Equal(t, "lab-07", row.Host)
			if tc.hour < 0 {
				assert.Nil(t, row.Hourly)
				doc, err := json.Marshal(row)
				require.NoError(t, err)
				assert.NotContains(t, string(doc), `"hourly"`)
				return
			}
			want := make([]HourCounts, SparkHours)
			want[tc.hour] = tc.want
			assert.Equal(t, want, row.Hourly)
		})
	}
}

// The hours add up over many requests, and a check (not only a snapshot) fills them.
func TestHourlyAddsUp(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	f.heartbeats("lab-07", t0.Add(-30*time.Hour), t0, mins(5)) // 12 an hour
	for at := t0.Add(-mins(150)); at.Before(t0); at = at.Add(mins(10)) {
		f.req("lab-07", "episodes", 507, at, commitOK)
	}
	f.report("lab-07", "ok", t0.Add(-time.Hour))
	res := f.check(t0)
	require.Len(t, res.Hosts, 1)
	got := res.Hosts[0].Hourly
	require.Len(t, got, SparkHours)
	// Every hour has 12 heartbeats: (t0-1h, t0] has t0-55m … t0.
	for i, h := range got {
		failed := 0
		switch i {
		case 23:
			failed = 5 // t0-50m … t0-10m
		case 22:
			failed = 6 // t0-110m … t0-60m
		case 21:
			failed = 4 // t0-150m … t0-120m
		}
		assert.Equal(t, HourCounts{OK: 12, Failed: failed}, h, "hour %d", i)
	}
	sum := 0
	for _, h := range got {
		sum += h.OK + h.Refused + h.Failed
	}
	assert.Equal(t, 24*12+15, sum)
}

func TestHourOfEachEdge(t *testing.T) {
	t.Parallel()
	now := t0.Add(17 * time.Minute)
	f := &hostFacts{now: now}
	for _, tc := range []struct {
		ago  time.Duration
		hour int // -1: none
	}{
		{-time.Nanosecond, -1},
		{0, 23},
		{time.Hour - time.Nanosecond, 23},
		{time.Hour, 22},
		{12*time.Hour + time.Minute, 11},
		{23 * time.Hour, 0},
		{24*time.Hour - time.Nanosecond, 0},
		{24 * time.Hour, -1},
		{1000 * time.Hour, -1},
	} {
		h := f.hour(now.Add(-tc.ago))
		if tc.hour < 0 {
			assert.Nil(t, h, "%s ago", tc.ago)
			continue
		}
		if assert.NotNil(t, h, "%s ago", tc.ago) {
			assert.Same(t, &f.hourly[tc.hour], h, "%s ago", tc.ago)
		}
	}
}

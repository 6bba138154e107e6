package silences

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	t0       = time.Date(2026, 11, 28, 18, 0, 0, 0, time.UTC)
	symptoms = []string{"silent", "fatal-only", "unstamped"}
)

func silence(host, symptom string, d time.Duration) Silence {
	return Silence{Host: host, Symptom: symptom, End: t0.Add(d), Reason: "maintenance", By: "alice"}
}

func add(t *testing.T, path string, s Silence) Silence {
	t.Helper()
	got, err := Add(path, s, t0, DefaultMax, symptoms)
	require.NoError(t, err)
	return got
}

func load(t *testing.T, path string) (*Set, Stats) {
	t.Helper()
	set, st, err := Load(path)
	require.NoError(t, err)
	return set, st
}

func TestAddThenLoad(t *testing.T) {
	t.Parallel()
	path := Path(filepath.Join(t.TempDir(), "data"))
	assert.Equal(t, "silences.jsonl", filepath.Base(path))
	s := add(t, path, Silence{Host: "LAB-07", Symptom: "silent", End: t0.Add(4 * time.Hour).In(time.FixedZone("+01", 3600)),
		Reason: "  moving racks  ", By: "alice"})
	assert.Regexp(t, `^[0-9a-f]{8}$`, s.ID)
	assert.Equal(t, "lab-07", s.Host, "host names compare lowercased")
	assert.Equal(t, "moving racks", s.Reason)
	assert.True(t, s.Start.Equal(t0), "it starts now")
	assert.True(t, s.Created.Equal(t0))
	assert.Equal(t, time.UTC, s.End.Location(), "stored in UTC")

	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o640), fi.Mode().Perm())

	set, st := load(t, path)
	assert.Equal(t, Stats{Silences: 1}, st)
	views := set.List(t0)
	require.Len(t, views, 1)
	assert.Equal(t, s, views[0].Silence)
	assert.Equal(t, StateActive, views[0].State)
}

func TestLoadMissingFileIsEmpty(t *testing.T) {
	t.Parallel()
	set, st, err := Load(filepath.Join(t.TempDir(), "silences.jsonl"))
	require.NoError(t, err)
	assert.Equal(t, Stats{}, st)
	assert.Empty(t, set.List(t0))
	_, ok := set.Match("lab-07", "silent", t0)
	assert.False(t, ok)
}

func TestLoadSkipsWhatItCannotUse(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "silences.jsonl")
	good := add(t, path, silence("lab-07", "", time.Hour))
	ended := add(t, path, silence("lab-08", "", time.Hour))
	_, err := End(path, ended.ID, t0.Add(time.Minute))
	require.NoError(t, err)
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	lines := []string{
		"",
		"   ",
		"garbage",
		`{"op":"add"}`, // no silence
		`{"op":"add","silence":{"id":"bad id","host":"lab-09","start":"2026-11-28T18:00:00Z","end":"2026-11-28T19:00:00Z","reason":"x"}}`,
		`{"op":"add","silence":{"id":"abcd0001","host":"lab_09","start":"2026-11-28T18:00:00Z","end":"2026-11-28T19:00:00Z","reason":"x"}}`,
		`{"op":"add","silence":{"id":"abcd0002","host":"lab-09","start":"2026-11-28T18:00:00Z","end":"2026-11-28T17:00:00Z","reason":"x"}}`,
		`{"op":"add","silence":{"id":"` + good.ID + `","host":"lab-09","start":"2026-11-28T18:00:00Z","end":"2026-11-28T23:00:00Z","reason":"dup"}}`,
		`{"op":"end","id":"ffffffff","at":"2026-11-28T18:30:00Z"}`, // unknown id
		`{"op":"end","id":"` + good.ID + `"}`,                              // no time
		`{"op":"end","id":"` + ended.ID + `","at":"2026-11-28T18:30:00Z"}`, // ended twice
		`{"op":"rename","id":"` + good.ID + `"}`,                           // an op from a newer cis490
		`{"op":"add","silence":{"id":"abcd0003","host":"lab-10","start":"2026-11-28T18:00:00Z","end":"2026-11-28T19:00:00Z","reason":"ok","future_field":1}}`,
		strings.Repeat("x", 200<<10),                                 // overlong
		`{"op":"add","silence":{"id":"abcd0004","host":"lab-11","st`, // torn by a crash
	}
	require.NoError(t, os.WriteFile(path, append(data, []byte(strings.Join(lines, "\n"))...), 0o640))

	set, st := load(t, path)
	assert.Equal(t, Stats{Silences: 3, Skipped: 12}, st)
	var hosts []string
	for _, v := range set.List(t0) {
		hosts = append(hosts, v.Host)
	}
	assert.ElementsMatch(t, []string{"lab-07", "lab-08", "lab-10"}, hosts)
	s, ok := set.Match("lab-07", "silent", t0)
	require.True(t, ok)
	assert.Equal(t, "maintenance", s.Reason, "a duplicate id does not replace the first")

	// The next append ends the torn line first: the new silence loads, the torn part
	// stays one skipped line.
	next := add(t, path, silence("lab-12", "", time.Hour))
	set, st = load(t, path)
	assert.Equal(t, Stats{Silences: 4, Skipped: 12}, st)
	_, ok = set.Match(next.Host, "silent", t0)
	assert.True(t, ok)
}

func TestAddRefusesBadInputAndWritesNothing(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		edit func(s *Silence)
		max  time.Duration
		want string
	}{
		{"bad host", func(s *Silence) { s.Host = "lab_07" }, 0, `host "lab_07" is not an RFC 1123 host name`},
		{"unicode host", func(s *Silence) { s.Host = "lab-\u212a" }, 0, "is not an RFC 1123 host name"},
		{"no host", func(s *Silence) { s.Host = "" }, 0, "a silence needs a host"},
		{"unknown symptom", func(s *Silence) { s.Symptom = "sad" }, 0, `symptom "sad" is not one fleet health knows: use one of silent, fatal-only, unstamped`},
		{"no end", func(s *Silence) { s.End = time.Time{} }, 0, "a silence needs an end"},
		{"end in the past", func(s *Silence) { s.End = t0.Add(-time.Minute) }, 0, "is not in the future"},
		{"end now", func(s *Silence) { s.End = t0 }, 0, "is not in the future"},
		{"too long", func(s *Silence) { s.End = t0.Add(DefaultMax + time.Second) }, 0, "more than the 168h0m0s a silence may last (fleet_health.max_silence)"},
		{"over a lower max", func(s *Silence) { s.End = t0.Add(2 * time.Hour) }, time.Hour, "more than the 1h0m0s"},
		{"start in the past", func(s *Silence) { s.Start = t0.Add(-time.Hour) }, 0, "start 2026-11-28T17:00:00Z is in the past"},
		{"start after end", func(s *Silence) { s.Start = t0.Add(2 * time.Hour) }, 0, "starts after it ends"},
		{"no reason", func(s *Silence) { s.Reason = " \t " }, 0, "a reason is required"},
		{"long reason", func(s *Silence) { s.Reason = strings.Repeat("é", MaxReason+1) }, 0, "reason is 301 characters, at most 300"},
		{"newline in reason", func(s *Silence) { s.Reason = "two\nlines" }, 0, "reason contains a control character"},
		{"escape in reason", func(s *Silence) { s.Reason = "red \x1b[31m" }, 0, "reason contains a control character"},
		{"invalid UTF-8", func(s *Silence) { s.Reason = "bad \xff" }, 0, "reason is not valid UTF-8"},
		{"control in by", func(s *Silence) { s.By = "al\x00ice" }, 0, "by contains a control character"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "silences.jsonl")
			s := silence("lab-07", "silent", time.Hour)
			tc.edit(&s)
			max := tc.max
			if max == 0 {
				max = DefaultMax
			}
			_, err := Add(path, s, t0, max, symptoms)
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrInvalid)
			assert.Contains(t, err.Error(), tc.want)
			_, statErr := os.Stat(path)
			assert.ErrorIs(t, statErr, os.ErrNotExist, "nothing written")
		})
	}
}

func TestAddAcceptsTheLimits(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "silences.jsonl")
	s := add(t, path, silence("lab-07", "", DefaultMax))
	assert.Equal(t, "", s.Symptom, "every symptom")
	s = add(t, path, Silence{Host: "lab-07", Start: t0.Add(time.Hour), End: t0.Add(2 * time.Hour), Reason: strings.Repeat("é", MaxReason)})
	assert.True(t, s.Start.Equal(t0.Add(time.Hour)), "a silence may start later")
	_, err := Add(path, silence("lab-07", "silent", 2*time.Hour), t0, 0, nil)
	assert.ErrorContains(t, err, `symptom "silent" is not one fleet health knows`, "no list: only every symptom")
	_, err = Add(path, silence("lab-07", "", DefaultMax), t0, 0, nil)
	assert.NoError(t, err, "max 0 is the default")
}

func TestConcurrentAddsAllLand(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "data", "silences.jsonl")
	const n = 40
	var wg sync.WaitGroup
	ids := make([]string, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := Add(path, silence(fmt.Sprintf("lab-%02d", i), "", time.Hour), t0, DefaultMax, symptoms)
			ids[i], errs[i] = s.ID, err
		}()
	}
	wg.Wait()
	for i := range n {
		require.NoError(t, errs[i])
	}
	set, st := load(t, path)
	assert.Equal(t, Stats{Silences: n}, st, "no line lost or interleaved")
	seen := map[string]bool{}
	for _, v := range set.List(t0) {
		assert.False(t, seen[v.ID], "ids are unique")
		seen[v.ID] = true
	}
	assert.Len(t, seen, n)
	for i, id := range ids {
		assert.True(t, seen[id], "silence %d", i)
	}
}

func TestMatch(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "silences.jsonl")
	hostWide := add(t, path, silence("lab-07", "", 2*time.Hour))
	longSilent := add(t, path, silence("lab-07", "silent", 5*time.Hour))
	add(t, path, silence("lab-07", "silent", 3*time.Hour))
	later := add(t, path, Silence{Host: "lab-08", Start: t0.Add(time.Hour), End: t0.Add(3 * time.Hour), Reason: "later"})
	set, _ := load(t, path)

	for _, tc := range []struct {
		name, host, symptom string
		at                  time.Duration
		want                string // the id; "" none
	}{
		{"the one that ends last", "lab-07", "silent", 0, longSilent.ID},
		{"host-wide for another symptom", "lab-07", "unstamped", 0, hostWide.ID},
		{"host names fold", "LAB-07", "unstamped", 0, hostWide.ID},
		{"only host-wide ones for no symptom", "lab-07", "", 0, hostWide.ID},
		{"after the host-wide one ends", "lab-07", "unstamped", 2 * time.Hour, ""},
		{"the end is excluded", "lab-07", "silent", 5 * time.Hour, ""},
		{"before it starts", "lab-07", "silent", -time.Second, ""},
		{"pending", "lab-08", "silent", 59 * time.Minute, ""},
		{"from its start", "lab-08", "silent", time.Hour, later.ID},
		{"another host", "lab-09", "silent", 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, ok := set.Match(tc.host, tc.symptom, t0.Add(tc.at))
			if tc.want == "" {
				assert.False(t, ok, "matched %s", s.ID)
				return
			}
			require.True(t, ok)
			assert.Equal(t, tc.want, s.ID)
		})
	}
}

func TestEndAndStates(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "silences.jsonl")
	active := add(t, path, silence("lab-01", "", 3*time.Hour))
	ending := add(t, path, silence("lab-02", "silent", 3*time.Hour))
	pending := add(t, path, Silence{Host: "lab-03", Start: t0.Add(2 * time.Hour), End: t0.Add(4 * time.Hour), Reason: "later"})
	expiring := add(t, path, silence("lab-04", "", time.Hour))
	cancelled := add(t, path, Silence{Host: "lab-05", Start: t0.Add(2 * time.Hour), End: t0.Add(4 * time.Hour), Reason: "called off"})

	at := t0.Add(90 * time.Minute)
	got, err := End(path, ending.ID, at)
	require.NoError(t, err)
	assert.Equal(t, ending, got)
	_, err = End(path, strings.ToUpper(cancelled.ID), at)
	require.NoError(t, err, "ids are typed in any case")

	_, err = End(path, ending.ID, at.Add(time.Minute))
	assert.ErrorIs(t, err, ErrOver, "already ended")
	assert.ErrorContains(t, err, "already ended at 2026-11-28T19:30:00Z")
	_, err = End(path, expiring.ID, at)
	assert.ErrorIs(t, err, ErrOver, "already expired")
	assert.ErrorContains(t, err, "already expired at 2026-11-28T19:00:00Z")
	_, err = End(path, "ffffffff", at)
	assert.ErrorIs(t, err, ErrNotFound)
	_, err = End(filepath.Join(t.TempDir(), "silences.jsonl"), active.ID, at)
	assert.ErrorIs(t, err, ErrNotFound, "no file yet")

	set, st := load(t, path)
	assert.Equal(t, Stats{Silences: 5}, st)
	_, ok := set.Match("lab-02", "silent", at)
	assert.False(t, ok, "ended")
	s, ok := set.Match("lab-02", "silent", at.Add(-time.Minute))
	require.True(t, ok, "evaluated as of before it was ended, it was still on")
	assert.True(t, s.End.Equal(at), "and it stops when it was ended")

	states := func(now time.Time) map[string]string {
		m := map[string]string{}
		for _, v := range set.List(now) {
			m[v.Host] = v.State
		}
		return m
	}
	assert.Equal(t, map[string]string{
		"lab-01": StateActive, "lab-02": StateEnded, "lab-03": StatePending, "lab-04": StateExpired, "lab-05": StateEnded,
	}, states(at))
	assert.Equal(t, map[string]string{
		"lab-01": StateExpired, "lab-02": StateEnded, "lab-03": StateExpired, "lab-04": StateExpired, "lab-05": StateEnded,
	}, states(t0.Add(5*time.Hour)), "an expired silence is kept, marked expired")

	views := set.List(at)
	var order []string
	for _, v := range views {
		order = append(order, v.ID)
	}
	assert.Equal(t, []string{active.ID, pending.ID, ending.ID, cancelled.ID, expiring.ID}, order,
		"active, then pending, then the past ones, latest first")
	assert.True(t, views[2].EndedAt.Equal(at))
	assert.True(t, views[0].EndedAt.IsZero())
}

func TestViewJSON(t *testing.T) {
	t.Parallel()
	v := View{Silence: silence("lab-07", "", time.Hour), State: StateEnded, EndedAt: t0.Add(time.Minute)}
	v.ID, v.Start, v.Created = "0123abcd", t0, t0
	raw, err := json.Marshal(v)
	require.NoError(t, err)
	assert.JSONEq(t, `{"id":"0123abcd","host":"lab-07","start":"2026-11-28T18:00:00Z","end":"2026-11-28T19:00:00Z",
		"reason":"maintenance","by":"alice","created":"2026-11-28T18:00:00Z","state":"ended","ended_at":"2026-11-28T18:01:00Z"}`, string(raw))
}

func TestAddToAFolderItCannotWrite(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	blocker := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(blocker, nil, 0o600))
	_, err := Add(filepath.Join(blocker, "silences.jsonl"), silence("lab-07", "", time.Hour), t0, DefaultMax, symptoms)
	require.Error(t, err)
	assert.False(t, errors.Is(err, ErrInvalid), "not the input's fault")
	assert.Contains(t, err.Error(), "silences file")
}

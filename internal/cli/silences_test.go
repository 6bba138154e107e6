package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/config"
	"github.com/cis490/cis490/internal/silences"
	"github.com/cis490/cis490/internal/testutil"
	"github.com/cis490/cis490/internal/tokens"
)

// silenceData is a receiver's data folder that knows lab-07 (a doctor report) and,
// through the tokens file, lab-08.
func silenceData(t *testing.T) config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.Host = "pi"
	cfg.Serve.DataDir = filepath.Join(t.TempDir(), "data")
	require.NoError(t, os.MkdirAll(filepath.Join(cfg.Serve.DataDir, "host-health"), 0o750))
	require.NoError(t, os.WriteFile(filepath.Join(cfg.Serve.DataDir, "host-health", "lab-07.json"), []byte(`{"status":"ok"}`), 0o640))
	cfg.Serve.TokensFile = filepath.Join(t.TempDir(), "tokens.toml")
	_, err := tokens.Append(cfg.Serve.TokensFile, tokens.Identity{Host: "lab-08"}, alertT0)
	require.NoError(t, err)
	return cfg
}

func clockAt(t time.Time) func() time.Time { return func() time.Time { return t } }

type silenceStreams struct{ out, err *testutil.SyncBuffer }

func newSilenceStreams() (Streams, silenceStreams) {
	b := silenceStreams{&testutil.SyncBuffer{}, &testutil.SyncBuffer{}}
	return Streams{Out: b.out, Err: b.err}, b
}

func TestSilenceListUnsilenceLocally(t *testing.T) {
	t.Parallel()
	cfg := silenceData(t)
	streams, b := newSilenceStreams()
	opts := &silenceOptions{streams: streams, now: clockAt(alertT0),
		req: silences.Request{Host: "LAB-07", For: "4h", Reason: "moving racks"}}
	require.NoError(t, runSilence(t.Context(), opts, cfg, zerolog.Nop()))
	id := strings.TrimSpace(b.out.String())
	assert.Regexp(t, `^[0-9a-f]{8}$`, id, "the id alone on stdout")
	assert.Equal(t, "silenced lab-07 (every symptom) until 2026-11-28 22:00Z (4h00m): moving racks\n"+
		"end it early with: cis490 alerts unsilence "+id+"\n", b.err.String())

	opts = &silenceOptions{streams: streams, now: clockAt(alertT0),
		req: silences.Request{Host: "lab-08", Symptom: "silent", End: "2026-11-29T00:00:00+01:00", Reason: "network work"}}
	require.NoError(t, runSilence(t.Context(), opts, cfg, zerolog.Nop()), "a roster host is known")

	list := func(now time.Time) string {
		streams, b := newSilenceStreams()
		require.NoError(t, runSilences(t.Context(), &silencesOptions{streams: streams, now: clockAt(now)}, cfg, zerolog.Nop()))
		return b.out.String()
	}
	lines := strings.Split(strings.TrimSpace(list(alertT0.Add(time.Minute))), "\n")
	require.Len(t, lines, 3)
	assert.Regexp(t, `^ID\s+HOST\s+SYMPTOM\s+STATE\s+FROM\s+UNTIL\s+BY\s+REASON$`, lines[0])
	assert.Regexp(t, `^`+id+`\s+lab-07\s+\(all\)\s+active\s+2026-11-28 18:00Z\s+2026-11-28 22:00Z\s+local\s+moving racks$`, lines[1],
		"the one ending first first")
	assert.Regexp(t, `^[0-9a-f]{8}\s+lab-08\s+silent\s+active\s+2026-11-28 18:00Z\s+2026-11-28 23:00Z\s+local\s+network work$`, lines[2])

	streams, b = newSilenceStreams()
	uopts := &unsilenceOptions{streams: streams, id: id, now: clockAt(alertT0.Add(time.Hour))}
	require.NoError(t, runUnsilence(t.Context(), uopts, cfg, zerolog.Nop()))
	assert.Equal(t, "ended silence "+id+" of lab-07 (every symptom), which would have lasted until 2026-11-28 22:00Z\n", b.err.String())
	assert.Regexp(t, id+`\s+lab-07\s+\(all\)\s+ended\s+2026-11-28 18:00Z\s+2026-11-28 19:00Z`, list(alertT0.Add(2*time.Hour)))

	streams, b = newSilenceStreams()
	uopts.streams = streams
	require.NoError(t, runUnsilence(t.Context(), uopts, cfg, zerolog.Nop()), "ending it again is no error")
	assert.Contains(t, b.err.String(), "nothing to do: the silence is already over: silence "+id+" already ended at 2026-11-28T19:00:00Z")

	assert.Regexp(t, `lab-08\s+silent\s+expired`, list(alertT0.Add(6*time.Hour)), "an expired silence is listed as expired")
}

func TestSilencesListHidesTheOldPast(t *testing.T) {
	t.Parallel()
	cfg := silenceData(t)
	path := silences.Path(cfg.Serve.DataDir)
	for i, at := range []time.Time{alertT0.Add(-72 * time.Hour), alertT0.Add(-48 * time.Hour), alertT0.Add(-2 * time.Hour)} {
		_, err := silences.Add(path, silences.Silence{Host: "lab-07", End: at.Add(time.Hour), Reason: fmt.Sprint("old ", i)}, at, 0, nil)
		require.NoError(t, err)
	}
	streams, b := newSilenceStreams()
	require.NoError(t, runSilences(t.Context(), &silencesOptions{streams: streams, now: clockAt(alertT0)}, cfg, zerolog.Nop()))
	assert.Equal(t, 2, strings.Count(b.out.String(), "\n"), "the header and the one of the last day")
	assert.Contains(t, b.out.String(), "old 2")
	assert.Equal(t, "2 older silences not listed: --all lists them\n", b.err.String())

	streams, b = newSilenceStreams()
	require.NoError(t, runSilences(t.Context(), &silencesOptions{streams: streams, now: clockAt(alertT0), all: true, json: true}, cfg, zerolog.Nop()))
	var views []silences.View
	require.NoError(t, json.Unmarshal([]byte(b.out.String()), &views))
	require.Len(t, views, 3)
	assert.Equal(t, "old 2", views[0].Reason, "latest first")
	assert.Equal(t, silences.StateExpired, views[0].State)
	assert.Empty(t, b.err.String())
}

func TestSilencesListEmpty(t *testing.T) {
	t.Parallel()
	cfg := silenceData(t)
	for _, asJSON := range []bool{false, true} {
		streams, b := newSilenceStreams()
		require.NoError(t, runSilences(t.Context(), &silencesOptions{streams: streams, now: time.Now, json: asJSON}, cfg, zerolog.Nop()))
		if asJSON {
			assert.Equal(t, "[]\n", b.out.String())
			assert.Empty(t, b.err.String(), "nothing but the JSON")
		} else {
			assert.Empty(t, b.out.String())
			assert.Contains(t, b.err.String(), "no silences")
		}
	}
}

// silenceCLI writes a config for the data folder of cfg and runs the command line.
func silenceCLI(t *testing.T, cfg config.Config, args ...string) (int, string, string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "lab-host.toml")
	require.NoError(t, os.WriteFile(file, []byte(fmt.Sprintf("host = %q\n[serve]\ndata_dir = %q\ntokens_file = %q\n",
		cfg.Host, cfg.Serve.DataDir, cfg.Serve.TokensFile)), 0o600))
	return runCLI(t, "", append([]string{"--config", file}, args...)...)
}

func TestSilenceRefusalsAreExit2AndWriteNothing(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no host", []string{"--for", "1h", "--reason", "r"}, "--host is required"},
		{"no end", []string{"--host", "lab-07", "--reason", "r"}, "a silence needs an end: --for 4h or --until"},
		{"both ends", []string{"--host", "lab-07", "--for", "1h", "--until", "2099-01-01T00:00:00Z", "--reason", "r"}, "--for and --until both"},
		{"no reason", []string{"--host", "lab-07", "--for", "1h"}, "--reason is required"},
		{"end in the past", []string{"--host", "lab-07", "--until", "2020-01-01T00:00:00Z", "--reason", "r"}, "end 2020-01-01T00:00:00Z is not in the future"},
		{"end too far", []string{"--host", "lab-07", "--for", "8d", "--reason", "r"}, "more than the 168h0m0s a silence may last (fleet_health.max_silence)"},
		{"bad duration", []string{"--host", "lab-07", "--for", "soon", "--reason", "r"}, `for "soon" is not a duration`},
		{"bad time", []string{"--host", "lab-07", "--until", "18:00", "--reason", "r"}, `end "18:00" is not an RFC 3339 time`},
		{"unknown symptom", []string{"--host", "lab-07", "--symptom", "grumpy", "--for", "1h", "--reason", "r"}, `symptom "grumpy" is not one fleet health knows: use one of silent`},
		{"bad host", []string{"--host", "lab_07", "--for", "1h", "--reason", "r"}, `host "lab_07" is not an RFC 1123 host name`},
		{"unknown host", []string{"--host", "lab-77", "--for", "1h", "--reason", "r"}, "host lab-77 is unknown to this receiver"},
		{"control characters", []string{"--host", "lab-07", "--for", "1h", "--reason", "a\nb"}, "reason contains a control character"},
		{"an argument", []string{"lab-07", "--for", "1h", "--reason", "r"}, "unknown command"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := silenceData(t)
			code, out, errOut := silenceCLI(t, cfg, append([]string{"alerts", "silence"}, tc.args...)...)
			assert.Equal(t, ExitUsage, code, errOut)
			assert.Empty(t, out)
			assert.Contains(t, errOut, tc.want)
			assert.NoFileExists(t, silences.Path(cfg.Serve.DataDir), "nothing written")
		})
	}
}

func TestSilenceCommandLine(t *testing.T) {
	t.Parallel()
	cfg := silenceData(t)
	code, out, errOut := silenceCLI(t, cfg, "alerts", "silence", "--host", "pi", "--symptom", "silent", "--for", "30m", "--reason", "rebooting the Pi")
	require.Equal(t, ExitOK, code, errOut)
	id := strings.TrimSpace(out)
	assert.Contains(t, errOut, "silenced pi/silent until", "the receiver's own row may be silenced")

	code, out, errOut = silenceCLI(t, cfg, "alerts", "silences", "--json")
	require.Equal(t, ExitOK, code, errOut)
	var views []silences.View
	require.NoError(t, json.Unmarshal([]byte(out), &views))
	require.Len(t, views, 1)
	assert.Equal(t, id, views[0].ID)
	assert.Equal(t, silences.StateActive, views[0].State)
	assert.Equal(t, "local", views[0].By)

	code, _, errOut = silenceCLI(t, cfg, "alerts", "unsilence", "ffffffff")
	assert.Equal(t, ExitUsage, code)
	assert.Contains(t, errOut, `no such silence with id "ffffffff": `+"`cis490 alerts silences` lists them")
	code, _, errOut = silenceCLI(t, cfg, "alerts", "unsilence")
	assert.Equal(t, ExitUsage, code, errOut)

	code, _, errOut = silenceCLI(t, cfg, "alerts", "unsilence", id)
	require.Equal(t, ExitOK, code, errOut)
	assert.Contains(t, errOut, "ended silence "+id+" of pi/silent")
}

func TestSilenceCommandsNeedTheDataFolder(t *testing.T) {
	t.Parallel()
	cfg := silenceData(t)
	cfg.Serve.DataDir = filepath.Join(t.TempDir(), "not-here")
	for _, args := range [][]string{
		{"alerts", "silence", "--host", "pi", "--for", "1h", "--reason", "r"},
		{"alerts", "silences"},
		{"alerts", "unsilence", "12345678"},
	} {
		code, _, errOut := silenceCLI(t, cfg, args...)
		assert.Equal(t, ExitUsage, code, "%v", args)
		assert.Contains(t, errOut, "the receiver's data folder "+cfg.Serve.DataDir+" does not exist: run this on the receiver (serve.data_dir, --data-dir), or add --remote")
		assert.NoDirExists(t, cfg.Serve.DataDir)
	}
}

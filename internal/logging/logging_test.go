package logging

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/rs/zerolog"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAutoIsJSONWhenNotATerminal(t *testing.T) {
	var buf bytes.Buffer
	log, err := New(&buf, "info", FormatAuto)
	require.NoError(t, err)
	log.Info().Str("k", "v").Msg("hello")
	log.Debug().Msg("hidden below info")
	var line map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &line), buf.String())
	assert.Equal(t, "hello", line["message"])
	assert.Equal(t, "info", line["level"])
	assert.Equal(t, 1, bytes.Count(buf.Bytes(), []byte("\n")))
}

func TestConsoleIsHuman(t *testing.T) {
	var buf bytes.Buffer
	log, err := New(&buf, "debug", FormatConsole)
	require.NoError(t, err)
	log.Debug().Msg("hello")
	assert.Contains(t, buf.String(), "hello")
	assert.False(t, json.Valid(bytes.TrimSpace(buf.Bytes())))
}

func TestBadLevelAndFormat(t *testing.T) {
	_, err := New(&bytes.Buffer{}, "loud", FormatAuto)
	assert.ErrorContains(t, err, "loud")
	_, err = New(&bytes.Buffer{}, "info", "xml")
	assert.ErrorContains(t, err, "xml")
}

// journalFile is a real file standing in for the journal's stream socket: systemd
// names the stream in JOURNAL_STREAM as "<device>:<inode>" of the service's stderr.
func journalFile(t *testing.T) (*os.File, string) {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	fi, err := f.Stat()
	require.NoError(t, err)
	st := fi.Sys().(*syscall.Stat_t)
	return f, fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}

func logEveryLevel(t *testing.T, log zerolog.Logger) {
	t.Helper()
	// WithLevel: fatal and panic are written without exiting or panicking.
	for _, l := range []zerolog.Level{zerolog.TraceLevel, zerolog.DebugLevel, zerolog.InfoLevel, zerolog.WarnLevel,
		zerolog.ErrorLevel, zerolog.FatalLevel, zerolog.PanicLevel, zerolog.NoLevel} {
		log.WithLevel(l).Str("k", "v").Msg("at " + l.String())
	}
}

func readLines(t *testing.T, f *os.File) []string {
	t.Helper()
	b, err := os.ReadFile(f.Name())
	require.NoError(t, err)
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// Under systemd, journald reads a leading "<N>" as the line's priority (sd-daemon(3)):
// without it every line is stored as info and `journalctl -p warning` finds nothing.
func TestJournalLinesCarryTheirPriority(t *testing.T) {
	for _, format := range []string{FormatAuto, FormatJSON} {
		t.Run(format, func(t *testing.T) {
			f, stream := journalFile(t)
			t.Setenv("JOURNAL_STREAM", stream)
			log, err := New(f, "trace", format)
			require.NoError(t, err)
			logEveryLevel(t, log)

			lines := readLines(t, f)
			require.Len(t, lines, 8)
			for i, want := range []struct{ prefix, level string }{
				{"<7>", "trace"}, {"<7>", "debug"}, {"<6>", "info"}, {"<4>", "warn"},
				{"<3>", "error"}, {"<2>", "fatal"}, {"<2>", "panic"},
				{"", ""}, // no level: the unit's SyslogLevel= (info) applies
			} {
				line := lines[i]
				require.True(t, strings.HasPrefix(line, want.prefix+"{"), "line %d: %q", i, line)
				var obj map[string]any
				require.NoError(t, json.Unmarshal([]byte(strings.TrimPrefix(line, want.prefix)), &obj), line)
				assert.Equal(t, "v", obj["k"], "the JSON after the prefix is the line it was")
				if want.level != "" {
					assert.Equal(t, want.level, obj["level"])
				} else {
					assert.NotContains(t, obj, "level")
				}
			}
		})
	}
}

func TestJournalConsoleFormatCarriesPriority(t *testing.T) {
	f, stream := journalFile(t)
	t.Setenv("JOURNAL_STREAM", stream)
	log, err := New(f, "info", FormatConsole)
	require.NoError(t, err)
	log.Warn().Msg("disk filling up")
	lines := readLines(t, f)
	require.Len(t, lines, 1)
	assert.True(t, strings.HasPrefix(lines[0], "<4>"), lines[0])
	assert.Contains(t, lines[0], "disk filling up")
	assert.NotContains(t, lines[0], "\x1b[", "no colour codes in the journal")
}

// JOURNAL_STREAM is inherited: a command run from a service with its stderr sent
// elsewhere (a file, a pipe, a terminal) must not print priority prefixes there.
func TestNoPriorityWhenStderrIsNotTheJournal(t *testing.T) {
	_, stream := journalFile(t)
	elsewhere, _ := journalFile(t)
	r, w, err := os.Pipe()
	require.NoError(t, err)
	t.Cleanup(func() { r.Close(); w.Close() })
	for name, env := range map[string]string{
		"another file's stream": stream,
		"unset":                 "",
		"garbage":               "journal",
		"half":                  strings.Split(stream, ":")[0] + ":",
	} {
		t.Run(name, func(t *testing.T) {
			t.Setenv("JOURNAL_STREAM", env)
			require.NoError(t, elsewhere.Truncate(0))
			_, err := elsewhere.Seek(0, 0)
			require.NoError(t, err)
			log, err := New(elsewhere, "info", FormatAuto)
			require.NoError(t, err)
			log.Warn().Msg("careful")
			lines := readLines(t, elsewhere)
			require.Len(t, lines, 1)
			assert.True(t, json.Valid([]byte(lines[0])), "plain JSON: %q", lines[0])
		})
	}
	t.Run("a pipe", func(t *testing.T) {
		t.Setenv("JOURNAL_STREAM", stream)
		log, err := New(w, "info", FormatAuto)
		require.NoError(t, err)
		log.Warn().Msg("careful")
		buf := make([]byte, 4096)
		n, err := r.Read(buf)
		require.NoError(t, err)
		assert.True(t, bytes.HasPrefix(buf[:n], []byte("{")), "%q", buf[:n])
	})
	t.Run("not a file", func(t *testing.T) {
		t.Setenv("JOURNAL_STREAM", stream)
		var buf bytes.Buffer
		log, err := New(&buf, "info", FormatAuto)
		require.NoError(t, err)
		log.Warn().Msg("careful")
		assert.True(t, bytes.HasPrefix(buf.Bytes(), []byte("{")), buf.String())
	})
}

// The stream is a pipe too when systemd hands one over (a socket in practice): the
// check is the descriptor's device and inode, whatever it is.
func TestJournalStreamMayBeAPipe(t *testing.T) {
	r, w, err := os.Pipe()
	require.NoError(t, err)
	t.Cleanup(func() { r.Close(); w.Close() })
	fi, err := w.Stat()
	require.NoError(t, err)
	st := fi.Sys().(*syscall.Stat_t)
	t.Setenv("JOURNAL_STREAM", fmt.Sprintf("%d:%d", st.Dev, st.Ino))
	log, err := New(w, "info", FormatAuto)
	require.NoError(t, err)
	log.Error().Msg("broken")
	buf := make([]byte, 4096)
	n, err := r.Read(buf)
	require.NoError(t, err)
	assert.True(t, bytes.HasPrefix(buf[:n], []byte("<3>{")), "%q", buf[:n])
}

package logging

import (
	"bytes"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/rs/zerolog"
)

// isJournalStream reports whether w is the journal's stream: systemd sets
// JOURNAL_STREAM to "<device>:<inode>" of the stderr it connects to journald, and a
// process must compare it with its own stderr because the variable is inherited by
// children whose stderr went elsewhere (sd-daemon(3), systemd.exec(5)).
func isJournalStream(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	devStr, inoStr, ok := strings.Cut(os.Getenv("JOURNAL_STREAM"), ":")
	if !ok {
		return false
	}
	dev, err1 := strconv.ParseUint(devStr, 10, 64)
	ino, err2 := strconv.ParseUint(inoStr, 10, 64)
	if err1 != nil || err2 != nil {
		return false
	}
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && uint64(st.Dev) == dev && st.Ino == ino
}

// journalWriter starts each line with its level's syslog priority, "<4>" for a
// warning: journald strips the prefix and stores it as the line's PRIORITY=, so
// `journalctl -p warning` finds warnings. format turns zerolog's JSON into the line to
// write (nil: the JSON as it is).
type journalWriter struct {
	out    io.Writer
	format func(p []byte) ([]byte, error)
}

// priority is sd-daemon's SD_* value for each level; a line without a level gets
// no prefix, so the unit's SyslogLevel= (info) applies.
var priority = map[zerolog.Level]string{
	zerolog.TraceLevel: "<7>",
	zerolog.DebugLevel: "<7>",
	zerolog.InfoLevel:  "<6>",
	zerolog.WarnLevel:  "<4>",
	zerolog.ErrorLevel: "<3>",
	// Critical, not emergency: journald sends emergencies to every terminal.
	zerolog.FatalLevel: "<2>",
	zerolog.PanicLevel: "<2>",
}

func (j journalWriter) Write(p []byte) (int, error) { return j.WriteLevel(zerolog.NoLevel, p) }

func (j journalWriter) WriteLevel(l zerolog.Level, p []byte) (int, error) {
	line := p
	if j.format != nil {
		var err error
		if line, err = j.format(p); err != nil {
			return 0, err
		}
	}
	// One write per line: lines logged at once by several goroutines must not mix.
	buf := make([]byte, 0, len(priority[l])+len(line))
	buf = append(append(buf, priority[l]...), line...)
	if _, err := j.out.Write(buf); err != nil {
		return 0, err
	}
	return len(p), nil
}

// consoleLines formats each line as the console writer does, without colour.
func consoleLines(p []byte) ([]byte, error) {
	var buf bytes.Buffer
	cw := zerolog.ConsoleWriter{Out: &buf, NoColor: true, TimeFormat: consoleTimeFormat}
	if _, err := cw.Write(p); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Prefix is what a line of level l written straight to w (not through a logger) must
// start with for the journal to store its priority: "<3>" for an error when w is the
// journal's stream, "" anywhere else. cis490's last words, "cis490: <error>", use it,
// so that `journalctl -p err` finds a unit's configuration error.
func Prefix(w io.Writer, l zerolog.Level) string {
	if isJournalStream(w) {
		return priority[l]
	}
	return ""
}

// Package logging builds the zerolog logger every command uses: human-readable on a
// terminal, JSON lines otherwise; under systemd each line starts with its level's
// priority, which the journal keeps (journal.go).
package logging

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
)

// Formats accepted by [log] format.
const (
	FormatAuto    = "auto"
	FormatConsole = "console"
	FormatJSON    = "json"
)

const consoleTimeFormat = time.TimeOnly

// New returns a logger writing to w at level in format.
func New(w io.Writer, level, format string) (zerolog.Logger, error) {
	lvl, err := ParseLevel(level)
	if err != nil {
		return zerolog.Nop(), err
	}
	journal := isJournalStream(w)
	switch format {
	case FormatAuto:
		if !journal && IsTerminal(w) {
			w = console(w)
		}
	case FormatConsole:
		if !journal {
			w = console(w)
		}
	case FormatJSON:
	default:
		return zerolog.Nop(), fmt.Errorf("unknown log format %q: use auto, console or json", format)
	}
	if journal {
		jw := journalWriter{out: w}
		if format == FormatConsole {
			jw.format = consoleLines
		}
		w = jw
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger(), nil
}

// ParseLevel accepts zerolog's level names (trace, debug, info, warn, error, …).
func ParseLevel(level string) (zerolog.Level, error) {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil || level == "" {
		return zerolog.NoLevel, fmt.Errorf("unknown log level %q: use debug, info, warn or error", level)
	}
	return lvl, nil
}

func console(w io.Writer) io.Writer {
	return zerolog.ConsoleWriter{Out: w, TimeFormat: consoleTimeFormat, NoColor: os.Getenv("NO_COLOR") != ""}
}

// IsTerminal reports whether w is a terminal (progress bars and colour go only there).
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && isatty.IsTerminal(f.Fd())
}

package tokens

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// The tokens file is edited as text, line by line, so that what the operator wrote
// around the entries (a heading, a note above an entry) stays. layout knows the shape
// Append writes and people copy; anything else is caught by rewrite's check and the
// file is written out anew instead.

var (
	headerRE  = regexp.MustCompile(`^[ \t]*\[\[[ \t]*token[ \t]*\]\][ \t]*(#.*)?$`)
	expiresRE = regexp.MustCompile(`^[ \t]*expires[ \t]*=`)
)

// layout is a tokens file cut into its entries' lines.
type layout struct {
	preamble []string // lines before the first entry
	blocks   []block  // one per [[token]], in file order
}

// block is one entry's lines: body runs from the comment lines directly above its
// [[token]] line (they are about it) to its last key line; tail is what follows up to
// the next block (blank lines, notes that may be about the file).
type block struct {
	body, tail []string
}

func isBlank(line string) bool   { return strings.TrimSpace(line) == "" }
func isComment(line string) bool { return strings.HasPrefix(strings.TrimSpace(line), "#") }

func parseLayout(text string) layout {
	lines := strings.SplitAfter(text, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	if len(lines) > 0 && !strings.HasSuffix(lines[len(lines)-1], "\n") {
		lines[len(lines)-1] += "\n"
	}
	var starts []int // first line of each block, its leading comments included
	for i, l := range lines {
		if headerRE.MatchString(strings.TrimRight(l, "\r\n")) {
			s := i
			for s > 0 && isComment(lines[s-1]) {
				s--
			}
			starts = append(starts, s)
		}
	}
	if len(starts) == 0 {
		return layout{preamble: lines}
	}
	lay := layout{preamble: lines[:starts[0]]}
	for i, s := range starts {
		end := len(lines)
		if i+1 < len(starts) {
			end = starts[i+1]
		}
		last := end - 1
		for last > s && (isBlank(lines[last]) || isComment(lines[last])) {
			last--
		}
		lay.blocks = append(lay.blocks, block{body: lines[s : last+1], tail: lines[last+1 : end]})
	}
	return lay
}

// remove drops block i's entry; the notes in its tail stay, its blank lines go (the
// blocks around it have their own).
func (l *layout) remove(i int) {
	b := &l.blocks[i]
	b.body = nil
	var kept []string
	for _, line := range b.tail {
		if !isBlank(line) {
			kept = append(kept, line)
		}
	}
	b.tail = kept
}

// setExpires sets block i's expires key, replacing the one it has.
func (l *layout) setExpires(i int, t time.Time) {
	b := &l.blocks[i]
	line := "expires = " + formatTime(t) + "\n"
	for j, old := range b.body {
		if expiresRE.MatchString(old) {
			b.body = append(b.body[:j:j], append([]string{line}, b.body[j+1:]...)...)
			return
		}
	}
	b.body = append(b.body[:len(b.body):len(b.body)], line)
}

func (l *layout) String() string {
	var sb strings.Builder
	for _, line := range l.preamble {
		sb.WriteString(line)
	}
	for _, b := range l.blocks {
		for _, line := range b.body {
			sb.WriteString(line)
		}
		for _, line := range b.tail {
			sb.WriteString(line)
		}
	}
	// A removed last entry would leave the blank line that came before it.
	text := strings.TrimRight(sb.String(), "\r\n")
	if text == "" {
		return ""
	}
	return text + "\n"
}

// formatEntry writes an entry by hand so it looks like the documented example. %q is
// valid TOML here: id, hash, host and admin are validated to plain ASCII without quotes.
func formatEntry(e Entry) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "\n[[token]]\nid = %q\nsha256 = %q\n", e.ID, e.hash)
	if e.IsAdmin() {
		fmt.Fprintf(&sb, "admin = %q\n", e.Admin)
	} else {
		fmt.Fprintf(&sb, "host = %q\n", e.Host)
	}
	if !e.Created.IsZero() {
		fmt.Fprintf(&sb, "created = %s\n", formatTime(e.Created))
	}
	if !e.Expires.IsZero() {
		fmt.Fprintf(&sb, "expires = %s\n", formatTime(e.Expires))
	}
	return sb.String()
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// formatFile writes entries out anew, for a layout the line editor does not know.
func formatFile(entries []Entry) string {
	var sb strings.Builder
	sb.WriteString(header)
	for _, e := range entries {
		sb.WriteString(formatEntry(e))
	}
	return sb.String()
}

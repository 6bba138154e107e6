package index

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// TailStats counts what a Tail read.
type TailStats struct {
	Files   int   // day files opened
	Bytes   int64 // bytes read from them
	Decoded int   // lines that might have been host's, so were decoded
	Skipped int   // of those, the ones that are not entries; and overlong lines
}

// tailBlock is how much of a day file Tail reads at a time.
const tailBlock = 64 << 10

// Tail returns host's last n entries in dir with TS at or after from, newest first:
// in the reverse of the order they were appended, which is the order the requests
// finished (TS is not sorted). It reads the day files from the newest back, each
// from its end backwards, and stops once it has n or has read the file of from's
// day: the fleet page shows a host's last lines without reading the whole window.
// A line that cannot be host's (host's name in quotes is not in it, and it has no
// escapes that could spell it) is passed over without decoding. Torn, blank,
// garbage and overlong lines are skipped as Scan skips them.
func Tail(dir string, from time.Time, host string, n int) ([]Entry, TailStats, error) {
	return tail(dir, from, host, n, tailBlock)
}

func tail(dir string, from time.Time, host string, n, block int) ([]Entry, TailStats, error) {
	var st TailStats
	if n <= 0 {
		return nil, st, nil
	}
	days, err := daysIn(dir, dayOf(from), "9999-12-31")
	if err != nil {
		return nil, st, err
	}
	t := &tailer{from: from, host: host, quoted: []byte(`"` + host + `"`), n: n, st: &st, blk: make([]byte, block)}
	for i := len(days) - 1; i >= 0 && len(t.out) < n; i-- {
		if err := t.file(filepath.Join(dir, days[i].Name())); err != nil {
			return t.out, st, err
		}
	}
	return t.out, st, nil
}

type tailer struct {
	from   time.Time
	host   string
	quoted []byte
	n      int
	out    []Entry
	st     *TailStats
	blk    []byte
	spans  []span
}

// file reads one day file backwards from the size it has now (lines appended
// meanwhile are the next call's), until it is read or t has its n entries.
func (t *tailer) file(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) { // removed since the listing
		return nil
	}
	if err != nil {
		return fmt.Errorf("index: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return fmt.Errorf("index: %w", err)
	}
	t.st.Files++
	// pending is the end of a line whose start lies before pos, unless it is known
	// to be overlong: then it is skipped, not kept.
	var pending frontBuf
	overlong := false
	pos := info.Size()
	for pos > 0 {
		k := int(min(int64(len(t.blk)), pos))
		pos -= int64(k)
		blk := t.blk[:k]
		if got, err := f.ReadAt(blk, pos); got < k {
			if errors.Is(err, io.EOF) { // cut short since the Stat
				return nil
			}
			return fmt.Errorf("index: read %s: %w", path, err)
		}
		t.st.Bytes += int64(k)
		first := bytes.IndexByte(blk, '\n')
		if first < 0 { // all of it is the middle of a line
			overlong = pending.add(blk, overlong)
			continue
		}
		// The line that runs from the block's last newline on into pending.
		last := bytes.LastIndexByte(blk, '\n')
		line := blk[last+1:]
		if pending.len() > 0 || overlong {
			overlong = pending.add(line, overlong)
			line = pending.bytes()
		}
		if t.line(line, overlong) {
			return nil
		}
		// The lines wholly in the block: only those that can be host's, newest first.
		whole := blk[first+1 : last+1]
		t.spans = candidates(whole, t.quoted, t.spans[:0])
		for i := len(t.spans) - 1; i >= 0; i-- {
			if t.line(whole[t.spans[i].start:t.spans[i].end], false) {
				return nil
			}
		}
		pending.reset()
		overlong = pending.add(blk[:first], false) // the end of a line that starts before pos
	}
	t.line(pending.bytes(), overlong) // the file's first line
	return nil
}

type span struct{ start, end int }

// candidates appends the spans, without their newline, of the lines of b (whole
// lines, each ending in a newline) that hold quoted or a backslash (an escape
// could spell it), in order. Looking for them through the whole of b, rather than
// line by line, is what makes a host that is rare in the index cheap to tail.
func candidates(b, quoted []byte, out []span) []span {
	q, bs := -1, -1 // the next match of each at or after off; -1: to be looked for
	for off := 0; off < len(b); {
		if q < off && q != len(b) {
			q = index(b, off, bytes.Index(b[off:], quoted))
		}
		if bs < off && bs != len(b) {
			bs = index(b, off, bytes.IndexByte(b[off:], '\\'))
		}
		at := min(q, bs)
		if at == len(b) {
			break
		}
		start := bytes.LastIndexByte(b[:at], '\n') + 1
		end := at + bytes.IndexByte(b[at:], '\n')
		out = append(out, span{start, end})
		off = end + 1
	}
	return out
}

// index makes i, an index into b[off:] or -1, one into b or len(b).
func index(b []byte, off, i int) int {
	if i < 0 {
		return len(b)
	}
	return off + i
}

// line takes one line and reports whether t has its n.
func (t *tailer) line(line []byte, overlong bool) bool {
	if overlong || len(line) > MaxLineBytes {
		t.st.Skipped++
		return false
	}
	if !bytes.Contains(line, t.quoted) && bytes.IndexByte(line, '\\') < 0 {
		return false
	}
	t.st.Decoded++
	e, ok := decodeLine(line)
	if !ok {
		t.st.Skipped++
		return false
	}
	if e.Host != t.host || e.TS.Before(t.from) {
		return false
	}
	t.out = append(t.out, e)
	return len(t.out) == t.n
}

// frontBuf is the end of a line read backwards: bytes that grow at the front, in
// amortised linear time.
type frontBuf struct {
	b     []byte
	start int
}

// add puts s in front unless the line is (or so becomes) overlong: then it keeps
// nothing, and says so.
func (p *frontBuf) add(s []byte, overlong bool) bool {
	if overlong || p.len()+len(s) > MaxLineBytes {
		p.reset()
		return true
	}
	p.prepend(s)
	return false
}

func (p *frontBuf) prepend(s []byte) {
	if len(s) > p.start {
		n := p.len()
		nb := make([]byte, max(2*len(p.b), n+len(s), 512))
		copy(nb[len(nb)-n:], p.b[p.start:])
		p.b, p.start = nb, len(nb)-n
	}
	p.start -= len(s)
	copy(p.b[p.start:], s)
}

func (p *frontBuf) bytes() []byte { return p.b[p.start:] }
func (p *frontBuf) len() int      { return len(p.b) - p.start }
func (p *frontBuf) reset()        { p.start = len(p.b) }

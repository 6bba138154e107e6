package index

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"
)

// WindowStats counts what ReadWindow read.
type WindowStats struct {
	Files   int
	Lines   int // non-blank lines of those files
	Outside int // passed over by their ts, outside the window, without decoding
	Entries int // decoded
	Skipped int // garbage, torn or overlong lines
}

func (s *WindowStats) add(o WindowStats) {
	s.Files += o.Files
	s.Lines += o.Lines
	s.Outside += o.Outside
	s.Entries += o.Entries
	s.Skipped += o.Skipped
}

// chunkBytes is the share of a day file one worker reads at a time.
const chunkBytes = 4 << 20

// ReadWindow reads the entries of dir with from <= TS <= to, what Read calls fn for,
// on every core: a fleet-health check must stay well under a second on a Pi with two
// days of a 300-host fleet in the window's files (about 170,000 lines a day). It cuts
// the day files into chunks; each worker makes a part with newPart and calls add with
// it for the entries of the chunks it reads. So add runs on several goroutines at
// once, each with its own part, and which part an entry lands in, and in what order,
// is chance: what the caller builds must not depend on the order, and it merges the
// parts it is given back.
//
// Lines whose leading "ts" shows them outside the window are passed over without
// decoding (an older day file is mostly such lines). Torn, blank, garbage and overlong
// lines are skipped and counted as Scan does; memory stays bounded by the workers'
// buffers, whatever the files hold.
func ReadWindow[P any](dir string, from, to time.Time, newPart func() P, add func(P, Entry)) ([]P, WindowStats, error) {
	return readWindow(dir, from, to, chunkBytes, newPart, add)
}

func readWindow[P any](dir string, from, to time.Time, chunkSize int64, newPart func() P, add func(P, Entry)) ([]P, WindowStats, error) {
	var total WindowStats
	chunks, files, err := windowChunks(dir, from, to, chunkSize)
	total.Files = files
	if err != nil || len(chunks) == 0 {
		return nil, total, err
	}
	jobs := make(chan chunk)
	workers := min(runtime.GOMAXPROCS(0), len(chunks))
	parts := make([]P, workers)
	stats := make([]WindowStats, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		parts[w] = newPart()
		wg.Go(func() {
			for c := range jobs {
				if errs[w] == nil {
					errs[w] = readChunk(c, from, to, func(e Entry) { add(parts[w], e) }, &stats[w])
				}
			}
		})
	}
	for _, c := range chunks {
		jobs <- c
	}
	close(jobs)
	wg.Wait()
	for _, s := range stats {
		total.add(s)
	}
	return parts, total, errors.Join(errs...)
}

type chunk struct {
	path             string
	start, end, size int64
}

// windowChunks cuts the day files covering [from, to] into chunks.
func windowChunks(dir string, from, to time.Time, chunkSize int64) ([]chunk, int, error) {
	days, err := daysIn(dir, dayOf(from), dayOf(to))
	if err != nil {
		return nil, 0, err
	}
	var chunks []chunk
	files := 0
	for _, de := range days {
		info, err := de.Info()
		if errors.Is(err, fs.ErrNotExist) { // removed since the listing
			continue
		}
		if err != nil {
			return nil, files, fmt.Errorf("index: %w", err)
		}
		files++
		path := filepath.Join(dir, de.Name())
		for start := int64(0); start < info.Size(); start += chunkSize {
			chunks = append(chunks, chunk{path, start, min(start+chunkSize, info.Size()), info.Size()})
		}
	}
	return chunks, files, nil
}

// readChunk reads the lines that start within [c.start, c.end); the last one may run
// past c.end.
func readChunk(c chunk, from, to time.Time, add func(Entry), st *WindowStats) error {
	f, err := os.Open(c.path)
	if errors.Is(err, fs.ErrNotExist) { // removed since the listing
		return nil
	}
	if err != nil {
		return fmt.Errorf("index: %w", err)
	}
	defer f.Close()
	pos, ok, err := firstLine(f, c)
	if err != nil || !ok {
		return err
	}
	lr := newLineReader(io.NewSectionReader(f, pos, c.size-pos))
	fromS, toS := from.UTC().Format(secondLayout), to.UTC().Format(secondLayout)
	for pos < c.end {
		line, n, overlong, err := lr.next()
		pos += n
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("index: read %s: %w", c.path, err)
		}
		switch {
		case n == 0:
		case overlong:
			st.Lines++
			st.Skipped++
		case len(bytes.TrimSpace(line)) == 0:
		case outside(line, fromS, toS):
			st.Lines++
			st.Outside++
		default:
			st.Lines++
			e, ok := decodeLine(line)
			switch {
			case !ok:
				st.Skipped++
			case e.TS.Before(from) || e.TS.After(to):
				st.Entries++
			default:
				st.Entries++
				add(e)
			}
		}
		if err != nil { // io.EOF
			break
		}
	}
	return nil
}

// firstLine returns where the first line that starts within [c.start, c.end) begins,
// or false if none does. The line under way at c.start belongs to the chunk it
// started in: looking for its end no further than c.end keeps a long line from being
// read again by every chunk it spans.
func firstLine(f *os.File, c chunk) (int64, bool, error) {
	if c.start == 0 {
		return 0, true, nil
	}
	buf := make([]byte, min(64<<10, c.end-c.start+1))
	for at := c.start - 1; at < c.end; {
		n, err := f.ReadAt(buf[:min(int64(len(buf)), c.end-at)], at)
		if i := bytes.IndexByte(buf[:n], '\n'); i >= 0 {
			start := at + int64(i) + 1
			return start, start < c.end, nil
		}
		if errors.Is(err, io.EOF) { // cut short since the listing
			return 0, false, nil
		}
		if err != nil {
			return 0, false, fmt.Errorf("index: read %s: %w", c.path, err)
		}
		at += int64(n)
	}
	return 0, false, nil
}

const (
	secondLayout = "2006-01-02T15:04:05"
	tsPrefix     = `{"ts":"`
)

// outside reports whether a line as the writer writes it ({"ts":"<RFC 3339 UTC>", …)
// has a ts outside [from, to], comparing whole seconds as text. Anything else —
// another zone, another field first, garbage — is left for the decoder to judge.
func outside(line []byte, fromS, toS string) bool {
	const at = len(tsPrefix)
	if len(line) <= at+len(secondLayout) || !bytes.HasPrefix(line, []byte(tsPrefix)) {
		return false
	}
	if c := line[at+len(secondLayout)]; c != 'Z' && c != '.' {
		return false
	}
	sec := line[at : at+len(secondLayout)]
	// The second of ts before from's second means ts < from; after to's, ts > to.
	return string(sec) < fromS || string(sec) > toS
}

// lineReader returns lines of at most MaxLineBytes, flagging longer ones as overlong
// without holding them in memory.
type lineReader struct {
	br   *bufio.Reader
	line []byte
}

func newLineReader(r io.Reader) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, 64<<10)}
}

// next returns the next line without its newline, the bytes it took (newline
// included), whether it was overlong, and io.EOF after the last one. The line is
// valid until the next call.
func (lr *lineReader) next() ([]byte, int64, bool, error) {
	lr.line = lr.line[:0]
	var n int64
	overlong := false
	for {
		chunk, err := lr.br.ReadSlice('\n')
		n += int64(len(chunk))
		if !overlong && len(lr.line)+len(chunk) <= MaxLineBytes+1 {
			lr.line = append(lr.line, chunk...)
		} else {
			overlong = true
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		line := bytes.TrimSuffix(lr.line, []byte{'\n'})
		if len(line) > MaxLineBytes {
			overlong = true
		}
		return line, n, overlong, err
	}
}

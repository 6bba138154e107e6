package fleethealth

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
	"strings"
	"sync"
	"time"

	"github.com/cis490/cis490/internal/index"
)

// ReadStats counts what a check read of the index.
type ReadStats struct {
	Files   int `json:"files"`
	Lines   int `json:"lines"`   // non-blank lines of those files
	Outside int `json:"outside"` // passed over by their ts, outside the window
	Entries int `json:"entries"` // decoded
	Skipped int `json:"skipped"` // garbage, torn or overlong lines
}

func (s *ReadStats) add(o ReadStats) {
	s.Files += o.Files
	s.Lines += o.Lines
	s.Outside += o.Outside
	s.Entries += o.Entries
	s.Skipped += o.Skipped
}

// chunkBytes is the share of a day file one worker reads.
const chunkBytes = 4 << 20

type chunk struct {
	path             string
	start, end, size int64
}

// readWindow gathers the facts of every entry in the index folder dir with
// from <= ts <= to. It reads what index.Read would — only the day files of the
// window, each line through index.Scan, so torn, blank, garbage and overlong lines
// are treated alike — but a check must stay well under a second on a Pi with two days
// of a 200-host fleet in those files (about 115,000 lines a day), and decoding JSON is
// the whole cost. So it (1) passes over, without decoding, the lines whose leading
// "ts" already shows them outside the window: the older day file is mostly such
// lines; and (2) splits the files into chunks read on every core.
func readWindow(dir string, from, to time.Time) (*windowFacts, ReadStats, error) {
	return readWindowIn(dir, from, to, chunkBytes)
}

func readWindowIn(dir string, from, to time.Time, chunkSize int64) (*windowFacts, ReadStats, error) {
	var total ReadStats
	chunks, files, err := windowChunks(dir, from, to, chunkSize)
	total.Files = files
	if err != nil || len(chunks) == 0 {
		return newWindowFacts(), total, err
	}
	jobs := make(chan chunk)
	workers := min(runtime.GOMAXPROCS(0), len(chunks))
	sets := make([]*windowFacts, workers)
	stats := make([]ReadStats, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		sets[w] = newWindowFacts()
		wg.Go(func() {
			for c := range jobs {
				if errs[w] == nil {
					errs[w] = readChunk(c, from, to, sets[w], &stats[w])
				}
			}
		})
	}
	for _, c := range chunks {
		jobs <- c
	}
	close(jobs)
	wg.Wait()
	all := sets[0]
	for w := range workers {
		if w > 0 {
			all.merge(sets[w])
		}
		total.add(stats[w])
	}
	for _, f := range all.hosts {
		f.prune()
	}
	return all, total, errors.Join(errs...)
}

// windowChunks lists the day files covering [from, to] (index/<YYYY-MM-DD>.jsonl,
// SPEC §3.4) and cuts them into chunks. Listing, rather than building names, keeps a
// missing day or a missing folder harmless.
func windowChunks(dir string, from, to time.Time, chunkSize int64) ([]chunk, int, error) {
	first, last := from.UTC().Format(time.DateOnly), to.UTC().Format(time.DateOnly)
	des, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read the request index: %w", err)
	}
	var chunks []chunk
	files := 0
	for _, de := range des {
		day, ok := strings.CutSuffix(de.Name(), ".jsonl")
		if !ok || day < first || day > last || !de.Type().IsRegular() {
			continue
		}
		if _, err := time.Parse(time.DateOnly, day); err != nil {
			continue
		}
		info, err := de.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, files, fmt.Errorf("read the request index: %w", err)
		}
		files++
		path := filepath.Join(dir, de.Name())
		for start := int64(0); start < info.Size(); start += chunkSize {
			chunks = append(chunks, chunk{path, start, min(start+chunkSize, info.Size()), info.Size()})
		}
	}
	return chunks, files, nil
}

// readChunk reads the lines that start within [c.start, c.end): the line under way at
// c.start belongs to the previous chunk, and the last one may run past c.end.
func readChunk(c chunk, from, to time.Time, sink *windowFacts, st *ReadStats) error {
	f, err := os.Open(c.path)
	if errors.Is(err, fs.ErrNotExist) { // removed since the listing
		return nil
	}
	if err != nil {
		return fmt.Errorf("read the request index: %w", err)
	}
	defer f.Close()
	lr := lineReader{br: bufio.NewReaderSize(io.NewSectionReader(f, c.start, c.size-c.start), 64<<10)}
	pos := c.start
	if pos > 0 {
		prev := make([]byte, 1)
		if _, err := f.ReadAt(prev, pos-1); err != nil {
			return fmt.Errorf("read %s: %w", c.path, err)
		}
		if prev[0] != '\n' {
			_, n, _, err := lr.next()
			if err != nil && !errors.Is(err, io.EOF) {
				return fmt.Errorf("read %s: %w", c.path, err)
			}
			pos += n
		}
	}
	fromS, toS := from.UTC().Format(secondLayout), to.UTC().Format(secondLayout)
	var batch []byte
	decode := func(e index.Entry) error {
		if !e.TS.Before(from) && !e.TS.After(to) {
			sink.add(e)
		}
		return nil
	}
	flush := func() {
		s, _ := index.Scan(bytes.NewReader(batch), decode) // in-memory: no read error
		st.Entries += s.Entries
		st.Skipped += s.Skipped
		batch = batch[:0]
	}
	for pos < c.end {
		line, n, overlong, err := lr.next()
		pos += n
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read %s: %w", c.path, err)
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
			batch = append(append(batch, line...), '\n')
			if len(batch) >= 1<<20 {
				flush()
			}
		}
		if err != nil { // io.EOF
			break
		}
	}
	flush()
	return nil
}

const (
	secondLayout = "2006-01-02T15:04:05"
	tsPrefix     = `{"ts":"`
)

// outside reports whether a line as the index writer writes it ({"ts":"<RFC 3339 UTC>",
// …) has a ts outside [from, to], comparing whole seconds as text. Anything else —
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

// lineReader returns lines of at most index.MaxLineBytes, flagging longer ones as
// overlong without holding them in memory.
type lineReader struct {
	br   *bufio.Reader
	line []byte
}

// next returns the next line without its newline, the bytes it took (newline
// included), whether it was overlong, and io.EOF after the last one.
func (lr *lineReader) next() ([]byte, int64, bool, error) {
	lr.line = lr.line[:0]
	var n int64
	overlong := false
	for {
		chunk, err := lr.br.ReadSlice('\n')
		n += int64(len(chunk))
		if !overlong && len(lr.line)+len(chunk) <= index.MaxLineBytes+1 {
			lr.line = append(lr.line, chunk...)
		} else {
			overlong = true
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		line := bytes.TrimSuffix(lr.line, []byte{'\n'})
		if len(line) > index.MaxLineBytes {
			overlong = true
		}
		return line, n, overlong, err
	}
}

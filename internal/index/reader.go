package index

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Stats counts what a read went through. Lines counts every line, blank ones included;
// Entries the valid entries, in the window or not; Skipped the non-blank lines that are
// not entries (garbage, torn, over MaxLineBytes, or without a ts).
type Stats struct {
	Files, Lines, Entries, Skipped int
}

// Read calls fn, in file order, for each entry in dir with from <= TS <= to. Lines are
// appended in the order requests finish, so TS is not sorted. Only the day files of the
// window are opened; missing ones (or a missing dir) are fine. An error from fn stops
// the read and is returned. ReadWindow reads the same entries faster, in no order.
func Read(dir string, from, to time.Time, fn func(Entry) error) (Stats, error) {
	var st Stats
	days, err := daysIn(dir, dayOf(from), dayOf(to))
	if err != nil {
		return st, err
	}
	inWindow := func(e Entry) error {
		if e.TS.Before(from) || e.TS.After(to) {
			return nil
		}
		return fn(e)
	}
	for _, de := range days {
		fst, err := readFile(filepath.Join(dir, de.Name()), inWindow)
		st.Files++
		st.Lines += fst.Lines
		st.Entries += fst.Entries
		st.Skipped += fst.Skipped
		if err != nil {
			return st, err
		}
	}
	return st, nil
}

// daysIn lists the day files of dir from first to last, oldest first. Listing, rather
// than counting days, keeps any window cheap, even one that starts at the zero time,
// and a missing day or a missing dir harmless.
func daysIn(dir, first, last string) ([]fs.DirEntry, error) {
	des, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("index: %w", err)
	}
	var days []fs.DirEntry
	for _, de := range des { // sorted by name, so by day
		day, ok := strings.CutSuffix(de.Name(), ".jsonl")
		if !ok || day < first || day > last || !de.Type().IsRegular() {
			continue
		}
		if _, err := time.Parse(dayLayout, day); err == nil {
			days = append(days, de)
		}
	}
	return days, nil
}

func readFile(path string, fn func(Entry) error) (Stats, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) { // removed since the listing
		return Stats{}, nil
	}
	if err != nil {
		return Stats{}, fmt.Errorf("index: %w", err)
	}
	defer f.Close()
	var fnErr error
	st, err := Scan(f, func(e Entry) error {
		fnErr = fn(e)
		return fnErr
	})
	if fnErr != nil {
		return st, fnErr
	}
	if err != nil {
		return st, fmt.Errorf("index: read %s: %w", path, err)
	}
	return st, nil
}

// Scan calls fn for each entry of one stream. Bad lines are skipped and counted, never
// an error; only a read error from r, or an error from fn, is returned. Memory stays
// bounded whatever the line lengths: an overlong line is skipped as it streams past.
func Scan(r io.Reader, fn func(Entry) error) (Stats, error) {
	var st Stats
	lr := newLineReader(r)
	for {
		line, n, overlong, err := lr.next()
		if err != nil && !errors.Is(err, io.EOF) {
			return st, err
		}
		if n > 0 {
			st.Lines++
			switch {
			case overlong:
				st.Skipped++
			case len(bytes.TrimSpace(line)) == 0:
			default:
				e, ok := decodeLine(line)
				if !ok {
					st.Skipped++
					break
				}
				st.Entries++
				if ferr := fn(e); ferr != nil {
					return st, ferr
				}
			}
		}
		if err != nil { // io.EOF
			return st, nil
		}
	}
}

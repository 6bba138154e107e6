package index

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
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
// the read and is returned.
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
	for _, day := range days {
		fs, err := readFile(dayPath(dir, day), inWindow)
		st.Files++
		st.Lines += fs.Lines
		st.Entries += fs.Entries
		st.Skipped += fs.Skipped
		if err != nil {
			return st, err
		}
	}
	return st, nil
}

// daysIn lists the day files of dir from first to last, oldest first. Listing, rather
// than counting days, keeps any window cheap, even one that starts at the zero time.
func daysIn(dir, first, last string) ([]string, error) {
	des, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("index: %w", err)
	}
	var days []string
	for _, de := range des { // sorted by name, so by day
		day, ok := strings.CutSuffix(de.Name(), ".jsonl")
		if !ok || day < first || day > last || !de.Type().IsRegular() {
			continue
		}
		if _, err := time.Parse(dayLayout, day); err == nil {
			days = append(days, day)
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
	br := bufio.NewReaderSize(r, 64<<10)
	var line []byte
	overlong := false
	for {
		chunk, err := br.ReadSlice('\n')
		if !overlong && len(line)+len(chunk) <= MaxLineBytes+1 {
			line = append(line, chunk...)
		} else {
			overlong = true
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return st, err
		}
		if len(line) > 0 || overlong {
			st.Lines++
			if e, ok, blank := parseLine(line, overlong); ok {
				st.Entries++
				if ferr := fn(e); ferr != nil {
					return st, ferr
				}
			} else if !blank {
				st.Skipped++
			}
		}
		if err != nil { // io.EOF
			return st, nil
		}
		line, overlong = line[:0], false
	}
}

func parseLine(line []byte, overlong bool) (e Entry, ok, blank bool) {
	line = bytes.TrimSuffix(line, []byte{'\n'})
	if overlong || len(line) > MaxLineBytes {
		return e, false, false
	}
	if len(bytes.TrimSpace(line)) == 0 {
		return e, false, true
	}
	if json.Unmarshal(line, &e) != nil || e.TS.IsZero() {
		return e, false, false
	}
	return e, true, false
}

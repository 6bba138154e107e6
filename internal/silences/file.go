package silences

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/cis490/cis490/internal/fsutil"
	"github.com/cis490/cis490/internal/protocol"
)

// Operations of a line of the file.
const (
	opAdd = "add"
	opEnd = "end"
)

// record is one line of silences.jsonl.
type record struct {
	Op      string   `json:"op"`
	Silence *Silence `json:"silence,omitempty"` // op add
	// op end: which silence, and when it was ended.
	ID string    `json:"id,omitempty"`
	At time.Time `json:"at,omitzero"`
}

// Stats count what Load read.
type Stats struct {
	Silences int `json:"silences"`
	Skipped  int `json:"skipped"` // garbage, torn, overlong or inconsistent lines
}

// maxLine bounds a line: a silence is well under 1 KiB, and a longer line is not ours.
const maxLine = 64 << 10

// idRE accepts more than newID makes, so that a future cis490's ids still load.
var idRE = regexp.MustCompile(`^[0-9a-z]{1,32}$`)

// Load reads the silences file. A missing file is no silence; a line that cannot be
// used (a crash's torn tail, garbage, an operation this version does not know) is
// skipped and counted, never fatal: one bad line must not lift every silence.
func Load(path string) (*Set, Stats, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return newSet(), Stats{}, nil
	}
	if err != nil {
		return nil, Stats{}, fmt.Errorf("silences file %s: %w", path, err)
	}
	defer f.Close()
	set, st, err := read(f)
	if err != nil {
		return nil, st, fmt.Errorf("silences file %s: %w", path, err)
	}
	return set, st, nil
}

func read(r io.Reader) (*Set, Stats, error) {
	set, st := newSet(), Stats{}
	br := bufio.NewReaderSize(r, maxLine)
	overlong := false
	for {
		line, err := br.ReadSlice('\n')
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			overlong = true // the rest of it comes in the next reads
			continue
		case errors.Is(err, io.EOF):
			// No newline at the end: a line a crash cut short, or one being written.
			if overlong || len(bytes.TrimSpace(line)) > 0 {
				st.Skipped++
			}
			st.Silences = len(set.entries)
			return set, st, nil
		case err != nil:
			return nil, st, err
		}
		if overlong {
			overlong = false
			st.Skipped++
			continue
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if !set.apply(line) {
			st.Skipped++
		}
	}
}

// apply adds one line's effect to the set, and reports whether the line was usable.
func (s *Set) apply(line []byte) bool {
	var rec record
	if json.Unmarshal(line, &rec) != nil {
		return false
	}
	switch rec.Op {
	case opAdd:
		sl := rec.Silence
		if sl == nil || !idRE.MatchString(sl.ID) || s.byID[sl.ID] != nil || sl.Start.IsZero() || !sl.End.After(sl.Start) {
			return false
		}
		host, ok := protocol.NormalizeHost(sl.Host)
		if !ok {
			return false
		}
		sl.Host = host
		s.add(&entry{Silence: *sl})
		return true
	case opEnd:
		e := s.byID[rec.ID]
		if e == nil || rec.At.IsZero() || !e.endedAt.IsZero() {
			return false
		}
		e.endedAt = rec.At
		return true
	}
	return false
}

// Add validates s (see Silence.check), gives it a new id and appends it. symptoms are
// the ones s may name (fleet health's); max is fleet_health.max_silence (0: DefaultMax).
func Add(path string, s Silence, now time.Time, max time.Duration, symptoms []string) (Silence, error) {
	if max <= 0 {
		max = DefaultMax
	}
	s, err := s.check(now, max, symptoms)
	if err != nil {
		return Silence{}, err
	}
	err = appendLocked(path, true, func(set *Set) (record, error) {
		for s.ID == "" || set.byID[s.ID] != nil {
			if s.ID, err = newID(); err != nil {
				return record{}, err
			}
		}
		return record{Op: opAdd, Silence: &s}, nil
	})
	if err != nil {
		return Silence{}, err
	}
	return s, nil
}

// End ends the silence with this id at now (unsilence). An unknown id is ErrNotFound;
// a silence already ended or expired is ErrOver (with the silence), and nothing is
// written: ending it again changes nothing.
func End(path, id string, now time.Time) (Silence, error) {
	id = strings.ToLower(strings.TrimSpace(id))
	var found Silence
	err := appendLocked(path, false, func(set *Set) (record, error) {
		e := set.byID[id]
		if e == nil {
			return record{}, fmt.Errorf("%w with id %q: `cis490 alerts silences` lists them", ErrNotFound, id)
		}
		found = e.Silence
		switch e.state(now) {
		case StateEnded:
			return record{}, fmt.Errorf("%w: silence %s already ended at %s", ErrOver, id, e.endedAt.UTC().Format(time.RFC3339))
		case StateExpired:
			return record{}, fmt.Errorf("%w: silence %s already expired at %s", ErrOver, id, e.End.UTC().Format(time.RFC3339))
		}
		return record{Op: opEnd, ID: id, At: now.UTC()}, nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return Silence{}, fmt.Errorf("%w with id %q: there are no silences yet", ErrNotFound, id)
	}
	if err != nil && !errors.Is(err, ErrOver) {
		return Silence{}, err
	}
	return found, err
}

func newID() (string, error) {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("silence id: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// appendLocked appends the line next decides on from the file's current silences.
// The file's flock makes read-decide-append one step (two adds never take the same
// id; two ends never both write), and the line goes out in one write on an O_APPEND
// file, fsynced before the caller hears it was recorded. create says whether a
// missing file (and its folder) may be made; otherwise its absence is fs.ErrNotExist.
func appendLocked(path string, create bool, next func(*Set) (record, error)) error {
	dir := filepath.Dir(path)
	flags := os.O_RDWR | os.O_APPEND
	created := false
	if create {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return fmt.Errorf("silences file %s: %w", path, err)
		}
		_, statErr := os.Stat(path)
		created = errors.Is(statErr, fs.ErrNotExist)
		flags |= os.O_CREATE
	}
	f, err := os.OpenFile(path, flags, 0o640)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && !create {
			return err
		}
		return fmt.Errorf("silences file %s: %w", path, err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("lock silences file %s: %w", path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("silences file %s: %w", path, err)
	}
	set, _, err := read(io.NewSectionReader(f, 0, fi.Size()))
	if err != nil {
		return fmt.Errorf("silences file %s: %w", path, err)
	}
	rec, err := next(set)
	if err != nil {
		return err
	}
	line, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode silence: %w", err)
	}
	line = append(line, '\n')
	torn, err := fsutil.EndsTorn(f)
	if err != nil {
		return fmt.Errorf("silences file %s: %w", path, err)
	}
	if torn {
		// A crash cut the last line short: end it, so the new line is not glued to
		// its remains (Load then skips only the torn part).
		line = append([]byte{'\n'}, line...)
	}
	if _, err := f.Write(line); err != nil {
		return fmt.Errorf("append to silences file %s: %w", path, err)
	}
	if err := errors.Join(f.Sync(), f.Close()); err != nil {
		return fmt.Errorf("append to silences file %s: %w", path, err)
	}
	if created {
		return fsutil.SyncDir(dir)
	}
	return nil
}

package tokens

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/gofrs/flock"
	"github.com/google/renameio/v2"

	"github.com/cis490/cis490/internal/fsutil"
)

const header = "# cis490 tokens: only SHA-256 hashes of tokens are stored here. Add with `cis490 token new`.\n"

// Append mints a token for id, adds its hash to the tokens file at path (created if
// missing) and returns the token, which exists nowhere else: show it once.
func Append(path string, id Identity, now time.Time) (string, error) {
	token, _, err := Mint(path, id, now)
	return token, err
}

// Mint is Append that also says which entry it added (its id, for `token revoke`).
func Mint(path string, id Identity, now time.Time) (string, Entry, error) {
	id, err := id.normalize()
	if err != nil {
		return "", Entry{}, fmt.Errorf("new token: %w", err)
	}
	var token string
	var added Entry
	err = update(path, true, func(lay *layout, set *Set) ([]Entry, error) {
		token, added, err = set.newEntry(id, now)
		if err != nil {
			return nil, err
		}
		// Appending text, rather than re-encoding, keeps the operator's comments.
		lay.blocks = append(lay.blocks, block{body: []string{formatEntry(added)}})
		return append(set.Entries(), added), nil
	})
	if err != nil {
		return "", Entry{}, err
	}
	return token, added, nil
}

// newEntry mints a token for id with an id no entry of s has.
func (s *Set) newEntry(id Identity, now time.Time) (string, Entry, error) {
	token, err := Generate()
	if err != nil {
		return "", Entry{}, err
	}
	hash := Hash(token)
	e := Entry{Identity: id, ID: freeID(hash, s.hasID), Created: now.UTC().Truncate(time.Second), hash: hash}
	return token, e, nil
}

// update is the one read-modify-write of the tokens file. Under its lock it parses the
// file (a file that does not parse is never rewritten), lets edit change its layout and
// say which entries the result must hold, and checks the edited text holds exactly
// those before writing it. When it does not (a layout the line editor does not know),
// the file is written out anew from the entries: right, though without its comments.
func update(path string, create bool, edit func(*layout, *Set) ([]Entry, error)) error {
	dir := filepath.Dir(path)
	if create {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("tokens file: %w", err)
		}
	} else if _, err := os.Stat(path); err != nil {
		// Checked before taking the lock, whose file would otherwise be left behind.
		return fmt.Errorf("tokens file: %w", err)
	}
	// Without the lock, two commands at once would each write the file with only
	// their own change, and one token would silently not work (or not be revoked).
	lock := flock.New(path+".lock", flock.SetPermissions(0o600))
	if err := lock.Lock(); err != nil {
		return fmt.Errorf("lock tokens file: %w", err)
	}
	defer lock.Unlock()

	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist) && create:
		data = []byte(header)
	case err != nil:
		return fmt.Errorf("tokens file: %w", err)
	}
	set, err := Parse(data, path)
	if err != nil {
		return err
	}
	lay := parseLayout(string(data))
	blind := len(lay.blocks) != set.Len() // entries the line editor cannot see
	if blind {
		lay = layout{blocks: make([]block, set.Len())}
	}
	want, err := edit(&lay, set)
	if err != nil {
		return err
	}
	text := lay.String()
	if got, err := Parse([]byte(text), path); blind || err != nil || !sameEntries(got.entries, want) {
		text = formatFile(want)
	}
	if err := writeAtomic(path, []byte(text)); err != nil {
		return fmt.Errorf("write tokens file: %w", err)
	}
	return nil
}

// sameEntries compares what the file says about each token; derived ids may differ.
func sameEntries(a, b []Entry) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].hash != b[i].hash || a[i].Identity != b[i].Identity ||
			!a[i].Created.Equal(b[i].Created) || !a[i].Expires.Equal(b[i].Expires) {
			return false
		}
	}
	return true
}

// writeAtomic replaces path with data, mode 0600 whatever the old file's mode was
// (renameio.WriteFile would keep a looser one), and fsyncs the directory so the rename
// survives a crash (renameio fsyncs only the file).
func writeAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := renameio.NewPendingFile(path, renameio.WithStaticPermissions(0o600), renameio.WithTempDir(dir))
	if err != nil {
		return err
	}
	defer f.Cleanup()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.CloseAtomicallyReplace(); err != nil {
		return err
	}
	return fsutil.SyncDir(dir)
}

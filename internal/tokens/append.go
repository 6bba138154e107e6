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
	id, err := id.normalize()
	if err != nil {
		return "", fmt.Errorf("new token: %w", err)
	}
	token, err := Generate()
	if err != nil {
		return "", err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("tokens file: %w", err)
	}
	// Read-modify-write: without the lock, two `token new` at once would each write the
	// file with only their own new entry, and one token would silently not work.
	lock := flock.New(path+".lock", flock.SetPermissions(0o600))
	if err := lock.Lock(); err != nil {
		return "", fmt.Errorf("lock tokens file: %w", err)
	}
	defer lock.Unlock()

	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		data = []byte(header)
	case err != nil:
		return "", fmt.Errorf("tokens file: %w", err)
	}
	// Appending text, rather than re-encoding, keeps the operator's comments.
	if len(data) > 0 && data[len(data)-1] != '\n' {
		data = append(data, '\n')
	}
	data = append(data, formatEntry(Hash(token), id, now)...)
	// Validates the existing entries, and that the new one did not break the file.
	if _, err := Parse(data, path); err != nil {
		return "", err
	}
	if err := writeAtomic(path, data); err != nil {
		return "", fmt.Errorf("write tokens file: %w", err)
	}
	return token, nil
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

// formatEntry writes an entry by hand so it looks like the documented example. %q is
// valid TOML here: hash, host and admin are validated to plain ASCII without quotes.
func formatEntry(hash string, id Identity, now time.Time) string {
	who := fmt.Sprintf("host = %q", id.Host)
	if id.IsAdmin() {
		who = fmt.Sprintf("admin = %q", id.Admin)
	}
	return fmt.Sprintf("\n[[token]]\nsha256 = %q\n%s\ncreated = %s\n", hash, who, now.UTC().Format(time.RFC3339))
}

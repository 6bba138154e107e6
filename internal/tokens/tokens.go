// Package tokens keeps the receiver's bearer tokens (SPEC §3.1). The tokens file holds
// only SHA-256 hashes, so reading it, or a backup of it, gives nobody a token.
package tokens

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"

	"github.com/cis490/cis490/internal/protocol"
)

// tokenPrefix makes a leaked token recognisable (secret scanners, and our own redaction).
const tokenPrefix = "c490_"

var adminRE = regexp.MustCompile(`^[A-Za-z0-9._@-]{1,64}$`)

// idRE leaves out "_", so a token (c490_…) pasted as an id is refused.
var idRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.-]{0,63}$`)

// Identity is who a token speaks for: a lab host, or an admin. Exactly one is set.
type Identity struct {
	Host  string
	Admin string
}

// IsAdmin reports whether the identity is an admin's.
func (i Identity) IsAdmin() bool { return i.Admin != "" }

func (i Identity) String() string {
	if i.IsAdmin() {
		return "admin " + i.Admin
	}
	return "host " + i.Host
}

// normalize checks that exactly one of Host and Admin is set and valid, and lowercases
// the host.
func (i Identity) normalize() (Identity, error) {
	switch {
	case i.Host != "" && i.Admin != "":
		return Identity{}, errors.New("both host and admin are set; a token is for one or the other")
	case i.Host != "":
		host, ok := protocol.NormalizeHost(i.Host)
		if !ok {
			return Identity{}, fmt.Errorf("host %s is not a valid RFC 1123 host name", quote(i.Host))
		}
		return Identity{Host: host}, nil
	case i.Admin != "":
		// A token pasted as the admin name would match the pattern, then be logged
		// with every request the admin makes.
		if !adminRE.MatchString(i.Admin) || strings.HasPrefix(i.Admin, tokenPrefix) {
			return Identity{}, fmt.Errorf("admin %s must be 1 to 64 letters, digits or . _ @ - (and not a token)", quote(i.Admin))
		}
		return i, nil
	default:
		return Identity{}, errors.New("neither host nor admin is set")
	}
}

// quote quotes a value for an error message, unless it may be a token.
func quote(s string) string {
	if strings.Contains(s, tokenPrefix) {
		return `"c490_…" (redacted: looks like a token)`
	}
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return fmt.Sprintf("%q", s)
}

// Generate returns a new random token: 32 bytes from crypto/rand, base64url, prefixed.
func Generate() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate token: %w", err)
	}
	return tokenPrefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// Hash returns the SHA-256 of token in lowercase hex, as stored in the tokens file.
func Hash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// Set is the parsed content of a tokens file.
type Set struct {
	entries []Entry        // in file order
	byHash  map[string]int // index into entries
}

// Entry is one token of the file, as `token list` shows it: never its hash.
type Entry struct {
	Identity
	// ID names the entry for `token revoke --id`. Entries written before ids were kept
	// get one derived from the hash (its first 8 hex digits, more on a clash): it says
	// nothing about the token.
	ID      string
	Created time.Time // zero: written before creation times were kept
	Expires time.Time // zero: never; set by `token rotate` on the tokens it replaces
	hash    string
}

// Live reports whether the entry's token is still accepted at now.
func (e Entry) Live(now time.Time) bool { return e.Expires.IsZero() || now.Before(e.Expires) }

// Lookup returns the identity of a token that is live at now. A map lookup on the hash
// needs no constant-time comparison: its timing could only tell about the hash of the
// guess, not a stored token.
func (s *Set) Lookup(token string, now time.Time) (Identity, bool) {
	if token == "" {
		return Identity{}, false
	}
	i, ok := s.byHash[Hash(token)]
	if !ok || !s.entries[i].Live(now) {
		return Identity{}, false
	}
	return s.entries[i].Identity, true
}

// Len is the number of tokens, expired ones included.
func (s *Set) Len() int { return len(s.entries) }

// Entries returns a copy of the entries, in file order.
func (s *Set) Entries() []Entry { return slices.Clone(s.entries) }

type fileEntry struct {
	ID      string    `toml:"id"`
	SHA256  string    `toml:"sha256"`
	Host    string    `toml:"host"`
	Admin   string    `toml:"admin"`
	Created time.Time `toml:"created"`
	Expires time.Time `toml:"expires"`
}

type fileDoc struct {
	Token []fileEntry `toml:"token"`
}

// Parse validates a tokens file; name is used in errors. Errors never contain a token.
func Parse(data []byte, name string) (*Set, error) {
	var doc fileDoc
	if err := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields().Decode(&doc); err != nil {
		return nil, fmt.Errorf("tokens file %s: %s", name, describe(err))
	}
	s := &Set{entries: make([]Entry, 0, len(doc.Token)), byHash: make(map[string]int, len(doc.Token))}
	idOf := make(map[string]int, len(doc.Token)) // explicit id → entry number
	for i, e := range doc.Token {
		n := i + 1
		if !protocol.ValidSHA256(e.SHA256) {
			return nil, fmt.Errorf("tokens file %s: entry %d: sha256 must be 64 lowercase hex digits (the hash, never the token)", name, n)
		}
		id, err := Identity{Host: e.Host, Admin: e.Admin}.normalize()
		if err != nil {
			return nil, fmt.Errorf("tokens file %s: entry %d: %w", name, n, err)
		}
		if prev, dup := s.byHash[e.SHA256]; dup {
			return nil, fmt.Errorf("tokens file %s: entry %d: duplicate sha256, already in entry %d", name, n, prev+1)
		}
		if e.ID != "" {
			if !idRE.MatchString(e.ID) {
				return nil, fmt.Errorf("tokens file %s: entry %d: id %s must be 1 to 64 letters, digits, dots or hyphens", name, n, quote(e.ID))
			}
			if prev, dup := idOf[e.ID]; dup {
				return nil, fmt.Errorf("tokens file %s: entry %d: duplicate id %q, already in entry %d", name, n, e.ID, prev)
			}
			idOf[e.ID] = n
		}
		s.byHash[e.SHA256] = i
		s.entries = append(s.entries, Entry{Identity: id, ID: e.ID, Created: e.Created, Expires: e.Expires, hash: e.SHA256})
	}
	// Derived after every explicit id is known, so that a derived one never takes
	// an id the file gives another entry.
	for i := range s.entries {
		if s.entries[i].ID == "" {
			s.entries[i].ID = freeID(s.entries[i].hash, func(id string) bool { _, ok := idOf[id]; return ok })
			idOf[s.entries[i].ID] = i + 1
		}
	}
	return s, nil
}

// freeID is the shortest prefix of hash, at least 8 hex digits, that is not taken.
func freeID(hash string, taken func(string) bool) string {
	for n := 8; n < len(hash); n++ {
		if !taken(hash[:n]) {
			return hash[:n]
		}
	}
	return hash
}

func (s *Set) hasID(id string) bool {
	return slices.ContainsFunc(s.entries, func(e Entry) bool { return e.ID == id })
}

func describe(err error) string {
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) {
		var msgs []string
		for _, e := range strict.Errors {
			row, _ := e.Position()
			msgs = append(msgs, fmt.Sprintf("unknown key %s on line %d", quote(strings.Join(e.Key(), ".")), row))
		}
		return strings.Join(msgs, "; ")
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, _ := de.Position()
		return fmt.Sprintf("line %d: %s", row, strings.TrimPrefix(de.Error(), "toml: "))
	}
	return err.Error()
}

// Load reads and parses the tokens file at path.
func Load(path string) (*Set, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokens file: %w", err)
	}
	return Parse(data, path)
}

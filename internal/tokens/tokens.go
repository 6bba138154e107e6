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
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"

	"github.com/cis490/cis490/internal/protocol"
)

// tokenPrefix makes a leaked token recognisable (secret scanners, and our own redaction).
const tokenPrefix = "c490_"

var adminRE = regexp.MustCompile(`^[A-Za-z0-9._@-]{1,64}$`)

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
	byHash map[string]Identity
}

// Lookup returns the identity of token. A map lookup on the hash needs no constant-time
// comparison: its timing could only tell about the hash of the guess, not a stored token.
func (s *Set) Lookup(token string) (Identity, bool) {
	if token == "" {
		return Identity{}, false
	}
	id, ok := s.byHash[Hash(token)]
	return id, ok
}

// Len is the number of tokens.
func (s *Set) Len() int { return len(s.byHash) }

type fileEntry struct {
	SHA256  string    `toml:"sha256"`
	Host    string    `toml:"host"`
	Admin   string    `toml:"admin"`
	Created time.Time `toml:"created"`
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
	s := &Set{byHash: make(map[string]Identity, len(doc.Token))}
	entryOf := make(map[string]int, len(doc.Token))
	for i, e := range doc.Token {
		n := i + 1
		if !protocol.ValidSHA256(e.SHA256) {
			return nil, fmt.Errorf("tokens file %s: entry %d: sha256 must be 64 lowercase hex digits (the hash, never the token)", name, n)
		}
		id, err := Identity{Host: e.Host, Admin: e.Admin}.normalize()
		if err != nil {
			return nil, fmt.Errorf("tokens file %s: entry %d: %w", name, n, err)
		}
		if prev, dup := entryOf[e.SHA256]; dup {
			return nil, fmt.Errorf("tokens file %s: entry %d: duplicate sha256, already in entry %d", name, n, prev)
		}
		entryOf[e.SHA256] = n
		s.byHash[e.SHA256] = id
	}
	return s, nil
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

package tokens

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var now = time.Date(2026, 11, 28, 18, 0, 0, 0, time.UTC)

func TestIdentity(t *testing.T) {
	assert.Equal(t, "host lab-07", Identity{Host: "lab-07"}.String())
	assert.Equal(t, "admin alice", Identity{Admin: "alice"}.String())
	assert.True(t, Identity{Admin: "alice"}.IsAdmin())
	assert.False(t, Identity{Host: "lab-07"}.IsAdmin())
}

func TestGenerateAndHash(t *testing.T) {
	a, err := Generate()
	require.NoError(t, err)
	b, err := Generate()
	require.NoError(t, err)
	assert.NotEqual(t, a, b)
	require.True(t, strings.HasPrefix(a, "c490_"), a)
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(a, "c490_"))
	require.NoError(t, err)
	assert.Len(t, raw, 32)
	assert.Equal(t, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", Hash("abc"))
}

func TestAppendLoadLookup(t *testing.T) {
	path := filepath.Join(t.TempDir(), "etc", "cis490", "tokens.toml")
	hostTok, err := Append(path, Identity{Host: "Lab-07"}, now)
	require.NoError(t, err)
	adminTok, err := Append(path, Identity{Admin: "alice"}, now)
	require.NoError(t, err)

	set, err := Load(path)
	require.NoError(t, err)
	assert.Equal(t, 2, set.Len())
	id, ok := set.Lookup(hostTok, now)
	assert.True(t, ok)
	assert.Equal(t, Identity{Host: "lab-07"}, id)
	id, ok = set.Lookup(adminTok, now)
	assert.True(t, ok)
	assert.Equal(t, Identity{Admin: "alice"}, id)
	for _, bad := range []string{"", "c490_nope", hostTok + "x", Hash(hostTok)} {
		_, ok := set.Lookup(bad, now)
		assert.False(t, ok, bad)
	}

	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	fi, err = os.Stat(filepath.Dir(path))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm())

	data, err := os.ReadFile(path)
	require.NoError(t, err)
	text := string(data)
	assert.True(t, strings.HasPrefix(text, "# cis490 tokens: only SHA-256 hashes"), text)
	assert.Contains(t, text, "[[token]]\nid = \""+Hash(hostTok)[:8]+"\"\nsha256 = \""+Hash(hostTok)+"\"\nhost = \"lab-07\"\ncreated = 2026-11-28T18:00:00Z\n")
	assert.Contains(t, text, "admin = \"alice\"")
	assert.NotContains(t, text, hostTok)
	assert.NotContains(t, text, adminTok)
	assert.NotContains(t, text, strings.TrimPrefix(hostTok, "c490_"))
}

func TestAppendKeepsCommentsAndTightensMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.toml")
	before := "# hand-written note\n[[token]]\nsha256 = \"" + Hash("old") + "\"\nhost = \"lab-01\" # the old one"
	require.NoError(t, os.WriteFile(path, []byte(before), 0o644))
	tok, err := Append(path, Identity{Host: "lab-02"}, now)
	require.NoError(t, err)

	data, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(data), before+"\n"), string(data))
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	set, err := Load(path)
	require.NoError(t, err)
	_, ok := set.Lookup(tok, now)
	assert.True(t, ok)
	_, ok = set.Lookup("old", now)
	assert.True(t, ok)
}

func TestAppendRefusesBadIdentityOrFile(t *testing.T) {
	dir := t.TempDir()
	for _, id := range []Identity{{}, {Host: "lab-07", Admin: "alice"}, {Host: "-bad-"}, {Admin: "no spaces"}} {
		_, err := Append(filepath.Join(dir, "tokens.toml"), id, now)
		assert.Error(t, err, id)
	}
	_, err := os.Stat(filepath.Join(dir, "tokens.toml"))
	assert.ErrorIs(t, err, os.ErrNotExist, "a refused identity must not create the file")

	path := filepath.Join(dir, "broken.toml")
	broken := "[[token]]\nsha256 = \"" + Hash("x") + "\"\nhots = \"lab-07\"\n"
	require.NoError(t, os.WriteFile(path, []byte(broken), 0o600))
	_, err = Append(path, Identity{Host: "lab-08"}, now)
	assert.ErrorContains(t, err, `unknown key "token.hots"`)
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, broken, string(data), "a broken file is left as it was")
}

func TestAppendConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.toml")
	const n = 10
	toks := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { toks[i], errs[i] = Append(path, Identity{Host: fmt.Sprintf("lab-%02d", i)}, now) })
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	set, err := Load(path)
	require.NoError(t, err)
	assert.Equal(t, n, set.Len())
	for i, tok := range toks {
		id, ok := set.Lookup(tok, now)
		assert.True(t, ok, i)
		assert.Equal(t, fmt.Sprintf("lab-%02d", i), id.Host)
	}
}

func TestParse(t *testing.T) {
	h1, h2 := Hash("one"), Hash("two")
	token := "c490_" + strings.Repeat("A", 43)
	entry := func(lines ...string) string { return "[[token]]\n" + strings.Join(lines, "\n") + "\n" }
	good := entry(`sha256 = "`+h1+`"`, `host = "lab-01"`)
	for _, tc := range []struct {
		name, data string
		want       []string // substrings of the error; none means valid
	}{
		{"empty", "", nil},
		{"host lowercased", entry(`sha256 = "`+h1+`"`, `host = "LAB-01.Example.ORG"`, `created = 2026-11-28T18:00:00Z`), nil},
		{"admin, local created", entry(`sha256 = '`+h1+`'`, `admin = "alice@lab"`, `created = 2026-11-28T18:00:00`), nil},
		{"unknown key", good + entry(`sha256 = "`+h2+`"`, `hots = "lab-02"`), []string{`unknown key "token.hots" on line 6`}},
		{"unknown table", good + "[lab-07]\nsha256 = \"" + h2 + "\"\n", []string{`unknown key "lab-07"`}},
		{"both", good + entry(`sha256 = "`+h2+`"`, `host = "lab-02"`, `admin = "alice"`), []string{"entry 2", "both host and admin"}},
		{"neither", good + entry(`sha256 = "`+h2+`"`), []string{"entry 2", "neither host nor admin"}},
		{"bad host", entry(`sha256 = "`+h1+`"`, `host = "lab_07"`), []string{"entry 1", `host "lab_07" is not a valid`}},
		{"bad admin", entry(`sha256 = "`+h1+`"`, `admin = "alice smith"`), []string{"entry 1", "admin"}},
		{"uppercase hash", entry(`sha256 = "`+strings.ToUpper(h1)+`"`, `host = "lab-01"`), []string{"entry 1", "sha256 must be 64 lowercase hex"}},
		{"short hash", entry(`sha256 = "`+h1[:63]+`"`, `host = "lab-01"`), []string{"entry 1", "sha256"}},
		{"missing hash", entry(`host = "lab-01"`), []string{"entry 1", "sha256"}},
		{"duplicate", good + entry(`sha256 = "`+h1+`"`, `admin = "bob"`), []string{"entry 2", "duplicate sha256, already in entry 1"}},
		{"syntax", "[[token]\n", []string{"line 1"}},
		{"wrong type", entry(`sha256 = 3`), []string{"line 2"}},
		{"token pasted as hash", entry(`sha256 = "`+token+`"`, `host = "lab-01"`), []string{"entry 1", "sha256"}},
		{"token pasted as host", entry(`sha256 = "`+h1+`"`, `host = "`+token+`"`), []string{"entry 1", "redacted"}},
		{"token pasted as admin", entry(`sha256 = "`+h1+`"`, `admin = "`+token+`"`), []string{"entry 1", "redacted"}},
		{"token pasted as key", entry(`sha256 = "`+h1+`"`, token+` = "lab-01"`), []string{"unknown key", "redacted"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set, err := Parse([]byte(tc.data), "/etc/cis490/tokens.toml")
			if tc.want == nil {
				require.NoError(t, err)
				for _, e := range set.Entries() {
					assert.Equal(t, strings.ToLower(e.Host), e.Host)
				}
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), "/etc/cis490/tokens.toml")
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
			assert.NotContains(t, err.Error(), strings.Repeat("A", 10), "the token leaked into the error")
		})
	}
}

package tokens

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A file written before ids and creation times were kept still loads: the id comes
// from the hash, the creation time is unknown.
func TestEntriesOfAnOldFile(t *testing.T) {
	t.Parallel()
	old := "[[token]]\nsha256 = \"" + Hash("one") + "\"\nhost = \"lab-01\"\n" +
		"[[token]]\nsha256 = \"" + Hash("two") + "\"\nadmin = \"alice\"\n"
	set, err := Parse([]byte(old), "tokens.toml")
	require.NoError(t, err)
	es := set.Entries()
	require.Len(t, es, 2)
	assert.Equal(t, Hash("one")[:8], es[0].ID)
	assert.Equal(t, Identity{Host: "lab-01"}, es[0].Identity)
	assert.True(t, es[0].Created.IsZero())
	assert.True(t, es[0].Expires.IsZero())
	assert.Equal(t, Hash("two")[:8], es[1].ID)
	assert.Equal(t, Identity{Admin: "alice"}, es[1].Identity)
	_, ok := set.Lookup("one", now)
	assert.True(t, ok)
}

func TestEntryIDs(t *testing.T) {
	t.Parallel()
	h1, h2 := Hash("one"), Hash("two")
	entry := func(lines ...string) string { return "[[token]]\n" + strings.Join(lines, "\n") + "\n" }
	for _, tc := range []struct {
		name string
		data string
		ids  []string
		err  []string
	}{
		{"explicit", entry(`id = "spare-1"`, `sha256 = "`+h1+`"`, `host = "lab-01"`), []string{"spare-1"}, nil},
		{
			"a derived id never takes an explicit one",
			entry(`sha256 = "`+h1+`"`, `host = "lab-01"`) + entry(`id = "`+h1[:8]+`"`, `sha256 = "`+h2+`"`, `host = "lab-02"`),
			[]string{h1[:9], h1[:8]}, nil,
		},
		{
			"duplicate",
			entry(`id = "x1"`, `sha256 = "`+h1+`"`, `host = "lab-01"`) + entry(`id = "x1"`, `sha256 = "`+h2+`"`, `host = "lab-02"`),
			nil, []string{"entry 2", `duplicate id "x1", already in entry 1`},
		},
		{"bad", entry(`id = "a b"`, `sha256 = "`+h1+`"`, `host = "lab-01"`), nil, []string{"entry 1", `id "a b"`}},
		{"token pasted as id", entry(`id = "c490_`+strings.Repeat("A", 43)+`"`, `sha256 = "`+h1+`"`, `host = "lab-01"`), nil, []string{"entry 1", "redacted"}},
		{"expires", entry(`sha256 = "`+h1+`"`, `host = "lab-01"`, `expires = 2026-11-29T18:00:00Z`), []string{h1[:8]}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set, err := Parse([]byte(tc.data), "tokens.toml")
			if tc.err != nil {
				require.Error(t, err)
				for _, w := range tc.err {
					assert.Contains(t, err.Error(), w)
				}
				assert.NotContains(t, err.Error(), strings.Repeat("A", 10))
				return
			}
			require.NoError(t, err)
			var ids []string
			for _, e := range set.Entries() {
				ids = append(ids, e.ID)
			}
			assert.Equal(t, tc.ids, ids)
		})
	}
}

func TestLookupRefusesExpiredTokens(t *testing.T) {
	t.Parallel()
	data := "[[token]]\nsha256 = \"" + Hash("old") + "\"\nhost = \"lab-01\"\nexpires = 2026-11-28T19:00:00Z\n"
	set, err := Parse([]byte(data), "tokens.toml")
	require.NoError(t, err)
	for _, tc := range []struct {
		at   time.Time
		want bool
	}{
		{now, true},
		{now.Add(time.Hour - time.Nanosecond), true},
		{now.Add(time.Hour), false},
		{now.Add(48 * time.Hour), false},
	} {
		_, ok := set.Lookup("old", tc.at)
		assert.Equal(t, tc.want, ok, tc.at)
	}
}

// `token new` writes the id and the creation time beside the hash, and Mint says which
// entry it added.
func TestMintWritesIDAndCreated(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "tokens.toml")
	tok, e, err := Mint(path, Identity{Host: "Lab-07"}, now.Add(1500*time.Millisecond))
	require.NoError(t, err)
	assert.Equal(t, Hash(tok)[:8], e.ID)
	assert.Equal(t, Identity{Host: "lab-07"}, e.Identity)
	assert.True(t, e.Created.Equal(now.Add(time.Second)), "created is kept to the second: %s", e.Created)
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Contains(t, string(data), "[[token]]\nid = \""+e.ID+"\"\nsha256 = \""+Hash(tok)+"\"\nhost = \"lab-07\"\ncreated = 2026-11-28T18:00:01Z\n")

	set, err := Load(path)
	require.NoError(t, err)
	require.Len(t, set.Entries(), 1)
	assert.Equal(t, e, set.Entries()[0])
}

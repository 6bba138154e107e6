package tokens

import (
	"errors"
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

// operatorFile is a tokens file as an operator keeps it: a heading, notes above
// entries, inline comments, and one entry from before ids and creation times.
func operatorFile() string {
	return `# cis490 tokens: only SHA-256 hashes of tokens are stored here.
# Ask Sam before revoking the admin token.

# lab-07, the bench by the window
[[token]]
id = "aaaa0007"
sha256 = "` + Hash("lab-07 first") + `"
host = "lab-07" # bench 3
created = 2026-11-01T09:00:00Z

[[token]]
sha256 = "` + Hash("lab-08 old") + `"
host = "lab-08"

# the maintainer
[[token]]
id = "ad000001"
sha256 = "` + Hash("alice") + `"
admin = "alice"
created = 2026-10-01T09:00:00Z

[[token]]
id = "aaaa7002"
sha256 = "` + Hash("lab-07 second") + `"
host = "lab-07"
created = 2026-11-20T09:00:00Z
# keep this note at the end
`
}

func writeFile(t *testing.T, data string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tokens.toml")
	require.NoError(t, os.WriteFile(path, []byte(data), 0o600))
	return path
}

func ids(es []Entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.ID)
	}
	return out
}

func loadIDs(t *testing.T, path string) []string {
	t.Helper()
	set, err := Load(path)
	require.NoError(t, err)
	return ids(set.Entries())
}

func TestRevoke(t *testing.T) {
	t.Parallel()
	lab08 := Hash("lab-08 old")[:8]
	for _, tc := range []struct {
		name       string
		sel        Selector
		removed    []string
		left       []string
		gone, kept []string // text that goes with the entries, and text that stays
	}{
		{
			"host", Selector{Host: "LAB-07"}, []string{"aaaa0007", "aaaa7002"}, []string{lab08, "ad000001"},
			[]string{"# lab-07, the bench", "bench 3", Hash("lab-07 second")},
			[]string{"# Ask Sam", "# the maintainer", "# keep this note at the end", Hash("lab-08 old")},
		},
		{
			"admin", Selector{Admin: "alice"}, []string{"ad000001"}, []string{"aaaa0007", lab08, "aaaa7002"},
			[]string{"# the maintainer", Hash("alice")},
			[]string{"# Ask Sam", "# lab-07, the bench", "bench 3", "# keep this note at the end"},
		},
		{
			"explicit id", Selector{ID: "aaaa7002"}, []string{"aaaa7002"}, []string{"aaaa0007", lab08, "ad000001"},
			[]string{Hash("lab-07 second")}, []string{"# keep this note at the end", "# the maintainer", "bench 3"},
		},
		{
			"derived id", Selector{ID: lab08}, []string{lab08}, []string{"aaaa0007", "ad000001", "aaaa7002"},
			[]string{Hash("lab-08 old")}, []string{"# the maintainer", "bench 3"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := writeFile(t, operatorFile())
			removed, err := Revoke(path, tc.sel)
			require.NoError(t, err)
			assert.Equal(t, tc.removed, ids(removed))
			assert.Equal(t, tc.left, loadIDs(t, path))
			data, err := os.ReadFile(path)
			require.NoError(t, err)
			for _, s := range tc.gone {
				assert.NotContains(t, string(data), s)
			}
			for _, s := range tc.kept {
				assert.Contains(t, string(data), s)
			}
			assert.True(t, strings.HasPrefix(string(data), "# cis490 tokens: only SHA-256"), string(data))
			assert.False(t, strings.HasSuffix(string(data), "\n\n"), "no blank lines pile up at the end:\n%s", data)
			fi, err := os.Stat(path)
			require.NoError(t, err)
			assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
		})
	}
}

// What cannot be revoked leaves the file exactly as it was.
func TestRevokeChangesNothingOnError(t *testing.T) {
	t.Parallel()
	broken := "[[token]]\nsha256 = \"" + Hash("x") + "\"\nhots = \"lab-07\"\n"
	for _, tc := range []struct {
		name  string
		data  string
		sel   Selector
		noHit bool
		want  string
	}{
		{"no such host", operatorFile(), Selector{Host: "lab-09"}, true, "no token of host lab-09"},
		{"no such admin", operatorFile(), Selector{Admin: "bob"}, true, "no token of admin bob"},
		{"no such id", operatorFile(), Selector{ID: "aaaa"}, true, `no token with id "aaaa"`},
		{"nothing selected", operatorFile(), Selector{}, false, "exactly one of"},
		{"two selected", operatorFile(), Selector{Host: "lab-07", ID: "aaaa0007"}, false, "exactly one of"},
		{"bad host", operatorFile(), Selector{Host: "lab_07"}, false, "not a valid RFC 1123"},
		{"broken file", broken, Selector{Host: "lab-07"}, false, `unknown key "token.hots"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := writeFile(t, tc.data)
			removed, err := Revoke(path, tc.sel)
			require.Error(t, err)
			assert.Empty(t, removed)
			assert.Contains(t, err.Error(), tc.want)
			assert.Equal(t, tc.noHit, errors.Is(err, ErrNoMatch), err)
			data, err := os.ReadFile(path)
			require.NoError(t, err)
			assert.Equal(t, tc.data, string(data))
		})
	}

	missing := filepath.Join(t.TempDir(), "tokens.toml")
	_, err := Revoke(missing, Selector{Host: "lab-07"})
	assert.ErrorIs(t, err, os.ErrNotExist)
	assert.NoFileExists(t, missing)
}

func TestRotate(t *testing.T) {
	t.Parallel()
	t.Run("grace", func(t *testing.T) {
		t.Parallel()
		path := writeFile(t, operatorFile())
		rot, err := Rotate(path, "lab-07", now, 24*time.Hour)
		require.NoError(t, err)
		assert.Equal(t, Identity{Host: "lab-07"}, rot.New.Identity)
		assert.Equal(t, Hash(rot.Token)[:8], rot.New.ID)
		assert.Equal(t, []string{"aaaa0007", "aaaa7002"}, ids(rot.Old))
		for _, e := range rot.Old {
			assert.True(t, e.Expires.Equal(now.Add(24*time.Hour)), e.Expires)
		}

		set, err := Load(path)
		require.NoError(t, err)
		for _, tc := range []struct {
			token      string
			at         time.Time
			wantAccept bool
		}{
			{rot.Token, now, true},
			{"lab-07 first", now.Add(23 * time.Hour), true},
			{"lab-07 second", now.Add(23 * time.Hour), true},
			{"lab-07 first", now.Add(24 * time.Hour), false},
			{"lab-07 second", now.Add(24 * time.Hour), false},
			{rot.Token, now.Add(365 * 24 * time.Hour), true},
			{"lab-08 old", now.Add(24 * time.Hour), true},
		} {
			_, ok := set.Lookup(tc.token, tc.at)
			assert.Equal(t, tc.wantAccept, ok, "%s at %s", tc.token, tc.at)
		}
		data, err := os.ReadFile(path)
		require.NoError(t, err)
		for _, s := range []string{"# Ask Sam", "# lab-07, the bench", "bench 3", "# the maintainer", "# keep this note at the end"} {
			assert.Contains(t, string(data), s)
		}
		assert.Contains(t, string(data), "created = 2026-11-01T09:00:00Z\nexpires = 2026-11-29T18:00:00Z\n")
		assert.NotContains(t, string(data), rot.Token)

		// A second rotation within the grace does not extend the old tokens' lives.
		rot2, err := Rotate(path, "lab-07", now.Add(time.Hour), 48*time.Hour)
		require.NoError(t, err)
		set, err = Load(path)
		require.NoError(t, err)
		_, ok := set.Lookup("lab-07 first", now.Add(25*time.Hour))
		assert.False(t, ok, "the earlier expiry stays")
		_, ok = set.Lookup(rot.Token, now.Add(48*time.Hour))
		assert.True(t, ok)
		_, ok = set.Lookup(rot.Token, now.Add(49*time.Hour))
		assert.False(t, ok)
		_, ok = set.Lookup(rot2.Token, now.Add(49*time.Hour))
		assert.True(t, ok)
		assert.Equal(t, 6, set.Len())
	})

	t.Run("no grace revokes the old tokens", func(t *testing.T) {
		t.Parallel()
		path := writeFile(t, operatorFile())
		rot, err := Rotate(path, "LAB-07", now, 0)
		require.NoError(t, err)
		assert.Equal(t, []string{"aaaa0007", "aaaa7002"}, ids(rot.Old))
		assert.Equal(t, []string{Hash("lab-08 old")[:8], "ad000001", rot.New.ID}, loadIDs(t, path))
		data, err := os.ReadFile(path)
		require.NoError(t, err)
		assert.NotContains(t, string(data), "bench 3")
		assert.Contains(t, string(data), "# the maintainer")
	})
}

func TestRotateChangesNothingOnError(t *testing.T) {
	t.Parallel()
	expired := "[[token]]\nsha256 = \"" + Hash("x") + "\"\nhost = \"lab-07\"\nexpires = 2026-11-28T17:00:00Z\n"
	broken := "[[token]]\nsha256 = \"" + Hash("x") + "\"\nhots = \"lab-07\"\n"
	for _, tc := range []struct {
		name  string
		data  string
		host  string
		grace time.Duration
		noHit bool
		want  string
	}{
		{"no token", operatorFile(), "lab-09", time.Hour, true, "no live token of host lab-09"},
		{"only expired tokens", expired, "lab-07", time.Hour, true, "no live token of host lab-07"},
		{"admin name", operatorFile(), "alice", time.Hour, true, "no live token of host alice"},
		{"negative grace", operatorFile(), "lab-07", -time.Second, false, "grace"},
		{"bad host", operatorFile(), "lab_07", time.Hour, false, "not a valid RFC 1123"},
		{"broken file", broken, "lab-07", time.Hour, false, `unknown key "token.hots"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := writeFile(t, tc.data)
			rot, err := Rotate(path, tc.host, now, tc.grace)
			require.Error(t, err)
			assert.Empty(t, rot.Token)
			assert.Contains(t, err.Error(), tc.want)
			assert.Equal(t, tc.noHit, errors.Is(err, ErrNoMatch), err)
			data, err := os.ReadFile(path)
			require.NoError(t, err)
			assert.Equal(t, tc.data, string(data))
		})
	}
}

// A layout the line editor does not know (an array of inline tables) is still edited
// correctly: the file is then written out anew.
func TestRewriteOfAnUnusualLayout(t *testing.T) {
	t.Parallel()
	data := fmt.Sprintf("token = [\n  {sha256 = %q, host = \"lab-01\"},\n  {sha256 = %q, host = \"lab-02\", created = 2026-11-01T09:00:00Z},\n]\n",
		Hash("one"), Hash("two"))
	path := writeFile(t, data)
	removed, err := Revoke(path, Selector{Host: "lab-01"})
	require.NoError(t, err)
	assert.Equal(t, []string{Hash("one")[:8]}, ids(removed))
	set, err := Load(path)
	require.NoError(t, err)
	es := set.Entries()
	require.Len(t, es, 1)
	assert.Equal(t, "lab-02", es[0].Host)
	assert.True(t, es[0].Created.Equal(time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)))

	rot, err := Rotate(path, "lab-02", now, time.Hour)
	require.NoError(t, err)
	set, err = Load(path)
	require.NoError(t, err)
	_, ok := set.Lookup("two", now.Add(time.Hour))
	assert.False(t, ok)
	_, ok = set.Lookup(rot.Token, now.Add(time.Hour))
	assert.True(t, ok)
}

// Revocations and new tokens at once: each one's change survives.
func TestRevokeConcurrentWithMint(t *testing.T) {
	t.Parallel()
	path := writeFile(t, operatorFile())
	const n = 8
	toks := make([]string, n)
	errs := make([]error, n+1)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { toks[i], errs[i] = Append(path, Identity{Host: fmt.Sprintf("lab-%02d", 20+i)}, now) })
	}
	wg.Go(func() { _, errs[n] = Revoke(path, Selector{Host: "lab-07"}) })
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	set, err := Load(path)
	require.NoError(t, err)
	assert.Equal(t, 2+n, set.Len())
	for _, tok := range toks {
		_, ok := set.Lookup(tok, now)
		assert.True(t, ok)
	}
	_, ok := set.Lookup("lab-07 first", now)
	assert.False(t, ok)
}

package install

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/config"
)

// The skeleton is generated from the schema, so every key must say what it does.
func TestEveryKeyHasHelp(t *testing.T) {
	t.Parallel()
	want := config.New().AllKeys() // every key Viper has a default for: the schema
	sort.Strings(want)
	assert.Equal(t, want, keyNames(), "Keys() walks the same schema as config")
	for _, k := range Keys() {
		assert.NotEmpty(t, k.Help, "%s has no help tag in internal/config/config.go: add help:\"what it does\"", k.Name)
		assert.NotContains(t, k.Help, "\n", k.Name)
	}
}

func writeTemp(t *testing.T, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "lab-host.toml")
	require.NoError(t, os.WriteFile(p, data, 0o644))
	return p
}

func TestSkeletonLoadsAsTheDefaults(t *testing.T) {
	t.Parallel()
	sk := Skeleton(nil)
	for _, k := range Keys() {
		assert.Contains(t, string(sk), "\n# "+k.Help+"\n#"+k.Name[strings.LastIndex(k.Name, ".")+1:]+" = ", k.Name)
	}
	_, err := config.Load(config.New(), writeTemp(t, sk))
	require.NoError(t, err, "as written, every key commented out")

	// Uncommented, every line must be valid and say the default it claims to.
	uncommented := regexp.MustCompile(`(?m)^#([a-z_]+ = )`).ReplaceAll(sk, []byte("$1"))
	cfg, err := config.Load(config.New(), writeTemp(t, uncommented))
	require.NoError(t, err, "uncommented:\n%s", uncommented)
	cfg.File = ""
	assert.Equal(t, shownDefaults(), cfg)
}

func TestSkeletonSetsKeys(t *testing.T) {
	t.Parallel()
	sk := Skeleton(map[string]any{"receiver.token_file": "/etc/cis490/token"})
	assert.Contains(t, string(sk), "\n[receiver]\n")
	assert.Contains(t, string(sk), "\ntoken_file = \"/etc/cis490/token\"\n")
	cfg, err := config.Load(config.New(), writeTemp(t, sk))
	require.NoError(t, err)
	assert.Equal(t, "/etc/cis490/token", cfg.Receiver.TokenFile)
}

func TestTOMLValues(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   any
		want string
	}{
		{"plain", `"plain"`},
		{`C:\a "b"`, `"C:\\a \"b\""`},
		{"tab\there", `"tab\u0009here"`},
		{30 * 24 * time.Hour, `"30d"`},
		{24 * time.Hour, `"24h"`},
		{36 * time.Hour, `"36h"`},
		{30 * time.Minute, `"30m"`},
		{90 * time.Second, `"1m30s"`},
		{10 * time.Second, `"10s"`},
		{8 * config.GiB, `"8GiB"`},
		{100, "100"},
		{true, "true"},
	} {
		assert.Equal(t, tc.want, tomlValue(tc.in), "%v", tc.in)
	}
}

package fsutil

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEndsTorn(t *testing.T) {
	for content, want := range map[string]bool{"": false, "a\n": false, "a\nb": true, "{\"ts\":": true, "\n": false} {
		p := filepath.Join(t.TempDir(), "f")
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		f, err := os.Open(p)
		require.NoError(t, err)
		got, err := EndsTorn(f)
		f.Close()
		require.NoError(t, err)
		assert.Equal(t, want, got, "%q", content)
	}
}

func TestSyncDir(t *testing.T) {
	require.NoError(t, SyncDir(t.TempDir()))
	assert.Error(t, SyncDir(filepath.Join(t.TempDir(), "missing")))
}

func TestHumanBytes(t *testing.T) {
	for n, want := range map[uint64]string{0: "0 B", 1023: "1023 B", 1536: "1.5 KiB", 300 << 20: "300.0 MiB", 5 << 30: "5.0 GiB"} {
		assert.Equal(t, want, HumanBytes(n))
	}
}

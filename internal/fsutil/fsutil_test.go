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

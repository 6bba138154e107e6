package store

import (
	"crypto/sha256"
	"encoding"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The state file's line is written by hand (no allocation per checkpoint): it must be
// what json.Marshal writes, so that decodeRecord, and anyone reading a state with jq,
// sees the same record.
func TestRecordEncodingIsJSONMarshal(t *testing.T) {
	t.Parallel()
	h := sha256.New()
	h.Write([]byte(strings.Repeat("x", 1000)))
	state, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	require.NoError(t, err)
	for _, r := range []partialRecord{
		{Version: recordVersion, Host: "lab-07", SHA256: digest([]byte("a")), Offset: 1 << 20, Hash: state},
		{Version: recordVersion, Host: "lab-07.example", SHA256: digest(nil), Offset: 0, Length: 12345, Hash: state,
			BootID: "0b7c5f0e-3f5e-4a63-9a3c-1c2d3e4f5a6b", Synced: true},
		{Version: recordVersion, Host: "x", SHA256: digest(nil)},
	} {
		want, err := json.Marshal(r)
		require.NoError(t, err)
		line, sum, ok := strings.Cut(string(r.encode()), "\n")
		require.True(t, ok)
		assert.Equal(t, string(want), line)
		assert.Equal(t, digest([]byte(want))+"\n", sum, "the checksum line")
		back, err := decodeRecord(r.encode())
		require.NoError(t, err)
		assert.Equal(t, r, back)
	}
}

// A checkpoint a chunk allocates nothing once running: the garbage it made before
// (a kilobyte a MiB) grew the receiver's heap with every upload.
func TestCheckpointsAllocateNothing(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "x.state"))
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	c := &checkpoints{f: f, holder: &partialHolder{}, rec: partialRecord{Version: recordVersion, Host: "lab-07", SHA256: digest(nil)}}
	h := sha256.New()
	end := int64(0)
	step := func() {
		end += chunkSize
		c.dispatched(end)
		c.hashed(end, h)
		c.written(end)
	}
	for range 4 {
		step()
	}
	allocs := testing.AllocsPerRun(100, step)
	if raceEnabled {
		assert.LessOrEqual(t, allocs, 1.0, "the race detector's own allocation aside")
		return
	}
	assert.Zero(t, allocs)
}

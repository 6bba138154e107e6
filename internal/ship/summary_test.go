package ship

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A JSON log line of a run says how long it took with its unit.
func TestSummaryJSONHasReadableElapsed(t *testing.T) {
	b, err := json.Marshal(Summary{Shipped: 2, Bytes: 10, Elapsed: 2500*time.Millisecond + 300*time.Microsecond})
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	assert.Equal(t, "2.5s", m["elapsed"])
	assert.Equal(t, 2.0, m["shipped"])
	assert.Equal(t, 10.0, m["bytes"])
	assert.Contains(t, m, "swept")
}

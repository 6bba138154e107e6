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

// The one-line report counts everything left in the outbox, says how much of it will
// never ship, and names files a producer replaced mid-send only when there were some.
func TestSummaryLineIsTrue(t *testing.T) {
	for _, tc := range []struct {
		name string
		sum  Summary
		want string
	}{
		{"plain", Summary{Shipped: 3, Bytes: 2048, Elapsed: 41 * time.Millisecond},
			"shipped 3, duplicates 0, kept 0, rejected 0, 2.0 KiB in 41ms (0 left in outbox)"},
		{"strays", Summary{Shipped: 1, Bytes: 4, Elapsed: time.Millisecond, Remaining: 3, Unshippable: 2},
			"shipped 1, duplicates 0, kept 0, rejected 0, 4 B in 1ms (3 left in outbox, 2 of them will never ship: not regular files)"},
		{"replaced", Summary{Shipped: 1, Replaced: 1, Bytes: 4, Elapsed: time.Millisecond, Remaining: 1},
			"shipped 1, duplicates 0, kept 0, rejected 0, 1 replaced while being sent, 4 B in 1ms (1 left in outbox)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, tc.sum.String())
		})
	}
}

package receiver_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/protocol"
)

// An error logged while answering a request carries that request's id, the one its
// access line and X-Request-Id answer carry, so the two can be found together.
func TestRequestErrorLinesCarryTheRequestID(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{minFree: 1 << 62}) // every upload is refused 507
	r := h.upload(req{host: "lab-07"}, "ep.tar", []byte("payload"))
	require.Equal(t, http.StatusInsufficientStorage, r.status)
	id := r.header.Get(protocol.HeaderRequestID)
	require.NotEmpty(t, id)
	var found bool
	for _, line := range strings.Split(h.logs.String(), "\n") {
		var ev map[string]any
		if json.Unmarshal([]byte(line), &ev) != nil || ev["level"] != "error" {
			continue
		}
		found = true
		assert.Equal(t, id, ev["req_id"], "error line without its request's id: %s", line)
	}
	assert.True(t, found, "no error line logged:\n%s", h.logs.String())
}

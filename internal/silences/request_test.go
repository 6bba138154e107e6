package silences

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRequestSilence(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		req  Request
		end  time.Time
		err  string
	}{
		{"for", Request{For: "4h"}, t0.Add(4 * time.Hour), ""},
		{"for in days", Request{For: "2d"}, t0.Add(48 * time.Hour), ""},
		{"until", Request{End: "2026-11-28T20:00:00+01:00"}, t0.Add(time.Hour), ""},
		{"neither", Request{}, time.Time{}, "a silence needs an end"},
		{"both", Request{End: "2026-11-28T20:00:00Z", For: "1h"}, time.Time{}, "not both"},
		{"bad for", Request{For: "4x"}, time.Time{}, `for "4x" is not a duration`},
		{"negative for", Request{For: "-1h"}, time.Time{}, `for "-1h" is not a duration`},
		{"bad end", Request{End: "18:00"}, time.Time{}, `end "18:00" is not an RFC 3339 time`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.Host, tc.req.Reason = "lab-07", "why"
			s, err := tc.req.Silence(t0, "alice")
			if tc.err != "" {
				assert.ErrorIs(t, err, ErrInvalid)
				assert.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.True(t, s.End.Equal(tc.end), "end %s, want %s", s.End, tc.end)
			assert.Equal(t, Silence{Host: "lab-07", End: s.End, Reason: "why", By: "alice"}, s)
		})
	}
}

func TestRequestJSON(t *testing.T) {
	t.Parallel()
	var r Request
	require.NoError(t, json.Unmarshal([]byte(`{"host":"lab-07","symptom":"silent","for":"4h","reason":"moving racks"}`), &r))
	assert.Equal(t, Request{Host: "lab-07", Symptom: "silent", For: "4h", Reason: "moving racks"}, r)
}

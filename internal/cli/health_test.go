package cli

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReadReport(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, input, status, err string
	}{
		{"doctor report", `{"schema":"cis490.doctor/v1","host":"lab-07","status":"warn","checks":[]}`, "warn", ""},
		{"object without host", `{"status":"ok"}`, "ok", ""},
		{"array", `[]`, "", "not a JSON object"},
		{"null", `null`, "", "not a JSON object"},
		{"number", `42`, "", "not a JSON object"},
		{"truncated", `{"host":"lab-07"`, "", "not a JSON object"},
		{"another host", `{"host":"lab-08"}`, "", `about host "lab-08"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body, status, err := readReport(strings.NewReader(tc.input), "lab-07")
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.input, string(body), "sent as read")
			assert.Equal(t, tc.status, status)
		})
	}
}

func TestReadReportRefusesHugeInput(t *testing.T) {
	t.Parallel()
	_, _, err := readReport(strings.NewReader(`{"x":"`+strings.Repeat("a", maxReportRead)+`"}`), "lab-07")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "over 16 MiB")
}

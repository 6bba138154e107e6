package protocol

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The field names are SPEC §3.3's: a renamed field must fail here, not silently on
// the side that still reads the old name.
func TestWireBodiesRoundTrip(t *testing.T) {
	at := time.Date(2026, 12, 1, 23, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name string
		v    any
		into any // a zero value of v's type, decoded into
		want map[string]any
	}{
		{
			name: "whoami",
			v: WhoAmI{Host: "lab-07", Role: "host", Commit: "abc1234", CommitAllowed: true, Gate: "allowlist",
				ServerTime: at, Version: "1.2.3"},
			into: &WhoAmI{},
			want: map[string]any{"host": "lab-07", "role": "host", "commit": "abc1234", "commit_allowed": true,
				"gate": "allowlist", "server_time": "2026-12-01T23:04:05Z", "version": "1.2.3"},
		},
		{
			name: "error",
			v:    Error{Error: "the receiver is shutting down: retry shortly", Code: CodeShuttingDown},
			into: &Error{},
			want: map[string]any{"error": "the receiver is shutting down: retry shortly", "code": "shutting_down"},
		},
		{
			name: "error with commit",
			v:    Error{Error: "commit abc1234 is not on the receiver's allow-list", Code: CodeCommitNotAllowed, Commit: "abc1234"},
			into: &Error{},
			want: map[string]any{"error": "commit abc1234 is not on the receiver's allow-list", "code": "commit_not_allowed",
				"commit": "abc1234"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := json.Marshal(tc.v)
			require.NoError(t, err)
			var fields map[string]any
			require.NoError(t, json.Unmarshal(raw, &fields))
			assert.Equal(t, tc.want, fields)

			require.NoError(t, json.Unmarshal(raw, tc.into))
			switch got := tc.into.(type) {
			case *WhoAmI:
				assert.Equal(t, tc.v, *got)
			case *Error:
				assert.Equal(t, tc.v, *got)
			}
		})
	}
}

// The codes are what clients compare (SPEC §3.3); their values are the contract.
func TestErrorCodes(t *testing.T) {
	for code, want := range map[string]string{
		CodeBadRequest: "bad_request", CodeUnauthorized: "unauthorized", CodeForbidden: "forbidden",
		CodeNotFound: "not_found", CodeMethodNotAllowed: "method_not_allowed", CodeTooLarge: "too_large",
		CodeDigestMismatch: "digest_mismatch", CodeCommitNotAllowed: "commit_not_allowed",
		CodeCommitRequired: "commit_required", CodeNoSpace: "insufficient_storage",
		CodeShuttingDown: "shutting_down", CodeBusy: "busy", CodeInternal: "internal",
		CodeClientCertRequired: "client_certificate_required",
	} {
		assert.Equal(t, want, code)
	}
}

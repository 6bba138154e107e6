package protocol

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseUploadOffset(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want int64
	}{{"0", 0}, {"1048576", 1 << 20}, {"007", 7}, {"999999999999999", 999999999999999}} {
		got, err := ParseUploadOffset(tc.in)
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.want, got, tc.in)
	}
	for _, bad := range []string{"", "-1", "+1", " 1", "1 ", "1.0", "0x10", "1e6", "١", "1000000000000000"} {
		_, err := ParseUploadOffset(bad)
		assert.Error(t, err, "%q", bad)
	}
}

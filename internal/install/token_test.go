package install

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReadToken(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in, want, err string
	}{
		{"as token new prints it", "c490_abcDEF123\n", "c490_abcDEF123", ""},
		{"surrounding blanks", "  c490_x \r\n\n", "c490_x", ""},
		{"empty", "\n", "", "empty"},
		{"two words", "c490_a c490_b\n", "", "more than one word"},
		{"two lines", "c490_a\nc490_b\n", "", "more than one word"},
		{"huge", strings.Repeat("a", maxToken+1), "", "not a token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadToken(strings.NewReader(tc.in))
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, string(got))
		})
	}
}

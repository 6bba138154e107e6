package humanize

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestBytes(t *testing.T) {
	for n, want := range map[uint64]string{0: "0 B", 1023: "1023 B", 1536: "1.5 KiB", 300 << 20: "300.0 MiB", 5 << 30: "5.0 GiB"} {
		assert.Equal(t, want, Bytes(n))
	}
}

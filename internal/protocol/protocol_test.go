package protocol

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestNormalizeHost(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"lab-07", "lab-07", true},
		{"LAB-07.Example.org", "lab-07.example.org", true},
		{"a", "a", true},
		{"", "", false},
		{"-lab", "", false},
		{"lab-", "", false},
		{"lab_07", "", false},
		{"lab..07", "", false},
		{"../etc", "", false},
		{"lab/07", "", false},
		{"lab%2f07", "", false},
		{"lab\x0007", "", false},
		{"läb", "", false},
		{strings.Repeat("a", 64), "", false},
		{strings.Repeat("a.", 127) + "a", strings.Repeat("a.", 127) + "a", false},
	} {
		got, ok := NormalizeHost(tc.in)
		assert.Equal(t, tc.ok, ok, "%q", tc.in)
		if tc.ok {
			assert.Equal(t, tc.want, got)
		}
	}
}

func TestValidEpisode(t *testing.T) {
	assert.True(t, ValidEpisode("ep-2026.11.28_01.tar.gz"))
	assert.True(t, ValidEpisode(strings.Repeat("a", 200)))
	for _, bad := range []string{"", ".hidden", "..", "a/b", "a\\b", "a\x00", "é.tar", strings.Repeat("a", 201), "-x", "a b"} {
		assert.False(t, ValidEpisode(bad), "%q", bad)
	}
}

func TestNormalizeCommit(t *testing.T) {
	c, ok := NormalizeCommit("ABCDEF1")
	assert.True(t, ok)
	assert.Equal(t, "abcdef1", c)
	for _, bad := range []string{"", "abc", "abcdefg", strings.Repeat("a", 41), "abcdef1 x"} {
		_, ok := NormalizeCommit(bad)
		assert.False(t, ok, "%q", bad)
	}
	assert.True(t, ValidSHA256(strings.Repeat("0", 64)))
	assert.False(t, ValidSHA256(strings.Repeat("A", 64)))
}

package protocol

import (
	"crypto/x509"
	"crypto/x509/pkix"
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
		// Unicode that case-folds to ASCII is still not an RFC 1123 name.
		{"lab-\u212a", "", false}, // KELVIN SIGN, lowercases to k
		{"LAB-\u0130", "", false}, // I WITH DOT ABOVE, lowercases to i + combining dot
		{"\u212aelvin", "", false},
		{"lab-\u017f", "", false}, // LONG S, folds to s
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

func TestCertNamesHost(t *testing.T) {
	for _, tc := range []struct {
		cn   string
		dns  []string
		host string
		want bool
	}{
		{"lab-07", nil, "lab-07", true},
		{"LAB-07", nil, "lab-07", true},
		{"other", []string{"x", "Lab-07"}, "lab-07", true},
		{"lab-08", []string{"lab-09"}, "lab-07", false},
		{"lab-\u212a", nil, "lab-k", false},
		{"x", []string{"lab-\u212a"}, "lab-k", false},
		{"", nil, "", false},
	} {
		cert := &x509.Certificate{Subject: pkix.Name{CommonName: tc.cn}, DNSNames: tc.dns}
		assert.Equal(t, tc.want, CertNamesHost(cert, tc.host), "CN %q DNS %q host %q", tc.cn, tc.dns, tc.host)
	}
}

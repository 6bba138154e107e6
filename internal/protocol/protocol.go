// Package protocol holds what the lab hosts and the receiver must agree on: header
// names, paths, the names they exchange and how those names are validated.
package protocol

import (
	"crypto/x509"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Header names of the v1 wire protocol (SPEC §3).
const (
	HeaderHost       = "X-Cis490-Host"
	HeaderEpisode    = "X-Cis490-Episode"
	HeaderSHA256     = "X-Cis490-Sha256"
	HeaderCommit     = "X-Cis490-Code-Commit"
	HeaderDigest     = "Content-Digest"
	HeaderRequestID  = "X-Request-Id"
	MaxHostLength    = 253
	MaxLabelLength   = 63
	MaxEpisodeLength = 200
)

// Resumable uploads (SPEC §3.3), after the IETF draft "Resumable Uploads for HTTP"
// (draft-ietf-httpbis-resumable-upload): HEAD /v1/episodes/{sha256} answers the
// offset of a partial upload, and a PUT /v1/episodes with Upload-Offset continues it.
const (
	HeaderUploadOffset   = "Upload-Offset"   // Structured Field Integer: bytes the receiver holds
	HeaderUploadComplete = "Upload-Complete" // ?1 stored, ?0 a partial
	HeaderUploadLength   = "Upload-Length"   // the whole episode's size, when known
	HeaderUploadLimit    = "Upload-Limit"    // max-size=<bytes>, max-age=<seconds the partial is kept>
)

// maxUploadOffsetDigits is a Structured Field Integer's limit (RFC 9651 §3.3.1).
const maxUploadOffsetDigits = 15

// ParseUploadOffset reads an Upload-Offset value: 1 to 15 ASCII digits (RFC 9651's
// Integer, without its minus sign: an offset is never negative).
func ParseUploadOffset(v string) (int64, error) {
	if v == "" || len(v) > maxUploadOffsetDigits {
		return 0, fmt.Errorf("%s must be 1 to %d digits, got %q", HeaderUploadOffset, maxUploadOffsetDigits, v)
	}
	var n int64
	for _, c := range []byte(v) {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%s must be a non-negative integer, got %q", HeaderUploadOffset, v)
		}
		n = n*10 + int64(c-'0')
	}
	return n, nil
}

var (
	episodeRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$`)
	sha256RE  = regexp.MustCompile(`^[0-9a-f]{64}$`)
	commitRE  = regexp.MustCompile(`^[0-9a-f]{7,40}$`)
)

// NormalizeHost lowercases name and reports whether it is a valid RFC 1123 host name:
// dot-separated labels of 1 to 63 ASCII letters, digits and hyphens, not starting or
// ending with a hyphen, 253 characters at most. The check comes before the folding:
// Unicode lowercasing turns some non-ASCII letters into ASCII ones (KELVIN SIGN into
// k), and such a name must not pass for the ASCII host it resembles.
func NormalizeHost(name string) (string, bool) {
	if name == "" || len(name) > MaxHostLength {
		return "", false
	}
	for i := 0; i < len(name); i++ {
		if name[i] >= utf8.RuneSelf {
			return "", false
		}
	}
	name = strings.ToLower(name)
	for _, label := range strings.Split(name, ".") {
		if !validLabel(label) {
			return "", false
		}
	}
	return name, true
}

func validLabel(label string) bool {
	if label == "" || len(label) > MaxLabelLength {
		return false
	}
	if label[0] == '-' || label[len(label)-1] == '-' {
		return false
	}
	for i := 0; i < len(label); i++ {
		c := label[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// CertNamesHost reports whether a certificate is issued to host (a normalized name):
// its CN or one of its DNS SANs is that host name (SPEC §3.1). The receiver binds a
// host token to its client certificate with it, and doctor checks the host's own
// certificate with the same rule.
func CertNamesHost(cert *x509.Certificate, host string) bool {
	for _, name := range append([]string{cert.Subject.CommonName}, cert.DNSNames...) {
		if n, ok := NormalizeHost(name); ok && n == host {
			return true
		}
	}
	return false
}

// ValidReportStatus reports whether s is the status of a doctor report (the
// cis490.doctor/v1 document's "status"): ok, warn or fail.
func ValidReportStatus(s string) bool { return s == "ok" || s == "warn" || s == "fail" }

// ValidEpisode reports whether name is an acceptable episode name.
func ValidEpisode(name string) bool { return episodeRE.MatchString(name) }

// ValidSHA256 reports whether s is a SHA-256 digest in 64 lowercase hex digits.
func ValidSHA256(s string) bool { return sha256RE.MatchString(s) }

// NormalizeCommit lowercases s and reports whether it is a commit id of 7 to 40 hex digits.
func NormalizeCommit(s string) (string, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	return s, commitRE.MatchString(s)
}

package client

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// Retry-After is delay-seconds or an HTTP-date (RFC 9110 §10.2.3); anything else is
// ignored and the normal backoff applies (0 here).
func TestRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	date := func(d time.Duration) string { return now.Add(d).Format(http.TimeFormat) }
	for _, tc := range []struct {
		name       string
		value      string
		serverDate string // the answer's Date header
		want       time.Duration
	}{
		{"none", "", "", 0},
		{"seconds", "5", "", 5 * time.Second},
		{"seconds with spaces", " 7 ", "", 7 * time.Second},
		{"zero", "0", "", 0},
		{"a date ahead", date(90 * time.Second), "", 90 * time.Second},
		{"a date ahead of the receiver's clock", date(time.Hour + 30*time.Second), date(time.Hour), 30 * time.Second},
		{"a date past", date(-time.Minute), "", 0},
		{"an RFC 850 date", now.Add(time.Minute).Format("Monday, 02-Jan-06 15:04:05 GMT"), "", time.Minute},
		{"a Go duration is not seconds", "5m", "", 0},
		{"milliseconds are not seconds", "500ms", "", 0},
		{"a fraction", "1.5", "", 0},
		{"negative", "-5", "", 0},
		{"a sign", "+5", "", 0},
		{"garbage", "soon", "", 0},
		{"capped", "3600", "", maxRetryAfter},
		{"huge", "99999999999999999999999", "", maxRetryAfter},
		{"a date far ahead", date(48 * time.Hour), "", maxRetryAfter},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.value != "" {
				h.Set("Retry-After", tc.value)
			}
			if tc.serverDate != "" {
				h.Set("Date", tc.serverDate)
			}
			assert.Equal(t, tc.want, retryAfter(h, now))
		})
	}
}

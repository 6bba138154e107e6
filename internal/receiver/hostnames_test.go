package receiver_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// Host names are ASCII (RFC 1123). Unicode that lowercases to ASCII, such as KELVIN
// SIGN to k, must be refused before any folding, or lab-\u212a would pass for lab-k:
// in the X-Cis490-Host header, in a URL path, and in a certificate's names.
func TestUnicodeThatFoldsToASCIIIsNotAHostName(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	for _, host := range []string{"lab-\u212a", "LAB-\u0130", "\u212aelvin", "lab-\u017f"} {
		r := h.upload(req{host: host}, "ep.tar", []byte("payload"))
		assert.Equal(t, http.StatusBadRequest, r.status, "upload as %q", host)
		r = h.do(req{method: http.MethodPost, path: "/v1/heartbeat", host: host})
		assert.Equal(t, http.StatusBadRequest, r.status, "heartbeat as %q", host)
		r = h.do(req{method: http.MethodPut, path: "/v1/host-health/" + url.PathEscape(host), host: "lab-k",
			body: strings.NewReader(`{"status":"ok"}`)})
		assert.Equal(t, http.StatusBadRequest, r.status, "report for %q", host)
	}
	assert.Empty(t, files(t, h.data+"/episodes"))
	assert.Empty(t, files(t, h.data+"/host-health"))
}

package e2e

import (
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/doctor"
	"github.com/cis490/cis490/internal/index"
	"github.com/cis490/cis490/internal/testpki"
)

// tlsLines are the receiver's index lines of refused handshakes.
func tlsLines(t *testing.T, data string) []index.Entry {
	t.Helper()
	var out []index.Entry
	for _, e := range receiverIndex(t, data) {
		if e.Route == "tls" {
			out = append(out, e)
		}
	}
	return out
}

// A lab host whose certificate the real receiver refuses: doctor there says why in
// client-cert, and the receiver indexes the refusal once (doctor's two requests are
// two refused handshakes from one address, within a minute) under the name the
// certificate carries. A certificate it accepts still gets through, named.
func TestRefusedHandshakesAreIndexedAndDoctorSaysWhy(t *testing.T) {
	t.Parallel()
	r := startDrReceiver(t, drSetup{hosts: []string{"lab-07", "lab-08", "lab-09", "lab-10"}, tls: true})
	year := time.Now().Add(365 * 24 * time.Hour)
	// The same name as the fleet's CA, so that the lab host sends the certificate
	// (Go's client sends none whose issuer the receiver does not ask for).
	foreign := testpki.NewCA(t, "fleet").ClientExpiring("lab-07", year)
	expired := r.ca.ClientExpiring("lab-08", time.Now().Add(-time.Hour))
	serverOnly := r.ca.ClientUsage("lab-09", x509.ExtKeyUsageServerAuth)
	good := r.ca.ClientExpiring("lab-10", year)

	for _, tc := range []struct {
		name, host       string
		cert             *testpki.Pair
		summary, hint    string
		reason, logged   string // logged: what the receiver's log says of each refusal
		indexedAsHost    string
		reachableSummary string
	}{
		{name: "certificate from another CA", host: "lab-07", cert: &foreign,
			summary: "refuses this certificate at the handshake (unknown certificate authority): its issuer (CN fleet) is not a CA the receiver trusts",
			hint:    "serve.tls.client_ca_file", reason: "unknown_ca", logged: "certificate signed by unknown authority", indexedAsHost: "lab-07",
			reachableSummary: "refused the TLS handshake (tls: unknown certificate authority)"},
		{name: "expired", host: "lab-08", cert: &expired, summary: "expired on", hint: "renew it",
			reason: "expired", logged: "certificate has expired", indexedAsHost: "lab-08",
			reachableSummary: "refused the TLS handshake (tls: expired certificate)"},
		{name: "serverAuth only", host: "lab-09", cert: &serverOnly,
			summary: "refuses this certificate at the handshake (bad certificate): it is not for clients: its extendedKeyUsage lacks clientAuth",
			hint:    "extendedKeyUsage clientAuth", reason: "bad_usage", logged: "incompatible key usage", indexedAsHost: "lab-09",
			reachableSummary: "refused the TLS handshake (tls: bad certificate)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newDrHost(t, tc.host, r.URL).withToken(t, r.tokens[tc.host]).withTLS(r.ca, tc.cert)
			res, _, checks := h.doctor(t, bin)
			assert.Equal(t, 1, res.Code, res.Stderr)
			assertCheck(t, checks["client-cert"], doctor.Fail, tc.summary, tc.hint)
			assertCheck(t, checks["receiver-reachable"], doctor.Fail, tc.reachableSummary, "")
			if tc.reason == "unknown_ca" {
				human := Run(t, bin, h.env, nil, "--config", h.cfg, "doctor")
				assert.Contains(t, human.Stdout, "✗ client-cert")
			}

			var line index.Entry
			require.Eventually(t, func() bool {
				for _, e := range tlsLines(t, r.data) {
					if e.Error == tc.reason {
						line = e
						return strings.Count(r.Logs(), tc.logged) >= 2 // both of doctor's handshakes have been refused
					}
				}
				return false
			}, 10*time.Second, 20*time.Millisecond, "no tls line for %s:\n%s", tc.reason, r.Logs())
			assert.Equal(t, tc.indexedAsHost, line.Host)
			assert.Equal(t, 0, line.Status)
			assert.Equal(t, "", line.Method)
			assert.True(t, strings.HasPrefix(line.Remote, "127.0.0.1:"), line.Remote)
			n := 0
			for _, e := range tlsLines(t, r.data) {
				if e.Error == tc.reason {
					n++
				}
			}
			assert.Equal(t, 1, n, "two refusals from one address within a minute are one line")
		})
	}
	t.Run("no certificate", func(t *testing.T) {
		t.Parallel()
		// No handshake refusal any more: /healthz takes no certificate (SPEC §3.1),
		// and each /v1 request is refused 401 in its own line, error no_certificate,
		// under the host it claims, unverified.
		h := newDrHost(t, "lab-08", r.URL).withToken(t, r.tokens["lab-08"]).withTLS(r.ca, nil)
		res, _, checks := h.doctor(t, bin)
		assert.Equal(t, 1, res.Code, res.Stderr)
		assertCheck(t, checks["client-cert"], doctor.Fail, "the receiver requires one", "receiver.cert_file and key_file")
		assert.NotEqual(t, doctor.Fail, checks["receiver-reachable"].Status, checks["receiver-reachable"].Summary)
		var line index.Entry
		require.Eventually(t, func() bool {
			for _, e := range receiverIndex(t, r.data) {
				if e.Route == "whoami" && e.Host == "lab-08" {
					line = e
					return true
				}
			}
			return false
		}, 10*time.Second, 20*time.Millisecond, "no whoami line for lab-08:\n%s", r.Logs())
		assert.Equal(t, 401, line.Status)
		assert.Equal(t, "no_certificate", line.Error)
		assert.True(t, line.Unverified)
		for _, e := range tlsLines(t, r.data) {
			assert.NotEqual(t, "no_certificate", e.Error, "a handshake without a certificate is not refused")
		}
	})
	t.Run("accepted", func(t *testing.T) {
		t.Parallel()
		h := newDrHost(t, "lab-10", r.URL).withToken(t, r.tokens["lab-10"]).withTLS(r.ca, &good)
		_, _, checks := h.doctor(t, bin)
		assertCheck(t, checks["client-cert"], doctor.OK, "issued to lab-10", "")
		assertCheck(t, checks["token"], doctor.OK, "the receiver accepts the token for lab-10", "")
		for _, e := range tlsLines(t, r.data) {
			assert.NotEqual(t, "lab-10", e.Host, "an accepted certificate leaves no tls line")
		}
	})
}

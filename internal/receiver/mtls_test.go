package receiver_test

import (
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/config"
	"github.com/cis490/cis490/internal/index"
	"github.com/cis490/cis490/internal/protocol"
	"github.com/cis490/cis490/internal/testpki"
	"github.com/cis490/cis490/internal/tokens"
)

// mtlsRun is Run with serve.tls.client_ca_file set: the TLS configuration, the
// refused handshakes' lines and the routes' certificate checks are the real ones.
type mtlsRun struct {
	*running
	ca    *testpki.CA
	labA  string
	admin string
}

func startMTLS(t *testing.T) *mtlsRun {
	t.Helper()
	ca := testpki.NewCA(t, "fleet")
	server := ca.Server("receiver")
	tokensFile := filepath.Join(t.TempDir(), "tokens.toml")
	labA, err := tokens.Append(tokensFile, tokens.Identity{Host: "lab-a"}, time.Now())
	require.NoError(t, err)
	admin, err := tokens.Append(tokensFile, tokens.Identity{Admin: "ops"}, time.Now())
	require.NoError(t, err)
	r := startRun(t, func(s *config.Serve) {
		s.TokensFile = tokensFile
		s.TLS = config.TLS{CertFile: server.CertFile, KeyFile: server.KeyFile, ClientCAFile: ca.CertPEM}
	})
	r.url = "https://" + r.addr
	return &mtlsRun{running: r, ca: ca, labA: labA, admin: admin}
}

// client presents cert (nil: none) even when its issuer is not a CA the receiver
// asks for: Go's client would otherwise send none.
func (m *mtlsRun) client(cert *testpki.Pair) *http.Client {
	cfg := &tls.Config{RootCAs: m.ca.Pool()}
	if cert != nil {
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert.TLS, nil }
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}}
}

type mtlsAnswer struct {
	status int
	header http.Header
	body   map[string]any
}

func (m *mtlsRun) get(t *testing.T, c *http.Client, method, path, token, host string) (mtlsAnswer, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, m.url+path, nil)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if host != "" {
		req.Header.Set(protocol.HeaderHost, host)
	}
	res, err := c.Do(req)
	if err != nil {
		return mtlsAnswer{}, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	a := mtlsAnswer{status: res.StatusCode, header: res.Header}
	_ = json.Unmarshal(raw, &a.body)
	return a, nil
}

// lines are the index lines written so far, the refused handshakes' too.
func (m *mtlsRun) lines(t *testing.T) []index.Entry {
	t.Helper()
	var out []index.Entry
	now := time.Now()
	_, err := index.Read(filepath.Join(m.data, "index"), now.Add(-time.Hour), now.Add(time.Hour), func(e index.Entry) error {
		out = append(out, e)
		return nil
	})
	require.NoError(t, err)
	return out
}

func (m *mtlsRun) line(t *testing.T, match func(index.Entry) bool) index.Entry {
	t.Helper()
	var found index.Entry
	require.Eventually(t, func() bool {
		for _, e := range m.lines(t) {
			if match(e) {
				found = e
				return true
			}
		}
		return false
	}, 5*time.Second, 10*time.Millisecond, "no such index line")
	return found
}

// SPEC §3.1: with serve.tls.client_ca_file a client certificate is verified when given
// and required on every route but /healthz.
func TestMTLSCertificateIsRequiredPerRoute(t *testing.T) {
	t.Parallel()
	m := startMTLS(t)
	certA := m.ca.Client("lab-a")
	none, withA := m.client(nil), m.client(&certA)

	t.Run("healthz takes no certificate", func(t *testing.T) {
		t.Parallel()
		a, err := m.get(t, none, http.MethodGet, "/healthz", "", "")
		require.NoError(t, err, "the handshake succeeds without a certificate")
		assert.Equal(t, http.StatusOK, a.status)
		assert.Equal(t, protocol.HealthOK, a.body["status"])
	})
	for _, tc := range []struct {
		name, method, path, token, host, route string
	}{
		{"whoami with a valid token", http.MethodGet, "/v1/whoami", "labA", "lab-a", "whoami"},
		{"whoami with no token", http.MethodGet, "/v1/whoami", "", "lab-b", "whoami"},
		{"heartbeat", http.MethodPost, "/v1/heartbeat", "labA", "lab-c", "heartbeat"},
		{"an admin's read", http.MethodGet, "/v1/host-health", "admin", "", "host-health"},
		{"a wrong method", http.MethodDelete, "/v1/whoami", "labA", "lab-d", "method"},
		{"an unknown /v1 path", http.MethodGet, "/v1/nothing-here", "labA", "lab-e", "unknown"},
	} {
		t.Run(tc.name+" needs a certificate", func(t *testing.T) {
			t.Parallel()
			token := map[string]string{"labA": m.labA, "admin": m.admin}[tc.token]
			a, err := m.get(t, none, tc.method, tc.path, token, tc.host)
			require.NoError(t, err)
			assert.Equal(t, http.StatusUnauthorized, a.status)
			assert.Equal(t, protocol.CodeClientCertRequired, a.body["code"])
			assert.Contains(t, a.body["error"], "receiver.cert_file and receiver.key_file")
			assert.Contains(t, a.body["error"], "fleet CA")
			assert.NotEmpty(t, a.header.Get("WWW-Authenticate"))

			id := a.header.Get(protocol.HeaderRequestID)
			e := m.line(t, func(e index.Entry) bool { return e.ID == id })
			assert.Equal(t, tc.route, e.Route)
			assert.Equal(t, http.StatusUnauthorized, e.Status)
			assert.Equal(t, "no_certificate", e.Error, "the handshake refusals' reason (SPEC §3.4): fleet health reads it as one")
			assert.Equal(t, tc.host, e.Host, "the claimed host, for fleet health to weigh")
			assert.True(t, e.Unverified, "nothing proved who called, not even a valid token")
		})
	}
	t.Run("a valid certificate and token", func(t *testing.T) {
		t.Parallel()
		a, err := m.get(t, withA, http.MethodGet, "/v1/whoami", m.labA, "")
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, a.status, a.body)
		assert.Equal(t, "lab-a", a.body["host"])
		assert.Equal(t, "host", a.body["role"])
		a, err = m.get(t, withA, http.MethodPost, "/v1/heartbeat", m.labA, "")
		require.NoError(t, err)
		assert.Equal(t, http.StatusNoContent, a.status, a.body)
		id := a.header.Get(protocol.HeaderRequestID)
		e := m.line(t, func(e index.Entry) bool { return e.ID == id })
		assert.Equal(t, "lab-a", e.Host)
		assert.False(t, e.Unverified)
	})
	t.Run("a valid certificate still needs a token", func(t *testing.T) {
		t.Parallel()
		a, err := m.get(t, withA, http.MethodGet, "/v1/whoami", "", "")
		require.NoError(t, err)
		assert.Equal(t, http.StatusUnauthorized, a.status)
		assert.Equal(t, "unauthorized", a.body["code"])
	})
	t.Run("another host's certificate", func(t *testing.T) {
		t.Parallel()
		certB := m.ca.Client("lab-b")
		a, err := m.get(t, m.client(&certB), http.MethodGet, "/v1/whoami", m.labA, "")
		require.NoError(t, err)
		assert.Equal(t, http.StatusForbidden, a.status)
	})
}

// A certificate given is still verified at the handshake, for every route: a
// foreign one gets its alert and its tls line, /healthz or not.
func TestMTLSForeignCertificateIsRefusedAtTheHandshake(t *testing.T) {
	t.Parallel()
	for _, path := range []string{"/healthz", "/v1/whoami"} {
		t.Run(path, func(t *testing.T) {
			t.Parallel()
			m := startMTLS(t)
			// The same name as the fleet's CA, so only the signature tells them apart.
			rogue := testpki.NewCA(t, "fleet").Client("lab-07")
			_, err := m.get(t, m.client(&rogue), http.MethodGet, path, m.labA, "lab-07")
			require.Error(t, err)
			assert.ErrorContains(t, err, "tls: unknown certificate authority")
			e := m.line(t, func(e index.Entry) bool { return e.Route == "tls" })
			assert.Equal(t, "lab-07", e.Host)
			assert.Equal(t, "unknown_ca", e.Error)
			assert.Equal(t, 0, e.Status)
			assert.Len(t, m.lines(t), 1, "one line: the handshake's")
		})
	}
}

package receiver_test

import (
	"crypto/tls"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/protocol"
	"github.com/cis490/cis490/internal/testpki"
	"github.com/cis490/cis490/internal/tokens"
)

func TestMTLS(t *testing.T) {
	t.Parallel()
	ca := testpki.NewCA(t, "fleet")
	h := newHarness(t, setup{tokens: true, ca: ca, mtls: true})
	labA := h.mint(tokens.Identity{Host: "lab-a"})
	labB := h.mint(tokens.Identity{Host: "lab-b"})
	admin := h.mint(tokens.Identity{Admin: "ops"})
	certA, certB := ca.Client("lab-a"), ca.Client("lab-b")
	clientA, clientB := h.tlsClient(ca, &certA), h.tlsClient(ca, &certB)
	waitForToken(t, h, clientA, admin)

	t.Run("no client certificate is refused 401, /healthz excepted", func(t *testing.T) {
		t.Parallel()
		r := h.do(req{method: http.MethodGet, path: "/v1/whoami", token: labA, client: h.tlsClient(ca, nil)})
		assertAPIError(t, r, http.StatusUnauthorized, protocol.CodeClientCertRequired)
		r = h.do(req{method: http.MethodGet, path: "/healthz", client: h.tlsClient(ca, nil)})
		assert.Equal(t, http.StatusOK, r.status, string(r.body))
	})
	t.Run("a certificate from another CA is refused at the handshake", func(t *testing.T) {
		t.Parallel()
		// Same name as the fleet's CA, so only the signature tells them apart. The
		// callback presents the certificate even though its issuer is not among the CAs
		// the server asks for (Go's client would otherwise send none).
		rogue := testpki.NewCA(t, "fleet")
		cert := rogue.Client("lab-a")
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
			RootCAs:              ca.Pool(),
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert.TLS, nil },
		}}}
		_, err := tryDo(h, req{method: http.MethodGet, path: "/v1/whoami", token: labA, client: client})
		require.Error(t, err)
		assert.ErrorContains(t, err, "certificate")
	})
	t.Run("own certificate and own token", func(t *testing.T) {
		t.Parallel()
		data := []byte("lab-a over mTLS")
		r := h.upload(req{token: labA, client: clientA}, "ep.tar", data)
		require.Equal(t, http.StatusCreated, r.status, string(r.body))
		assert.FileExists(t, filepath.Join(h.data, "episodes", "lab-a", sum(data)))
		r = h.do(req{method: http.MethodPut, path: "/v1/host-health/lab-a", token: labA, client: clientA, body: jsonBody(`{"status":"ok"}`)})
		assert.Equal(t, http.StatusNoContent, r.status, string(r.body))
	})
	t.Run("another host's token with this host's certificate", func(t *testing.T) {
		t.Parallel()
		data := []byte("lab-b's token on lab-a's certificate")
		r := h.upload(req{token: labB, client: clientA}, "ep.tar", data)
		assertAPIError(t, r, http.StatusForbidden, "forbidden")
		assert.NoFileExists(t, filepath.Join(h.data, "episodes", "lab-b", sum(data)))
		r = h.do(req{method: http.MethodGet, path: "/v1/whoami", token: labB, client: clientA})
		assertAPIError(t, r, http.StatusForbidden, "forbidden")
		r = h.do(req{method: http.MethodPut, path: "/v1/host-health/lab-b", token: labB, client: clientA, body: jsonBody(`{"status":"ok"}`)})
		assertAPIError(t, r, http.StatusForbidden, "forbidden")
	})
	t.Run("admin token with any verified certificate", func(t *testing.T) {
		t.Parallel()
		for _, c := range []*http.Client{clientA, clientB} {
			r := h.do(req{method: http.MethodGet, path: "/v1/host-health", token: admin, client: c})
			assert.Equal(t, http.StatusOK, r.status, string(r.body))
			r = h.do(req{method: http.MethodGet, path: "/v1/whoami", token: admin, client: c})
			assert.Equal(t, http.StatusOK, r.status, string(r.body))
			assert.Equal(t, "admin", r.json["role"])
		}
	})
	t.Run("a certificate still needs a token", func(t *testing.T) {
		t.Parallel()
		r := h.do(req{method: http.MethodGet, path: "/v1/whoami", client: clientA})
		assertAPIError(t, r, http.StatusUnauthorized, "unauthorized")
	})
	t.Run("a refused token is indexed under the certificate's host", func(t *testing.T) {
		t.Parallel()
		// A revoked token on lab-a, claiming to be lab-z: the certificate, not the
		// header, says who it is, so fleet health can trust this line.
		r := h.upload(req{token: "revoked-token", host: "lab-z", client: clientA}, "ep.tar", []byte("revoked"))
		assertAPIError(t, r, http.StatusUnauthorized, "unauthorized")
		id := r.header.Get(protocol.HeaderRequestID)
		e := waitIndexLine(t, h, id)
		assert.Equal(t, "lab-a", e.Host)
		assert.False(t, e.Unverified)
	})
	t.Run("a refused token is indexed under the certificate name it claims", func(t *testing.T) {
		t.Parallel()
		// The token check accepts any of a certificate's names; so does the index.
		cert := ca.ClientNamed("lab-07.cs.example.edu", "lab-07")
		client := h.tlsClient(ca, &cert)
		for claimed, want := range map[string]string{"lab-07": "lab-07", "": "lab-07.cs.example.edu", "lab-99": "lab-07.cs.example.edu"} {
			r := h.do(req{method: http.MethodPost, path: "/v1/heartbeat", token: "revoked-token", host: claimed, client: client})
			assertAPIError(t, r, http.StatusUnauthorized, "unauthorized")
			id := r.header.Get(protocol.HeaderRequestID)
			assert.Equal(t, want, waitIndexLine(t, h, id).Host, "claimed %q", claimed)
		}
	})
}

func TestPlainTLS(t *testing.T) {
	t.Parallel()
	ca := testpki.NewCA(t, "fleet")
	h := newHarness(t, setup{tokens: true, ca: ca})
	labA := h.mint(tokens.Identity{Host: "lab-a"})
	waitForToken(t, h, h.client, labA)

	r := h.upload(req{token: labA}, "ep.tar", []byte("over TLS"))
	assert.Equal(t, http.StatusCreated, r.status, string(r.body))
	r = h.do(req{method: http.MethodGet, path: "/v1/whoami", token: labA})
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	assert.Equal(t, "lab-a", r.json["host"])

	// A client certificate is not needed without mTLS, and a CA-less client is refused.
	_, err := tryDo(h, req{method: http.MethodGet, path: "/v1/whoami", token: labA, client: &http.Client{}})
	assert.Error(t, err, "the client does not trust the test CA")
}

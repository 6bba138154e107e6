package receiver_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/ca"
	"github.com/cis490/cis490/internal/config"
	"github.com/cis490/cis490/internal/index"
	"github.com/cis490/cis490/internal/protocol"
	"github.com/cis490/cis490/internal/tokens"
)

// caRun is a real receiver (Run) that is the lab's CA: data_dir/ca/ made by ca.Init,
// its server certificate and CA as serve.tls, and tokens for lab-07 and lab-08.
type caRun struct {
	*mtlsRun
	dir    string // data_dir/ca
	roots  *x509.CertPool
	tokens map[string]string
}

func startCA(t *testing.T, ca func(*config.CA)) *caRun {
	t.Helper()
	m := &caRun{tokens: map[string]string{}}
	tokensFile := filepath.Join(t.TempDir(), "tokens.toml")
	for _, h := range []string{"lab-07", "lab-08"} {
		tok, err := tokens.Append(tokensFile, tokens.Identity{Host: h}, time.Now())
		require.NoError(t, err)
		m.tokens[h] = tok
	}
	admin, err := tokens.Append(tokensFile, tokens.Identity{Admin: "ops"}, time.Now())
	require.NoError(t, err)
	m.tokens["admin"] = admin
	r := startRun(t, func(s *config.Serve) {
		m.dir = filepath.Join(s.DataDir, "ca")
		initCA(t, m.dir)
		server := filepath.Join(m.dir, "server.pem")
		s.TokensFile = tokensFile
		s.TLS = config.TLS{CertFile: server, KeyFile: server, ClientCAFile: filepath.Join(m.dir, "ca.pem")}
		if ca != nil {
			ca(&s.CA)
		}
	})
	r.url = "https://" + r.addr
	m.mtlsRun = &mtlsRun{running: r}
	raw, err := os.ReadFile(filepath.Join(m.dir, "ca.pem"))
	require.NoError(t, err)
	m.roots = x509.NewCertPool()
	require.True(t, m.roots.AppendCertsFromPEM(raw))
	return m
}

func initCA(t *testing.T, dir string) {
	t.Helper()
	_, err := ca.Init(dir, ca.InitOptions{Host: "pi", ServerNames: []string{"localhost", "127.0.0.1"}})
	require.NoError(t, err)
}

// certClient presents cert (nil: none); keepAlive keeps one connection for every request.
func (m *caRun) certClient(cert *tls.Certificate, keepAlive bool) *http.Client {
	cfg := &tls.Config{RootCAs: m.roots}
	if cert != nil {
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: !keepAlive, MaxConnsPerHost: 1}}
}

type certAnswer struct {
	status int
	body   []byte
	err    string // the JSON error's sentence
	reused bool   // sent over a connection made before
}

// post sends a CSR for host to POST /v1/certs/{path} as token. It only returns
// errors, so goroutines may call it.
func (m *caRun) post(t *testing.T, c *http.Client, path, host, token string, body []byte) (certAnswer, error) {
	var a certAnswer
	ctx := httptrace.WithClientTrace(t.Context(), &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { a.reused = i.Reused }})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.url+"/v1/certs/"+path, bytes.NewReader(body))
	if err != nil {
		return a, err
	}
	req.Header.Set("Content-Type", ca.CSRContentType)
	req.Header.Set(protocol.HeaderHost, host)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := c.Do(req)
	if err != nil {
		return a, err
	}
	defer res.Body.Close()
	a.status = res.StatusCode
	if a.body, err = io.ReadAll(res.Body); err != nil {
		return a, err
	}
	var e protocol.Error
	if json.Unmarshal(a.body, &e) == nil {
		a.err = e.Error
	}
	return a, nil
}

// issue gets host a certificate and returns it as a client's pair.
func (m *caRun) issue(t *testing.T, c *http.Client, host string) (tls.Certificate, *x509.Certificate) {
	t.Helper()
	key, csr := newCSR(t, host)
	a, err := m.post(t, c, host, host, m.tokens[host], csr)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, a.status, "%s", a.body)
	return pairOf(t, a.body, key)
}

func newCSR(t *testing.T, cn string) (*ecdsa.PrivateKey, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}}, key)
	require.NoError(t, err)
	return key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

func pairOf(t *testing.T, chain []byte, key *ecdsa.PrivateKey) (tls.Certificate, *x509.Certificate) {
	t.Helper()
	der, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	pair, err := tls.X509KeyPair(chain, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}))
	require.NoError(t, err)
	return pair, pair.Leaf
}

func (m *caRun) certLine(t *testing.T, match func(index.Entry) bool) index.Entry {
	t.Helper()
	return m.line(t, match)
}

func TestCertsBootstrapAndRenewal(t *testing.T) {
	t.Parallel()
	m := startCA(t, nil)
	none := m.certClient(nil, false)

	pair, leaf := m.issue(t, none, "lab-07")
	assert.Equal(t, "lab-07", leaf.Subject.CommonName)
	assert.Equal(t, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, leaf.ExtKeyUsage)
	assert.Len(t, pair.Certificate, 2, "the chain: the certificate and the CA's")
	line := m.certLine(t, func(e index.Entry) bool { return e.Route == "certs" && e.Status == http.StatusOK })
	assert.Equal(t, "lab-07", line.Host)
	assert.Equal(t, http.MethodPost, line.Method)

	// The issued certificate works on the routes that need one.
	withCert := m.certClient(&pair, false)
	who, err := m.get(t, withCert, http.MethodGet, "/v1/whoami", m.tokens["lab-07"], "lab-07")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, who.status)

	// Bootstrap again: the host has a valid certificate on record.
	_, csr := newCSR(t, "lab-07")
	a, err := m.post(t, none, "lab-07", "lab-07", m.tokens["lab-07"], csr)
	require.NoError(t, err)
	assert.Equal(t, http.StatusForbidden, a.status)
	assert.Contains(t, a.err, "has a valid certificate on record")
	assert.Contains(t, a.err, "`cis490 cert allow-bootstrap lab-07`")

	// Renewal: the certificate and the token.
	renewed, renewedLeaf := m.issue(t, withCert, "lab-07")
	assert.NotEqual(t, leaf.SerialNumber, renewedLeaf.SerialNumber)
	ledger, err := ca.ReadLedger(m.dir)
	require.NoError(t, err)
	last := ledger.Issued[len(ledger.Issued)-1]
	assert.Equal(t, ca.ByRenewal, last.By)
	assert.Equal(t, ca.SerialString(leaf.SerialNumber), last.Replaces)
	who, err = m.get(t, m.certClient(&renewed, false), http.MethodGet, "/v1/whoami", m.tokens["lab-07"], "lab-07")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, who.status)
}

func TestCertsRefusals(t *testing.T) {
	t.Parallel()
	m := startCA(t, func(c *config.CA) { c.Bootstrap = config.BootstrapAlways })
	none := m.certClient(nil, false)
	pair07, _ := m.issue(t, none, "lab-07")
	with07 := m.certClient(&pair07, false)
	_, csr := newCSR(t, "lab-07")

	for _, tc := range []struct {
		name              string
		client            *http.Client
		path, host, token string
		body              []byte
		status            int
		want              string
	}{
		{"no token", none, "lab-07", "lab-07", "", csr, http.StatusUnauthorized, "no bearer token"},
		{"another host's CSR", none, "lab-08", "lab-07", m.tokens["lab-07"], csr, http.StatusForbidden, "issued only to lab-08"},
		{"another host's token for this host", none, "lab-07", "lab-08", m.tokens["lab-08"], csr, http.StatusForbidden, "issued only to lab-07"},
		{"lab-07's certificate with lab-08's token", with07, "lab-08", "lab-08", m.tokens["lab-08"], csr, http.StatusForbidden, "not issued to host lab-08"},
		{"an admin token", none, "lab-07", "lab-07", m.tokens["admin"], csr, http.StatusForbidden, "with its own host token"},
		{"garbage", none, "lab-07", "lab-07", m.tokens["lab-07"], []byte("hello"), http.StatusBadRequest, "not a PEM certificate request"},
		{"oversized", none, "lab-07", "lab-07", m.tokens["lab-07"], append(bytes.Repeat([]byte("x"), 32<<10), csr...), http.StatusBadRequest, "larger than 16 KiB"},
		{"not a host name", none, "lab_07", "lab-07", m.tokens["lab-07"], csr, http.StatusBadRequest, "not an RFC 1123 host name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, err := ca.ReadLedger(m.dir)
			require.NoError(t, err)
			a, err := m.post(t, tc.client, tc.path, tc.host, tc.token, tc.body)
			require.NoError(t, err)
			assert.Equal(t, tc.status, a.status, "%s", a.body)
			assert.Contains(t, a.err, tc.want)
			after, err := ca.ReadLedger(m.dir)
			require.NoError(t, err)
			assert.Len(t, after.Issued, len(before.Issued), "nothing issued")
		})
	}
}

// Bring your own CA: no ca/ in the data folder, nothing is issued, 404.
func TestCertsWithoutACA(t *testing.T) {
	t.Parallel()
	m := startMTLS(t)
	_, csr := newCSR(t, "lab-a")
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, m.url+"/v1/certs/lab-a", bytes.NewReader(csr))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+m.labA)
	res, err := m.client(nil).Do(req)
	require.NoError(t, err, "the route takes no client certificate")
	defer res.Body.Close()
	assert.Equal(t, http.StatusNotFound, res.StatusCode)
	raw, _ := io.ReadAll(res.Body)
	assert.Contains(t, string(raw), "not the lab's CA")
	_, err = os.Stat(filepath.Join(m.data, "ca"))
	assert.True(t, os.IsNotExist(err), "nothing made")
}

// A revoked serial is refused at the handshake within a second, indexed as a "tls"
// line with reason revoked; a connection made before the revocation gets 403 on its
// next request, renewal included; a resumed TLS session is refused too.
func TestRevokedSerialIsRefused(t *testing.T) {
	t.Parallel()
	m := startCA(t, nil)
	none := m.certClient(nil, false)
	pair, leaf := m.issue(t, none, "lab-07")
	kept := m.certClient(&pair, true)
	who, err := m.get(t, kept, http.MethodGet, "/v1/whoami", m.tokens["lab-07"], "lab-07")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, who.status)

	// A session to resume, and a control: another host's resumes. A cache each:
	// sessions are cached by server name.
	pair08, _ := m.issue(t, none, "lab-08")
	sessions := map[*tls.Certificate]tls.ClientSessionCache{&pair: tls.NewLRUClientSessionCache(1), &pair08: tls.NewLRUClientSessionCache(1)}
	resuming := func(cert *tls.Certificate) *tls.Config {
		return &tls.Config{RootCAs: m.roots, ServerName: "localhost", ClientSessionCache: sessions[cert],
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }}
	}
	for _, p := range []*tls.Certificate{&pair, &pair08} {
		_, err := roundTrip(m.addr, resuming(p))
		require.NoError(t, err)
	}

	cli, err := ca.Open(m.dir, ca.Options{})
	require.NoError(t, err)
	_, err = cli.RevokeSerial(ca.SerialString(leaf.SerialNumber))
	require.NoError(t, err)

	fresh := m.certClient(&pair, false)
	require.Eventually(t, func() bool {
		_, err := m.get(t, fresh, http.MethodGet, "/v1/whoami", m.tokens["lab-07"], "lab-07")
		return err != nil && strings.Contains(err.Error(), "bad certificate")
	}, 5*time.Second, 20*time.Millisecond, "the handshake refuses the revoked serial")
	line := m.certLine(t, func(e index.Entry) bool { return e.Route == "tls" && e.Error == "revoked" })
	assert.Equal(t, "lab-07", line.Host)
	assert.Equal(t, 0, line.Status)

	resumed, err := roundTrip(m.addr, resuming(&pair08))
	require.NoError(t, err)
	assert.True(t, resumed, "sessions resume (the control)")
	_, err = roundTrip(m.addr, resuming(&pair))
	assert.Error(t, err, "lab-07's resumed session is refused too")

	who, err = m.get(t, kept, http.MethodGet, "/v1/whoami", m.tokens["lab-07"], "lab-07")
	require.NoError(t, err)
	assert.Equal(t, http.StatusForbidden, who.status, "the connection from before the revocation")
	assert.Contains(t, who.body["error"], "is revoked")
	_, csr := newCSR(t, "lab-07")
	a, err := m.post(t, kept, "lab-07", "lab-07", m.tokens["lab-07"], csr)
	require.NoError(t, err)
	assert.True(t, a.reused)
	assert.Equal(t, http.StatusForbidden, a.status, "a revoked certificate renews nothing")
}

// roundTrip makes one TLS connection with cfg and a request over it, resuming a
// session when cfg's cache holds one: whether it resumed, and the error of either.
func roundTrip(addr string, cfg *tls.Config) (resumed bool, err error) {
	conn, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"); err != nil {
		return false, err
	}
	// TLS 1.3: the server's verdict on the client's certificate comes with the answer.
	raw, err := io.ReadAll(conn)
	if err == nil && !bytes.HasPrefix(raw, []byte("HTTP/1.1 200")) {
		err = fmt.Errorf("answered %q", raw)
	}
	return conn.ConnectionState().DidResume, err
}

// The receiver's own certificate renewed on disk is served without a restart.
func TestServerCertificateIsReloaded(t *testing.T) {
	t.Parallel()
	m := startCA(t, nil)
	server := filepath.Join(m.dir, "server.pem")
	serial := func() string {
		conn, err := tls.Dial("tcp", m.addr, &tls.Config{RootCAs: m.roots, ServerName: "localhost"})
		require.NoError(t, err)
		defer conn.Close()
		return ca.SerialString(conn.ConnectionState().PeerCertificates[0].SerialNumber)
	}
	before := serial()
	authority, err := ca.Open(m.dir, ca.Options{})
	require.NoError(t, err)
	r, err := authority.RenewServer(server, server, []string{"127.0.0.1", "localhost", "pi.lab"})
	require.NoError(t, err)
	require.True(t, r.Renewed)
	require.NotEqual(t, before, r.Issued.Serial)
	require.Eventually(t, func() bool { return serial() == r.Issued.Serial }, 5*time.Second, 20*time.Millisecond,
		"the new certificate is served within a second")
}

// Two renewals at once from one host with one certificate: both are issued, and the
// CA's files stay whole.
func TestConcurrentRenewalsOverHTTP(t *testing.T) {
	t.Parallel()
	m := startCA(t, nil)
	pair, _ := m.issue(t, m.certClient(nil, false), "lab-07")
	with := m.certClient(&pair, false)
	type result struct {
		status int
		err    error
	}
	results := make(chan result, 4)
	for range 4 {
		_, csr := newCSR(t, "lab-07")
		go func() {
			a, err := m.post(t, with, "lab-07", "lab-07", m.tokens["lab-07"], csr)
			results <- result{a.status, err}
		}()
	}
	for range 4 {
		r := <-results
		require.NoError(t, r.err)
		assert.Equal(t, http.StatusOK, r.status)
	}
	ledger, err := ca.ReadLedger(m.dir)
	require.NoError(t, err)
	assert.Zero(t, ledger.Skipped)
	assert.Len(t, ledger.Issued, 1+1+4, "the server's, the bootstrap and four renewals")
}

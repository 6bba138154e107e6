package client

import (
	"context"
	"crypto/tls"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/testpki"
)

// SPEC §4.6: clients load the pair per connection, so `ship --watch` uses a renewed
// certificate without a restart.

// mtlsReceiver is a real TLS server that requires a client certificate from ca and
// records the serial of each one it is shown, and counts connections. Keep-alives
// are off: every request is a new connection, so a new handshake.
func mtlsReceiver(t *testing.T, ca *testpki.CA) (*httptest.Server, func() []string, *atomic.Int32) {
	t.Helper()
	var mu sync.Mutex
	var serials []string
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		serials = append(serials, r.TLS.PeerCertificates[0].SerialNumber.String())
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.Server("receiver").TLS}, ClientCAs: ca.Pool(), ClientAuth: tls.RequireAndVerifyClientCert}
	srv.Config.SetKeepAlivesEnabled(false)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), serials...)
	}, &conns
}

// install copies pair's files to certFile and keyFile the way a renewal writes them:
// each written beside its target and renamed over it.
func install(t *testing.T, pair testpki.Pair, certFile, keyFile string) {
	t.Helper()
	for src, dst := range map[string]string{pair.CertFile: certFile, pair.KeyFile: keyFile} {
		b, err := os.ReadFile(src)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(dst+".new", b, 0o600))
		require.NoError(t, os.Rename(dst+".new", dst))
	}
}

func serialOf(p testpki.Pair) string { return p.TLS.Leaf.SerialNumber.String() }

func TestANewConnectionPresentsTheCertificateNowOnDisk(t *testing.T) {
	t.Parallel()
	ca := testpki.NewCA(t, "fleet")
	srv, seen, _ := mtlsReceiver(t, ca)
	old, renewed := ca.Client("lab-07"), ca.Client("lab-07")
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "lab-07.pem"), filepath.Join(dir, "lab-07-key.pem")
	install(t, old, certFile, keyFile)

	cfg := testConfig(t, srv.URL)
	cfg.Receiver.CAFile, cfg.Receiver.CertFile, cfg.Receiver.KeyFile = ca.CertPEM, certFile, keyFile
	c := newTestClient(t, cfg)
	get := func() {
		t.Helper()
		res, err := c.Do(context.Background(), Request{Method: http.MethodGet, Path: "/v1/whoami"})
		require.NoError(t, err)
		res.Body.Close()
		require.Equal(t, http.StatusNoContent, res.StatusCode)
	}
	get()
	get()
	install(t, renewed, certFile, keyFile)
	get()
	assert.Equal(t, []string{serialOf(old), serialOf(old), serialOf(renewed)}, seen())
}

// The pair is read again only when a file changed: a handshake with nothing renewed
// costs two stat calls.
func TestThePairIsReadAgainOnlyWhenAFileChanged(t *testing.T) {
	t.Parallel()
	ca := testpki.NewCA(t, "fleet")
	old, renewed := ca.Client("lab-07"), ca.Client("lab-07")
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	install(t, old, certFile, keyFile)
	src := &pairSource{certFile: certFile, keyFile: keyFile}
	first, err := src.get()
	require.NoError(t, err)
	again, err := src.get()
	require.NoError(t, err)
	assert.Same(t, first, again, "unchanged files are not read again")
	install(t, renewed, certFile, keyFile)
	now, err := src.get()
	require.NoError(t, err)
	assert.Equal(t, serialOf(renewed), now.Leaf.SerialNumber.String())
}

// A pair that cannot be read at the handshake is an error naming both files, not an
// anonymous handshake the receiver then refuses. A file that cannot be read is not
// retried; a key that does not match its certificate is (a renewal renames the two
// files one after the other, and a handshake may fall between).
func TestAPairGoneFromDiskIsAClearError(t *testing.T) {
	t.Parallel()
	ca := testpki.NewCA(t, "fleet")
	srv, seen, conns := mtlsReceiver(t, ca)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "lab-07.pem"), filepath.Join(dir, "lab-07-key.pem")
	install(t, ca.Client("lab-07"), certFile, keyFile)
	cfg := testConfig(t, srv.URL)
	cfg.Receiver.CAFile, cfg.Receiver.CertFile, cfg.Receiver.KeyFile = ca.CertPEM, certFile, keyFile
	c := newTestClient(t, cfg)

	require.NoError(t, os.Remove(certFile))
	_, err := c.Do(context.Background(), Request{Method: http.MethodGet, Path: "/v1/whoami"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), srv.URL+"/v1/whoami")
	assert.Contains(t, err.Error(), "receiver.cert_file "+certFile)
	assert.Contains(t, err.Error(), "key_file "+keyFile)
	assert.Contains(t, err.Error(), "no such file or directory")
	assert.Empty(t, seen())
	assert.Equal(t, int32(1), conns.Load(), "not retried")

	// A key that does not match the certificate (half a renewal) says so too.
	install(t, ca.Client("lab-07"), certFile, keyFile)
	other := ca.Client("lab-07")
	b, err := os.ReadFile(other.KeyFile)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(keyFile, b, 0o600))
	_, err = c.Do(context.Background(), Request{Method: http.MethodGet, Path: "/v1/whoami"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "receiver.cert_file "+certFile)
	assert.Contains(t, err.Error(), "private key does not match public key")
	assert.Empty(t, seen())
	assert.Equal(t, int32(1+1+cfg.Ship.Retries), conns.Load(), "retried")
}

// A certificate from a CA the receiver does not ask for is not sent, as crypto/tls
// does with a static certificate: the receiver's answer then says none was sent.
func TestACertificateOfAnotherCAIsNotSent(t *testing.T) {
	t.Parallel()
	fleet, other := testpki.NewCA(t, "fleet"), testpki.NewCA(t, "other")
	var got int
	var mu sync.Mutex
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = len(r.TLS.PeerCertificates)
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{fleet.Server("receiver").TLS}, ClientCAs: fleet.Pool(), ClientAuth: tls.VerifyClientCertIfGiven}
	srv.StartTLS()
	defer srv.Close()
	foreign := other.Client("lab-07")
	cfg := testConfig(t, srv.URL)
	cfg.Receiver.CAFile, cfg.Receiver.CertFile, cfg.Receiver.KeyFile = fleet.CertPEM, foreign.CertFile, foreign.KeyFile
	c := newTestClient(t, cfg)
	res, err := c.Do(context.Background(), Request{Method: http.MethodGet, Path: "/healthz"})
	require.NoError(t, err)
	res.Body.Close()
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, 0, got)
}

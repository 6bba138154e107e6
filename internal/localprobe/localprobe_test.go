package localprobe_test

import (
	"context"
	"crypto/tls"
	"io"
	stdlog "log"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/config"
	"github.com/cis490/cis490/internal/gate"
	"github.com/cis490/cis490/internal/index"
	"github.com/cis490/cis490/internal/localprobe"
	"github.com/cis490/cis490/internal/protocol"
	"github.com/cis490/cis490/internal/receiver"
	"github.com/cis490/cis490/internal/store"
	"github.com/cis490/cis490/internal/testpki"
)

func TestURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		listen, cert, want, err string
	}{
		{"127.0.0.1:8490", "", "http://127.0.0.1:8490", ""},
		{"0.0.0.0:8490", "", "http://127.0.0.1:8490", ""},
		{":8490", "c.pem", "https://127.0.0.1:8490", ""},
		{"[::]:8490", "c.pem", "https://[::1]:8490", ""},
		{"[::1]:9000", "", "http://[::1]:9000", ""},
		{"pi.lab:8490", "", "http://pi.lab:8490", ""},
		{"127.0.0.1:0", "", "", "port 0"},
		{"nonsense", "", "", "not host:port"},
	} {
		t.Run(tc.listen, func(t *testing.T) {
			t.Parallel()
			sc := config.Default().Serve
			sc.Listen, sc.TLS.CertFile = tc.listen, tc.cert
			got, err := localprobe.URL(sc)
			if tc.err != "" {
				assert.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

// serveReceiver runs a real receiver handler on ln, as TLS when tlsCfg is set.
func serveReceiver(t *testing.T, ln net.Listener, tlsCfg *tls.Config) *receiver.Server {
	t.Helper()
	data := filepath.Join(t.TempDir(), "data")
	log := zerolog.New(zerolog.NewTestWriter(t))
	st, err := store.Open(data, store.Options{Logger: log})
	require.NoError(t, err)
	idx, err := index.OpenWriter(filepath.Join(data, "index"))
	require.NoError(t, err)
	t.Cleanup(func() { idx.Close() })
	srv := receiver.New(receiver.Options{Config: config.Default().Serve, Store: st, Index: idx, Gate: gate.New(nil, gate.Options{}), Logger: log})
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 5 * time.Second, ErrorLog: stdlog.New(io.Discard, "", 0)}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Close() })
	return srv
}

func listen(t *testing.T, addr string) (net.Listener, string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	_, port, err := net.SplitHostPort(ln.Addr().String())
	require.NoError(t, err)
	return ln, port
}

func TestHealthOverPlainHTTPOnEveryInterface(t *testing.T) {
	t.Parallel()
	ln, port := listen(t, "0.0.0.0:0")
	serveReceiver(t, ln, nil)
	sc := config.Default().Serve
	sc.Listen = "0.0.0.0:" + port
	h, err := localprobe.Health(t.Context(), sc)
	require.NoError(t, err)
	assert.Equal(t, protocol.HealthOK, h.Status)
	assert.NotNil(t, h.Gate)
}

func TestHealthOverTLSPinsTheCertificate(t *testing.T) {
	t.Parallel()
	ca := testpki.NewCA(t, "fleet")
	server := ca.Server("receiver")
	sc := config.Default().Serve
	sc.TLS.CertFile, sc.TLS.KeyFile = server.CertFile, server.KeyFile

	t.Run("our receiver", func(t *testing.T) {
		t.Parallel()
		ln, port := listen(t, "127.0.0.1:0")
		serveReceiver(t, ln, &tls.Config{Certificates: []tls.Certificate{server.TLS}})
		sc := sc
		sc.Listen = "127.0.0.1:" + port
		h, err := localprobe.Health(t.Context(), sc)
		require.NoError(t, err, "no CA needed: the certificate itself is trusted")
		assert.Equal(t, protocol.HealthOK, h.Status)
	})
	t.Run("another certificate on the port", func(t *testing.T) {
		t.Parallel()
		other := testpki.NewCA(t, "fleet").Server("receiver")
		ln, port := listen(t, "127.0.0.1:0")
		serveReceiver(t, ln, &tls.Config{Certificates: []tls.Certificate{other.TLS}})
		sc := sc
		sc.Listen = "127.0.0.1:" + port
		_, err := localprobe.Health(t.Context(), sc)
		assert.ErrorContains(t, err, "presents a certificate other than serve.tls.cert_file")
	})
	t.Run("mTLS at the handshake, as an older receiver did", func(t *testing.T) {
		t.Parallel()
		ln, port := listen(t, "127.0.0.1:0")
		serveReceiver(t, ln, &tls.Config{Certificates: []tls.Certificate{server.TLS}, ClientCAs: ca.Pool(), ClientAuth: tls.RequireAndVerifyClientCert})
		sc := sc
		sc.Listen = "127.0.0.1:" + port
		_, err := localprobe.Health(t.Context(), sc)
		assert.ErrorIs(t, err, localprobe.ErrClientCertRequired, "%v", err)
	})
}

// The Pi's own probe on an mTLS Pi: the real receiver (Run) with
// serve.tls.client_ca_file answers /healthz to a client without a certificate.
func TestHealthOfAnMTLSReceiver(t *testing.T) {
	t.Parallel()
	ca := testpki.NewCA(t, "fleet")
	server := ca.Server("receiver")
	sc := config.Default().Serve
	sc.Listen = "127.0.0.1:0"
	sc.DataDir = filepath.Join(t.TempDir(), "data")
	sc.MinFreeBytes = 0
	sc.TLS = config.TLS{CertFile: server.CertFile, KeyFile: server.KeyFile, ClientCAFile: ca.CertPEM}
	cfg := config.Default()
	cfg.Serve = sc
	ctx, cancel := context.WithCancel(context.Background())
	addrc, errc := make(chan net.Addr, 1), make(chan error, 1)
	go func() {
		errc <- receiver.Run(ctx, cfg, zerolog.New(zerolog.NewTestWriter(t)), func(a net.Addr) { addrc <- a })
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-errc:
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after its context ended")
		}
	})
	select {
	case a := <-addrc:
		sc.Listen = a.String()
	case err := <-errc:
		require.FailNow(t, "Run ended before listening", "%v", err)
	case <-time.After(10 * time.Second):
		require.FailNow(t, "Run did not start listening")
	}

	h, err := localprobe.Health(t.Context(), sc)
	require.NoError(t, err, "/healthz takes no client certificate (SPEC §3.1)")
	assert.Equal(t, protocol.HealthOK, h.Status)
	assert.NotNil(t, h.Gate)
}

func TestHealthOfAReceiverThatIsNotThere(t *testing.T) {
	t.Parallel()
	ln, port := listen(t, "127.0.0.1:0")
	require.NoError(t, ln.Close())
	sc := config.Default().Serve
	sc.Listen = "127.0.0.1:" + port
	_, err := localprobe.Health(t.Context(), sc)
	assert.ErrorContains(t, err, "connection refused")
	assert.ErrorContains(t, err, "systemctl status cis490-receiver")
}

func TestHealthOfAHungReceiver(t *testing.T) {
	t.Parallel()
	// Accepts, then never answers: the kernel completes the handshake from its backlog.
	ln, port := listen(t, "127.0.0.1:0")
	t.Cleanup(func() { ln.Close() })
	sc := config.Default().Serve
	sc.Listen = "127.0.0.1:" + port
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := localprobe.Health(ctx, sc)
	assert.ErrorContains(t, err, "no answer within")
	assert.Less(t, time.Since(start), localprobe.Timeout)
}

func TestHealthOfADrainingReceiver(t *testing.T) {
	t.Parallel()
	ln, port := listen(t, "127.0.0.1:0")
	srv := serveReceiver(t, ln, nil)
	srv.Drain()
	sc := config.Default().Serve
	sc.Listen = "127.0.0.1:" + port
	h, err := localprobe.Health(t.Context(), sc)
	require.NoError(t, err, "shutting down is an answer")
	assert.Equal(t, protocol.HealthDraining, h.Status)
}

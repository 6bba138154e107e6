package receiver

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/config"
	"github.com/cis490/cis490/internal/index"
	"github.com/cis490/cis490/internal/testpki"
)

var refusedT0 = time.Date(2026, 5, 4, 18, 0, 0, 0, time.UTC)

type refusalClock struct {
	mu sync.Mutex
	at time.Time
}

func (c *refusalClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.at
}

func (c *refusalClock) set(at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.at = at
}

// refusingServer is a real TLS listener with the receiver's TLS configuration
// (serverTLS, client certificates from ca verified when given) and its tlsRefusals on
// the connections, writing a real index. Its handler answers with the host the
// verified certificate names, or "no certificate".
type refusingServer struct {
	addr    string
	ca      *testpki.CA
	index   string // the index folder
	metrics *Metrics
	clock   *refusalClock
	closed  chan string // the remote address of each connection as it closes
}

func newRefusingServer(t *testing.T) *refusingServer {
	t.Helper()
	s := &refusingServer{ca: testpki.NewCA(t, "fleet"), index: filepath.Join(t.TempDir(), "index"),
		metrics: NewMetrics(nil, nil), clock: &refusalClock{at: refusedT0}, closed: make(chan string, 64)}
	server := s.ca.Server("receiver")
	cfg, _, err := serverTLS(config.TLS{CertFile: server.CertFile, KeyFile: server.KeyFile, ClientCAFile: s.ca.CertPEM}, zerolog.Nop())
	require.NoError(t, err)
	idx, err := index.OpenWriter(s.index)
	require.NoError(t, err)
	t.Cleanup(func() { _ = idx.Close() })
	refusals := newTLSRefusals(idx, s.metrics, zerolog.New(zerolog.NewTestWriter(t)), s.clock.now)

	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.TLS.VerifiedChains) == 0 {
			_, _ = io.WriteString(w, "no certificate")
			return
		}
		_, _ = io.WriteString(w, certName(r.TLS.VerifiedChains[0][0]))
	}))
	ts.TLS = cfg
	ts.Config.ErrorLog = log.New(io.Discard, "", 0) // its "TLS handshake error" lines are what these tests cause
	ts.Config.ConnState = func(c net.Conn, st http.ConnState) {
		refusals.ConnState(c, st)
		if st == http.StateClosed {
			select { // never blocks the server, even past the buffer at its Close
			case s.closed <- c.RemoteAddr().String():
			default:
			}
		}
	}
	ts.StartTLS()
	t.Cleanup(ts.Close)
	s.addr = ts.Listener.Addr().String()
	return s
}

type dial struct {
	cert       *tls.Certificate // nil: none
	from       string           // local IP; "" is 127.0.0.1
	maxVersion uint16
}

// get sends one request over a new connection and returns what the server answered,
// or the error the client saw; it returns once the server has closed the connection
// (with Connection: close it always does), so its index line, if any, is written.
func (s *refusingServer) get(t *testing.T, d dial) (string, error) {
	t.Helper()
	from := d.from
	if from == "" {
		from = "127.0.0.1"
	}
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	cfg := &tls.Config{RootCAs: s.ca.Pool(), ServerName: "localhost", MaxVersion: d.maxVersion,
		// Presents the certificate even when its issuer is not among the CAs the
		// receiver asks for: Go's client would otherwise send none.
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if d.cert == nil {
				return &tls.Certificate{}, nil
			}
			return d.cert, nil
		}}
	raw, err := dialer.Dial("tcp", s.addr)
	require.NoError(t, err)
	defer s.waitClosed(t, raw.LocalAddr().String())
	conn := tls.Client(raw, cfg)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(5*time.Second)))
	if err := conn.Handshake(); err != nil { // TLS 1.2: the server refuses before the client's handshake ends
		return "", err
	}
	// TLS 1.3: the client's handshake ends before the server has read its certificate,
	// so the server's verdict arrives with the first read.
	_, err = io.WriteString(conn, "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
	if err != nil {
		return "", err
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	return string(body), err
}

func presented(p testpki.Pair) *tls.Certificate { return &p.TLS }

func (s *refusingServer) waitClosed(t *testing.T, remote string) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case addr := <-s.closed:
			if addr == remote {
				return
			}
		case <-timeout:
			require.FailNow(t, "the server did not close the connection", remote)
		}
	}
}

func (s *refusingServer) lines(t *testing.T) []index.Entry {
	t.Helper()
	var out []index.Entry
	_, err := index.Read(s.index, refusedT0.Add(-time.Hour), refusedT0.Add(time.Hour), func(e index.Entry) error {
		out = append(out, e)
		return nil
	})
	require.NoError(t, err)
	return out
}

func (s *refusingServer) scrape(t *testing.T) string {
	t.Helper()
	rec := httptest.NewRecorder()
	s.metrics.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	return rec.Body.String()
}

// Each refused handshake is one index line naming the host its certificate carries
// and the reason, and the client gets the alert that says what is wrong.
func TestTLSRefusalsAreIndexed(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		cert       func(fleet, other *testpki.CA) *tls.Certificate
		maxVersion uint16
		alert      string
		reason     string
		host       string
	}{
		{name: "certificate from another CA", alert: "tls: unknown certificate authority", reason: "unknown_ca", host: "lab-07",
			cert: func(_, other *testpki.CA) *tls.Certificate { return presented(other.Client("lab-07")) }},
		{name: "expired", alert: "tls: expired certificate", reason: "expired", host: "lab-07",
			cert: func(fleet, _ *testpki.CA) *tls.Certificate {
				return presented(fleet.ClientExpiring("lab-07", time.Now().Add(-time.Hour)))
			}},
		{name: "serverAuth only", alert: "tls: bad certificate", reason: "bad_usage", host: "lab-07",
			cert: func(fleet, _ *testpki.CA) *tls.Certificate {
				return presented(fleet.ClientUsage("lab-07", x509.ExtKeyUsageServerAuth))
			}},
		{name: "expired over TLS 1.2", maxVersion: tls.VersionTLS12, alert: "tls: expired certificate", reason: "expired", host: "lab-07",
			cert: func(fleet, _ *testpki.CA) *tls.Certificate {
				return presented(fleet.ClientExpiring("lab-07", time.Now().Add(-time.Hour)))
			}},
		{name: "CN not a host name: the first DNS name that is", alert: "tls: unknown certificate authority", reason: "unknown_ca", host: "lab-07",
			cert: func(_, other *testpki.CA) *tls.Certificate {
				return presented(other.ClientNamed("Lab Seven", "lab_7", "LAB-07", "lab-08"))
			}},
		{name: "naming no host", alert: "tls: unknown certificate authority", reason: "unknown_ca", host: "",
			cert: func(_, other *testpki.CA) *tls.Certificate { return presented(other.ClientNamed("Lab Seven")) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newRefusingServer(t)
			// The same name as the fleet's CA, so only the signature tells them apart.
			other := testpki.NewCA(t, "fleet")
			_, err := s.get(t, dial{cert: tc.cert(s.ca, other), maxVersion: tc.maxVersion})
			require.Error(t, err)
			assert.ErrorContains(t, err, "remote error: "+tc.alert)

			lines := s.lines(t)
			require.Len(t, lines, 1)
			e := lines[0]
			assert.Equal(t, "tls", e.Route)
			assert.Equal(t, 0, e.Status)
			assert.Equal(t, "", e.Method)
			assert.Equal(t, tc.host, e.Host)
			assert.Equal(t, tc.reason, e.Error)
			assert.Equal(t, refusedT0, e.TS)
			ip, _, err := net.SplitHostPort(e.Remote)
			require.NoError(t, err, e.Remote)
			assert.Equal(t, "127.0.0.1", ip)

			raw, err := os.ReadFile(filepath.Join(s.index, "2026-05-04.jsonl"))
			require.NoError(t, err)
			for _, field := range []string{`"route":"tls"`, `"status":0`, `"method":""`, `"error":"` + tc.reason + `"`} {
				assert.Contains(t, string(raw), field)
			}
			assert.Contains(t, s.scrape(t), `cis490_tls_refused_total{reason="`+tc.reason+`"} 1`)
		})
	}
}

// A certificate the receiver accepts still reaches the handlers verified (they check
// its name against the token's host), and leaves no tls line.
func TestTLSAcceptedCertificatesReachTheHandlersVerified(t *testing.T) {
	t.Parallel()
	s := newRefusingServer(t)
	cert := s.ca.ClientNamed("lab-07.cs.example.edu", "lab-07")
	body, err := s.get(t, dial{cert: &cert.TLS})
	require.NoError(t, err)
	assert.Equal(t, "lab-07.cs.example.edu", body)
	assert.Empty(t, s.lines(t))
	assert.Contains(t, s.scrape(t), `cis490_tls_refused_total{reason="unknown_ca"} 0`)
}

// A client without a certificate is no handshake refusal: /healthz takes none (SPEC
// §3.1), so the handshake succeeds, leaves no tls line, and the routes that need a
// certificate refuse the request (needsClientCert).
func TestTLSWithoutACertificateCompletesTheHandshake(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		maxVersion uint16
	}{
		{"TLS 1.3", 0},
		{"TLS 1.2", tls.VersionTLS12},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newRefusingServer(t)
			body, err := s.get(t, dial{maxVersion: tc.maxVersion})
			require.NoError(t, err)
			assert.Equal(t, "no certificate", body)
			assert.Empty(t, s.lines(t))
			assert.NotContains(t, s.scrape(t), `reason="no_certificate"`)
		})
	}
}

// At most one line a minute per remote IP and reason; every refusal is counted.
func TestTLSRefusalsAreRateLimited(t *testing.T) {
	t.Parallel()
	s := newRefusingServer(t)
	expired := s.ca.ClientExpiring("lab-07", time.Now().Add(-time.Hour))
	serverOnly := s.ca.ClientUsage("lab-07", x509.ExtKeyUsageServerAuth)
	for i, step := range []struct {
		after time.Duration
		cert  testpki.Pair
		from  string
		lines int
	}{
		{0, expired, "127.0.0.1", 1},
		{30 * time.Second, expired, "127.0.0.1", 1}, // the same IP and reason within the minute
		{30 * time.Second, serverOnly, "127.0.0.1", 2},
		{30 * time.Second, expired, "127.0.0.2", 3},
		{59 * time.Second, expired, "127.0.0.1", 3},
		{60 * time.Second, expired, "127.0.0.1", 4},
	} {
		s.clock.set(refusedT0.Add(step.after))
		_, err := s.get(t, dial{cert: &step.cert.TLS, from: step.from})
		require.Error(t, err, "step %d", i)
		require.Len(t, s.lines(t), step.lines, "step %d", i)
	}
	lines := s.lines(t)
	var reasons []string
	for _, e := range lines {
		ip, _, _ := net.SplitHostPort(e.Remote)
		reasons = append(reasons, fmt.Sprintf("%s %s %s", e.TS.Sub(refusedT0), ip, e.Error))
	}
	assert.Equal(t, []string{"0s 127.0.0.1 expired", "30s 127.0.0.1 bad_usage", "30s 127.0.0.2 expired", "1m0s 127.0.0.1 expired"}, reasons)
	metrics := s.scrape(t)
	assert.Contains(t, metrics, `cis490_tls_refused_total{reason="expired"} 5`)
	assert.Contains(t, metrics, `cis490_tls_refused_total{reason="bad_usage"} 1`)
}

func TestRefusalLimiterIsBounded(t *testing.T) {
	t.Parallel()
	l := newRefusalLimiter(time.Minute, 2)
	key := func(ip string) refusalKey { return refusalKey{ip: ip, reason: "expired"} }
	for i, step := range []struct {
		ip    string
		after time.Duration
		want  limitVerdict
	}{
		{"10.0.0.1", 0, limitAllowed},
		{"10.0.0.2", 0, limitAllowed},
		{"10.0.0.1", time.Second, limitHeld},
		{"10.0.0.3", time.Second, limitFull}, // two keys remembered already: said once
		{"10.0.0.4", 2 * time.Second, limitFullHeld},
		{"10.0.0.3", 61 * time.Second, limitAllowed}, // the old keys are pruned
		{"10.0.0.4", 62 * time.Second, limitAllowed},
		{"10.0.0.5", 63 * time.Second, limitFull}, // a new window: said again
		{"10.0.0.3", -time.Hour, limitAllowed},    // a clock set back does not hold lines back
	} {
		assert.Equal(t, step.want, l.allow(key(step.ip), refusedT0.Add(step.after)), "step %d: %s", i, step.ip)
		assert.LessOrEqual(t, len(l.last), 2, "step %d", i)
	}
}

func TestClassifyRefusal(t *testing.T) {
	t.Parallel()
	leaf := &x509.Certificate{}
	verr := func(err error) error {
		return fmt.Errorf("wrapped: %w", &tls.CertificateVerificationError{UnverifiedCertificates: []*x509.Certificate{leaf}, Err: err})
	}
	for _, tc := range []struct {
		name   string
		err    error
		reason string
		ok     bool
	}{
		{"unknown CA", verr(x509.UnknownAuthorityError{}), "unknown_ca", true},
		{"expired", verr(x509.CertificateInvalidError{Reason: x509.Expired}), "expired", true},
		{"no clientAuth", verr(x509.CertificateInvalidError{Reason: x509.IncompatibleUsage}), "bad_usage", true},
		{"signed by a certificate that is no CA", verr(x509.CertificateInvalidError{Reason: x509.NotAuthorizedToSign}), "other", true},
		{"another verification error", verr(errors.New("tls: FIPS mode")), "other", true},
		{"the client does not trust the receiver", errors.New("remote error: tls: bad certificate"), "", false},
		{"not TLS", tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}, "", false},
		{"hung up", io.EOF, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reason, got, ok := classifyRefusal(tc.err)
			assert.Equal(t, tc.ok, ok)
			assert.Equal(t, tc.reason, reason)
			if ok {
				assert.Same(t, leaf, got)
			}
		})
	}
}

func TestCertName(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cn   string
		dns  []string
		want string
	}{
		{"lab-07", nil, "lab-07"},
		{"LAB-07", []string{"lab-08"}, "lab-07"},
		{"Lab Seven", []string{"lab_7", "lab-07.cs.example.edu", "lab-08"}, "lab-07.cs.example.edu"},
		{"", []string{"lab-07"}, "lab-07"},
		{"Lab Seven", []string{"lab_7"}, ""},
		{strings.Repeat("a", 300), nil, ""},
	} {
		cert := &x509.Certificate{DNSNames: tc.dns}
		cert.Subject.CommonName = tc.cn
		assert.Equal(t, tc.want, certName(cert), "%q %q", tc.cn, tc.dns)
	}
}

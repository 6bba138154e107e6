package doctor

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/ca"
	"github.com/cis490/cis490/internal/config"
	"github.com/cis490/cis490/internal/receiver"
	"github.com/cis490/cis490/internal/testpki"
	"github.com/cis490/cis490/internal/tokens"
)

func TestCheckClientCert(t *testing.T) {
	t.Parallel()
	issued := time.Now()
	// testpki names the files after the CN, so each lab-07 variant needs its own CA
	// (its own folder).
	good := testpki.NewCA(t, "fleet").ClientExpiring("lab-07", issued.Add(365*24*time.Hour))
	other := testpki.NewCA(t, "fleet").Client("lab-99")
	expired := testpki.NewCA(t, "fleet").ClientExpiring("lab-07", issued.Add(-time.Hour))
	tomorrow := testpki.NewCA(t, "fleet").Client("lab-07") // testpki's default: valid for a day
	now := time.Now()                                      // after issuing, so that "a day" has begun to run out
	missing := filepath.Join(t.TempDir(), "lab-07.pem")
	// 30-day certificates from the lab's CA, issued 19 and 21 days ago: a third of
	// their lifetime is 10 days, when cert renew renews them.
	// 9 days left less the time since, in whole seconds (x509's): "8 days" when
	// issuing took less than the second's fraction, "9 days" on a loaded machine.
	thirdLeft := issueAged(t, "lab-07", 21*24*time.Hour)
	moreLeft := issueAged(t, "lab-07", 19*24*time.Hour)

	for _, tc := range []struct {
		name          string
		cert, key     string
		status        Status
		summary, hint string
	}{
		{"valid", good.CertFile, good.KeyFile, OK, "issued to lab-07", ""},
		{"none configured", "", "", Skip, "no client certificate configured", ""},
		{"only the certificate", good.CertFile, "", Fail, "go together", "set both"},
		{"missing file", missing, good.KeyFile, Fail, "cannot read receiver.cert_file", "signed by the fleet CA with CN lab-07"},
		{"key of another certificate", good.CertFile, other.KeyFile, Fail, "not a certificate and its key", "CN lab-07"},
		{"issued to another host", other.CertFile, other.KeyFile, Fail, "issued to CN lab-99 (DNS lab-99), not to this host (lab-07)", "CN lab-07"},
		{"expired", expired.CertFile, expired.KeyFile, Fail, "expired on " + day(issued.Add(-time.Hour)), "renew it: run `cis490 cert renew`"},
		{"a day-long certificate with most of it left", tomorrow.CertFile, tomorrow.KeyFile, OK, "issued to lab-07", ""},
		{"more than a third of its lifetime left", moreLeft.cert, moreLeft.key, OK, "issued to lab-07", ""},
		{"a third of its lifetime left", thirdLeft.cert, thirdLeft.key, Warn, "expires in " + roughly(thirdLeft.notAfter.Truncate(time.Second).Sub(now)) + ", on " + day(thirdLeft.notAfter) + " (under a third of its 30 days left)",
			"renew it before " + day(thirdLeft.notAfter) + ": run `cis490 cert renew`"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Config{Host: "lab-07", Receiver: config.Receiver{CertFile: tc.cert, KeyFile: tc.key}}
			c := checkClientCert(cfg, now, nil)
			assert.Equal(t, tc.status, c.Status, c.Summary)
			assert.Contains(t, c.Summary, tc.summary)
			assert.Contains(t, c.Hint, tc.hint)
		})
	}
}

// mtlsReceiver is a real TLS listener that requires client certificates from ca at
// the handshake, as `cis490 serve` with serve.tls.client_ca_file did before /healthz
// took none; a certificate given gets the alerts today's receiver sends too. tune
// adjusts its configuration.
func mtlsReceiver(t *testing.T, ca *testpki.CA, tune func(*tls.Config)) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.Server("receiver").TLS}, ClientCAs: ca.Pool(),
		ClientAuth: tls.RequireAndVerifyClientCert}
	if tune != nil {
		tune(srv.TLS)
	}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refusals these tests cause
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.URL
}

// client-cert is no ✓ when the receiver refuses the certificate at the handshake, and
// says why from the alert it sent.
func TestClientCertTheReceiverRefuses(t *testing.T) {
	t.Parallel()
	year := time.Now().Add(365 * 24 * time.Hour)
	for _, tc := range []struct {
		name          string
		cert          func(fleet *testpki.CA) testpki.Pair
		tune          func(*tls.Config)
		status        Status
		summary, hint string
		alert         string
	}{
		{name: "accepted", status: OK, summary: "issued to lab-07, valid until",
			cert: func(fleet *testpki.CA) testpki.Pair { return fleet.ClientExpiring("lab-07", year) }},
		{name: "another CA of the same name", status: Fail, alert: "tls: unknown certificate authority",
			summary: "the receiver refuses this certificate at the handshake (unknown certificate authority): its issuer (CN fleet) is not a CA the receiver trusts",
			hint:    "serve.tls.client_ca_file on the receiver",
			cert:    func(*testpki.CA) testpki.Pair { return testpki.NewCA(t, "fleet").ClientExpiring("lab-07", year) }},
		{name: "a CA the receiver does not ask for, at an older receiver's handshake", status: Fail, alert: "tls: certificate required",
			summary: "this host sent none: it sends only one issued by a CA the receiver asks for, and this one's issuer is CN other",
			hint:    "signed by the fleet CA with CN lab-07",
			cert:    func(*testpki.CA) testpki.Pair { return testpki.NewCA(t, "other").ClientExpiring("lab-07", year) }},
		{name: "serverAuth only", status: Fail, alert: "tls: bad certificate",
			summary: "(bad certificate): it is not for clients: its extendedKeyUsage lacks clientAuth",
			hint:    "issue it again with extendedKeyUsage clientAuth",
			cert:    func(fleet *testpki.CA) testpki.Pair { return fleet.ClientUsage("lab-07", x509.ExtKeyUsageServerAuth) }},
		{name: "expired by the receiver's clock", status: Fail, alert: "tls: expired certificate",
			summary: "it has expired by the receiver's clock, though it is valid until " + day(year),
			hint:    "timedatectl set-ntp true",
			tune:    func(c *tls.Config) { c.Time = func() time.Time { return year.Add(24 * time.Hour) } },
			cert:    func(fleet *testpki.CA) testpki.Pair { return fleet.ClientExpiring("lab-07", year) }},
		{name: "refused for another reason", status: Fail, alert: "tls: bad certificate",
			summary: "(bad certificate): check its extendedKeyUsage (clientAuth), that it comes from the CA in serve.tls.client_ca_file, and that it is not revoked",
			hint:    "journalctl -u cis490-receiver",
			tune: func(c *tls.Config) {
				c.VerifyPeerCertificate = func([][]byte, [][]*x509.Certificate) error { return errors.New("revoked serial") }
			},
			cert: func(fleet *testpki.CA) testpki.Pair { return fleet.ClientExpiring("lab-07", year) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fleet := testpki.NewCA(t, "fleet")
			pair := tc.cert(fleet)
			cfg := config.Default()
			cfg.Host, cfg.Ship.SpoolDir, cfg.Doctor.Timeout = "lab-07", t.TempDir(), 5*time.Second
			cfg.Receiver.URL = mtlsReceiver(t, fleet, tc.tune)
			cfg.Receiver.CAFile, cfg.Receiver.CertFile, cfg.Receiver.KeyFile = fleet.CertPEM, pair.CertFile, pair.KeyFile
			r := Run(context.Background(), Options{Config: cfg, Logger: zerolog.New(zerolog.NewTestWriter(t)), SystemdDir: "/nonexistent"})
			c := checksByID(r)["client-cert"]
			assert.Equal(t, tc.status, c.Status, c.Summary)
			assert.Contains(t, c.Summary, tc.summary)
			assert.Contains(t, c.Hint, tc.hint)
			if tc.alert != "" {
				assert.Equal(t, tc.alert, c.Details["receiver_alert"])
				assert.Equal(t, Fail, checksByID(r)["receiver-reachable"].Status, "receiver-reachable sees the refusal too")
			} else {
				// (a warning: testpki's server certificates expire within two weeks)
				assert.NotEqual(t, Fail, checksByID(r)["receiver-reachable"].Status)
			}
		})
	}
}

// realMTLSReceiver is `cis490 serve` (receiver.Run) with serve.tls.client_ca_file from
// fleet and a host token for lab-07, which it returns with its URL.
func realMTLSReceiver(t *testing.T, fleet *testpki.CA) (url, token string) {
	t.Helper()
	server := fleet.Server("receiver")
	tokensFile := filepath.Join(t.TempDir(), "tokens.toml")
	token, err := tokens.Append(tokensFile, tokens.Identity{Host: "lab-07"}, time.Now())
	require.NoError(t, err)
	cfg := config.Default()
	cfg.Serve.Listen, cfg.Serve.DataDir, cfg.Serve.MinFreeBytes = "127.0.0.1:0", filepath.Join(t.TempDir(), "data"), 0
	cfg.Serve.TokensFile = tokensFile
	// Short: the stop waits this long for a connection the client dialed and never
	// used (http.Server counts it as new for five seconds), and there is nothing to drain.
	cfg.Serve.DrainTimeout = 200 * time.Millisecond
	cfg.Serve.TLS = config.TLS{CertFile: server.CertFile, KeyFile: server.KeyFile, ClientCAFile: fleet.CertPEM}
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
			t.Error("the receiver did not stop")
		}
	})
	select {
	case a := <-addrc:
		return "https://" + a.String(), token
	case err := <-errc:
		require.FailNow(t, "the receiver did not start", "%v", err)
	case <-time.After(10 * time.Second):
		require.FailNow(t, "the receiver did not start listening")
	}
	return "", ""
}

// Today's receiver takes a handshake without a client certificate (/healthz needs
// none) and answers the routes that need one 401 client_certificate_required:
// receiver-reachable is fine, and client-cert and token say what to do.
func TestClientCertTheReceiverRequiresPerRoute(t *testing.T) {
	t.Parallel()
	year := time.Now().Add(365 * 24 * time.Hour)
	for _, tc := range []struct {
		name                 string
		cert                 func(fleet *testpki.CA) *testpki.Pair
		status, tokenStatus  Status
		summary, hint, token string
	}{
		{name: "none configured", status: Fail, tokenStatus: Fail,
			summary: "no client certificate configured (receiver.cert_file), and the receiver requires one",
			hint:    "signed by the fleet CA with CN lab-07 and put it and its key in receiver.cert_file and key_file",
			token:   "the receiver did not look at the token: it requires a client certificate first, and this host sent none (see client-cert)",
			cert:    func(*testpki.CA) *testpki.Pair { return nil }},
		{name: "a CA the receiver does not ask for", status: Fail, tokenStatus: Fail,
			summary: "this host sent none: it sends only one issued by a CA the receiver asks for, and this one's issuer is CN other",
			hint:    "signed by the fleet CA with CN lab-07",
			token:   "the receiver did not look at the token",
			cert: func(*testpki.CA) *testpki.Pair {
				p := testpki.NewCA(t, "other").ClientExpiring("lab-07", year)
				return &p
			}},
		{name: "accepted", status: OK, tokenStatus: OK, summary: "issued to lab-07, valid until", token: "the receiver accepts the token for lab-07",
			cert: func(fleet *testpki.CA) *testpki.Pair {
				p := fleet.ClientExpiring("lab-07", year)
				return &p
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fleet := testpki.NewCA(t, "fleet")
			url, token := realMTLSReceiver(t, fleet)
			tokenFile := filepath.Join(t.TempDir(), "token")
			require.NoError(t, os.WriteFile(tokenFile, []byte(token+"\n"), 0o600))
			cfg := config.Default()
			cfg.Host, cfg.Ship.SpoolDir, cfg.Doctor.Timeout = "lab-07", t.TempDir(), 5*time.Second
			cfg.Receiver.URL, cfg.Receiver.CAFile, cfg.Receiver.TokenFile = url, fleet.CertPEM, tokenFile
			if pair := tc.cert(fleet); pair != nil {
				cfg.Receiver.CertFile, cfg.Receiver.KeyFile = pair.CertFile, pair.KeyFile
			}
			r := Run(context.Background(), Options{Config: cfg, Logger: zerolog.New(zerolog.NewTestWriter(t)), SystemdDir: "/nonexistent"})
			checks := checksByID(r)
			c := checks["client-cert"]
			assert.Equal(t, tc.status, c.Status, c.Summary)
			assert.Contains(t, c.Summary, tc.summary)
			assert.Contains(t, c.Hint, tc.hint)
			assert.Nil(t, c.Details["receiver_alert"], "no handshake was refused")
			tk := checks["token"]
			assert.Equal(t, tc.tokenStatus, tk.Status, tk.Summary)
			assert.Contains(t, tk.Summary, tc.token)
			if tc.tokenStatus == Fail {
				assert.Contains(t, tk.Hint, "receiver.cert_file and receiver.key_file")
				assert.NotContains(t, tk.Hint, "token_file", "the token is not what is wrong")
			}
			// (a warning: testpki's server certificates expire within two weeks)
			assert.NotEqual(t, Fail, checks["receiver-reachable"].Status, checks["receiver-reachable"].Summary)
		})
	}
}

type agedPair struct {
	cert, key string
	notAfter  time.Time
}

// issueAged is a 30-day certificate for host from a lab CA (internal/ca), issued age ago.
func issueAged(t *testing.T, host string, age time.Duration) agedPair {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ca")
	then := func() time.Time { return time.Now().Add(-age) }
	_, err := ca.Init(dir, ca.InitOptions{ServerNames: []string{"localhost"}, Now: then})
	require.NoError(t, err)
	authority, err := ca.Open(dir, ca.Options{Lifetime: 30 * 24 * time.Hour, Now: then})
	require.NoError(t, err)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	require.NoError(t, err)
	got, err := authority.Issue(ca.Request{Host: host, CSR: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})})
	require.NoError(t, err)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), host+".pem")
	require.NoError(t, os.WriteFile(path, append(got.Chain, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})...), 0o600))
	return agedPair{cert: path, key: path, notAfter: got.NotAfter}
}

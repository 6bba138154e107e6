package doctor

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"

	"github.com/cis490/cis490/internal/config"
	"github.com/cis490/cis490/internal/testpki"
)

func TestCheckClientCert(t *testing.T) {
	t.Parallel()
	issued := time.Now()
	// testpki names the files after the CN, so each lab-07 variant needs its own CA
	// (its own folder).
	good := testpki.NewCA(t, "fleet").ClientExpiring("lab-07", issued.Add(365*24*time.Hour))
	other := testpki.NewCA(t, "fleet").Client("lab-99")
	soon := testpki.NewCA(t, "fleet").ClientExpiring("lab-07", issued.Add(7*24*time.Hour))
	expired := testpki.NewCA(t, "fleet").ClientExpiring("lab-07", issued.Add(-time.Hour))
	tomorrow := testpki.NewCA(t, "fleet").Client("lab-07") // testpki's default: valid for a day
	now := time.Now()                                      // after issuing, so that "a day" has begun to run out
	missing := filepath.Join(t.TempDir(), "lab-07.pem")

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
		{"expired", expired.CertFile, expired.KeyFile, Fail, "expired on " + day(issued.Add(-time.Hour)), "renew it"},
		{"expires tomorrow", tomorrow.CertFile, tomorrow.KeyFile, Warn, "expires in 23h", "renew it before"},
		{"expires within two weeks", soon.CertFile, soon.KeyFile, Warn, "expires in 6 days", "renew it before " + day(issued.Add(7*24*time.Hour))},
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

// mtlsReceiver is a real TLS listener that requires client certificates from ca, as
// `cis490 serve` with serve.tls.client_ca_file does; tune adjusts its configuration.
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
		{name: "a CA the receiver does not ask for", status: Fail, alert: "tls: certificate required",
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

package receiver

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
	"math/big"
	mathrand "math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cis490/cis490/internal/ca"
	"github.com/cis490/cis490/internal/config"
)

// BenchmarkHandshake times full mTLS handshakes (TLS 1.3, a client certificate from
// the lab's CA, no session resumption) with the receiver's own TLS configuration
// (serverTLS), without and with the revocation check (checkRevoked) over a
// revoked.jsonl of 2000 serials: a year of renewals of 100 hosts; then both in pairs.
// bench/handshake.sh runs it and prints the medians and their ratio (bench/README.md).
func BenchmarkHandshake(b *testing.B) {
	dir := filepath.Join(b.TempDir(), "ca")
	if _, err := ca.Init(dir, ca.InitOptions{ServerNames: []string{"localhost"}}); err != nil {
		b.Fatal(err)
	}
	authority, err := ca.Open(dir, ca.Options{Bootstrap: ca.BootstrapAlways})
	if err != nil {
		b.Fatal(err)
	}
	client := benchClientCert(b, authority, "lab-07")
	var list bytes.Buffer
	enc := json.NewEncoder(&list)
	now := time.Now().UTC()
	for i := range 2000 {
		serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
		if err != nil {
			b.Fatal(err)
		}
		_ = enc.Encode(ca.Revocation{TS: now, Serial: ca.SerialString(serial), Host: fmt.Sprintf("lab-%03d", i%100), At: now,
			NotAfter: now.Add(720 * time.Hour), Reason: ca.ReasonRenewed})
	}
	if err := os.WriteFile(filepath.Join(dir, ca.RevokedFile), list.Bytes(), 0o600); err != nil {
		b.Fatal(err)
	}
	server := filepath.Join(dir, ca.ServerFile)
	base, _, err := serverTLS(config.TLS{CertFile: server, KeyFile: server, ClientCAFile: filepath.Join(dir, ca.CertFile)}, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	base.SessionTicketsDisabled = true
	checked := base.Clone()
	checked.VerifyConnection = checkRevoked(authority)
	roots := x509.NewCertPool()
	roots.AddCert(authority.Certificate())
	clientCfg := &tls.Config{RootCAs: roots, ServerName: "localhost", Certificates: []tls.Certificate{client}}

	for _, bc := range []struct {
		name string
		cfg  *tls.Config
	}{{"mtls", base}, {"mtls+revocation", checked}} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				handshake(b, bc.cfg, clientCfg)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "handshakes/s")
		})
	}
	// Paired: each iteration times one handshake of each kind, in random order, so
	// that the load of a shared machine weighs on both alike; the rates are from the
	// median handshake of each kind.
	b.Run("paired", func(b *testing.B) {
		var plain, withCheck []time.Duration
		for b.Loop() {
			first, second := base, checked
			swapped := mathrand.IntN(2) == 1
			if swapped {
				first, second = second, first
			}
			t0 := time.Now()
			handshake(b, first, clientCfg)
			t1 := time.Now()
			handshake(b, second, clientCfg)
			d1, d2 := t1.Sub(t0), time.Since(t1)
			if swapped {
				d1, d2 = d2, d1
			}
			plain, withCheck = append(plain, d1), append(withCheck, d2)
		}
		p, c := medianOf(plain), medianOf(withCheck)
		b.ReportMetric(float64(time.Second)/float64(p), "mtls-handshakes/s")
		b.ReportMetric(float64(time.Second)/float64(c), "revocation-handshakes/s")
		b.ReportMetric(float64(p)/float64(c), "ratio")
	})
}

func medianOf(ds []time.Duration) time.Duration {
	slices.Sort(ds)
	return ds[len(ds)/2]
}

// handshake runs one handshake over an in-memory connection and checks that the
// server saw the client's certificate.
func handshake(b *testing.B, serverCfg, clientCfg *tls.Config) {
	sc, cc := net.Pipe()
	srv, cli := tls.Server(sc, serverCfg), tls.Client(cc, clientCfg)
	errc := make(chan error, 1)
	go func() {
		err := srv.Handshake()
		if err == nil && len(srv.ConnectionState().VerifiedChains) == 0 {
			err = errNoClientCert
		}
		errc <- err
	}()
	if err := cli.Handshake(); err != nil {
		b.Fatal(err)
	}
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
	// The raw pipe, not the TLS close_notify: nobody reads it on a pipe.
	_ = cc.Close()
	_ = sc.Close()
}

var errNoClientCert = &net.AddrError{Err: "the server verified no client certificate"}

func benchClientCert(b *testing.B, authority *ca.CA, host string) tls.Certificate {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: host}}, key)
	if err != nil {
		b.Fatal(err)
	}
	got, err := authority.Issue(ca.Request{Host: host, CSR: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})})
	if err != nil {
		b.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		b.Fatal(err)
	}
	pair, err := tls.X509KeyPair(got.Chain, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	if err != nil {
		b.Fatal(err)
	}
	return pair
}

// BenchmarkRevokedCheck is the revocation check alone, as each handshake makes it:
// what BenchmarkHandshake's difference should be.
func BenchmarkRevokedCheck(b *testing.B) {
	dir := filepath.Join(b.TempDir(), "ca")
	if _, err := ca.Init(dir, ca.InitOptions{ServerNames: []string{"localhost"}}); err != nil {
		b.Fatal(err)
	}
	authority, err := ca.Open(dir, ca.Options{})
	if err != nil {
		b.Fatal(err)
	}
	cs := tls.ConnectionState{PeerCertificates: []*x509.Certificate{benchClientCert(b, authority, "lab-07").Leaf}}
	check := checkRevoked(authority)
	for b.Loop() {
		if err := check(cs); err != nil {
			b.Fatal(err)
		}
	}
}

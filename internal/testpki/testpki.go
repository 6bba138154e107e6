// Package testpki makes throwaway certificate authorities and certificates for tests
// of TLS and mTLS: real X.509, real handshakes, nothing checked in.
package testpki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// CA is a certificate authority living in a test's temporary folder.
type CA struct {
	t       testing.TB
	dir     string
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	CertPEM string // path of the CA certificate in PEM

	mu sync.Mutex // held while a pair's file names are picked and written
}

// Pair is an issued certificate and its key, as files and as a tls.Certificate.
type Pair struct {
	CertFile, KeyFile string
	TLS               tls.Certificate
}

// NewCA creates a CA named name under t.TempDir().
func NewCA(t testing.TB, name string) *CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	check(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(365 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	check(t, err)
	cert, err := x509.ParseCertificate(der)
	check(t, err)
	dir := t.TempDir()
	ca := &CA{t: t, dir: dir, cert: cert, key: key, CertPEM: filepath.Join(dir, name+"-ca.pem")}
	writePEM(t, ca.CertPEM, "CERTIFICATE", der)
	return ca
}

// Pool is a cert pool holding just this CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// Server issues a server certificate for 127.0.0.1, ::1 and localhost.
func (ca *CA) Server(name string) Pair {
	return ca.issue(name, []string{"localhost"}, x509.ExtKeyUsageServerAuth, time.Now().Add(24*time.Hour))
}

// Client issues a client certificate whose CN (and DNS name) is cn.
func (ca *CA) Client(cn string) Pair {
	return ca.issue(cn, []string{cn}, x509.ExtKeyUsageClientAuth, time.Now().Add(24*time.Hour))
}

// ClientNamed issues a client certificate with this CN and these DNS names.
func (ca *CA) ClientNamed(cn string, dns ...string) Pair {
	return ca.issue(cn, dns, x509.ExtKeyUsageClientAuth, time.Now().Add(24*time.Hour))
}

// ClientExpiring issues a client certificate that expires at notAfter.
func (ca *CA) ClientExpiring(cn string, notAfter time.Time) Pair {
	return ca.issue(cn, []string{cn}, x509.ExtKeyUsageClientAuth, notAfter)
}

// ClientUsage issues a certificate named like Client's whose only extended key usage
// is usage: with x509.ExtKeyUsageServerAuth, one a receiver must refuse from a client.
func (ca *CA) ClientUsage(cn string, usage x509.ExtKeyUsage) Pair {
	return ca.issue(cn, []string{cn}, usage, time.Now().Add(24*time.Hour))
}

func (ca *CA) issue(cn string, dns []string, usage x509.ExtKeyUsage, notAfter time.Time) Pair {
	t := ca.t
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	check(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      pkix.Name{CommonName: cn},
		DNSNames:     dns,
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		NotBefore:    time.Now().Add(-2 * time.Hour),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	check(t, err)
	keyDER, err := x509.MarshalECPrivateKey(key)
	check(t, err)
	ca.mu.Lock()
	p := ca.files(cn)
	writePEM(t, p.CertFile, "CERTIFICATE", der)
	writePEM(t, p.KeyFile, "EC PRIVATE KEY", keyDER)
	ca.mu.Unlock()
	p.TLS, err = tls.LoadX509KeyPair(p.CertFile, p.KeyFile)
	check(t, err)
	return p
}

// files names a new pair's files after its CN, with a number after the first: a test
// may issue several certificates for one host from one CA, and none may overwrite
// another's files.
func (ca *CA) files(cn string) Pair {
	name := cn
	for i := 2; ; i++ {
		if _, err := os.Stat(filepath.Join(ca.dir, name+".pem")); os.IsNotExist(err) {
			return Pair{CertFile: filepath.Join(ca.dir, name+".pem"), KeyFile: filepath.Join(ca.dir, name+"-key.pem")}
		}
		name = fmt.Sprintf("%s-%d", cn, i)
	}
}

func serial(t testing.TB) *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	check(t, err)
	return n
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	check(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
}

func check(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

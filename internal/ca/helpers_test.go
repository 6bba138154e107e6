package ca_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/ca"
)

// clock is a CA's clock that tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *clock { return &clock{t: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newCA makes a CA in a temp data folder and opens it with opts (its clock is clk's).
func newCA(t *testing.T, clk *clock, opts ca.Options) *ca.CA {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ca")
	_, err := ca.Init(dir, ca.InitOptions{Host: "pi", ServerNames: []string{"localhost", "127.0.0.1"}, Now: clk.Now})
	require.NoError(t, err)
	opts.Now = clk.Now
	c, err := ca.Open(dir, opts)
	require.NoError(t, err)
	return c
}

func p256(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return k
}

// csrPEM is a CSR signed by key asking for tmpl (nil: CN lab-07).
func csrPEM(t *testing.T, key crypto.Signer, tmpl *x509.CertificateRequest) []byte {
	t.Helper()
	if tmpl == nil {
		tmpl = &x509.CertificateRequest{Subject: pkix.Name{CommonName: "lab-07"}}
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	require.NoError(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

// leafOf is the first certificate of a PEM chain.
func leafOf(t *testing.T, chain []byte) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(chain)
	require.NotNil(t, block)
	cert, err := x509.ParseCertificate(block.Bytes)
	require.NoError(t, err)
	return cert
}

// lines is a CA file's lines, "" for a missing file.
func lines(t *testing.T, c *ca.CA, name string) []string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(c.Dir(), name))
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	return strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
}

// bootstrap issues lab-07 a certificate on its token alone.
func bootstrap(t *testing.T, c *ca.CA, host string) (ca.Certificate, *x509.Certificate, error) {
	t.Helper()
	got, err := c.Issue(ca.Request{Host: host, CSR: csrPEM(t, p256(t), nil), Remote: "127.0.0.1:5000"})
	if err != nil {
		return got, nil, err
	}
	return got, leafOf(t, got.Chain), nil
}

// appendRaw appends text to one of the CA's files as a crash or an editor might.
func appendRaw(t *testing.T, c *ca.CA, name, text string) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(c.Dir(), name), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	require.NoError(t, err)
	_, err = f.WriteString(text)
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

func encodeKeyForTest(k crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

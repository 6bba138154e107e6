package ca_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/ca"
)

// The CA decides what a certificate says, whatever the CSR asks for.
func TestIssueIgnoresWhatTheCSRAsksFor(t *testing.T) {
	t.Parallel()
	clk := newClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	c := newCA(t, clk, ca.Options{Lifetime: 720 * time.Hour})
	eku, err := asn1.Marshal([]asn1.ObjectIdentifier{{1, 3, 6, 1, 5, 5, 7, 3, 1}}) // serverAuth
	require.NoError(t, err)
	basic, err := asn1.Marshal(struct {
		IsCA bool `asn1:"optional"`
	}{true})
	require.NoError(t, err)
	asks := &x509.CertificateRequest{
		Subject:        pkix.Name{CommonName: "lab-99", Organization: []string{"evil"}},
		DNSNames:       []string{"lab-99", "receiver.lab", "*.lab"},
		EmailAddresses: []string{"root@lab"},
		IPAddresses:    []net.IP{net.IPv4(10, 0, 0, 1)},
		URIs:           []*url.URL{{Scheme: "spiffe", Host: "lab"}},
		ExtraExtensions: []pkix.Extension{
			{Id: asn1.ObjectIdentifier{2, 5, 29, 37}, Value: eku},
			{Id: asn1.ObjectIdentifier{2, 5, 29, 19}, Critical: true, Value: basic},
		},
	}
	got, err := c.Issue(ca.Request{Host: "lab-07", CSR: csrPEM(t, p256(t), asks)})
	require.NoError(t, err)
	leaf := leafOf(t, got.Chain)
	assert.Equal(t, "lab-07", leaf.Subject.CommonName)
	assert.Empty(t, leaf.Subject.Organization)
	assert.Equal(t, []string{"lab-07"}, leaf.DNSNames)
	assert.Empty(t, leaf.EmailAddresses)
	assert.Empty(t, leaf.IPAddresses)
	assert.Empty(t, leaf.URIs)
	assert.Equal(t, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, leaf.ExtKeyUsage, "clientAuth only, serverAuth asked for or not")
	assert.False(t, leaf.IsCA)
	assert.Equal(t, clk.Now().Add(-5*time.Minute), leaf.NotBefore)
	assert.Equal(t, clk.Now().Add(720*time.Hour), leaf.NotAfter)
	assert.Positive(t, leaf.SerialNumber.Sign())
	assert.LessOrEqual(t, leaf.SerialNumber.BitLen(), 128)
	_, err = leaf.Verify(x509.VerifyOptions{Roots: pool(c.Certificate()), CurrentTime: clk.Now(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	assert.NoError(t, err)
	_, err = leaf.Verify(x509.VerifyOptions{Roots: pool(c.Certificate()), CurrentTime: clk.Now()})
	assert.Error(t, err, "not for servers")
	assert.Equal(t, ca.SerialString(leaf.SerialNumber), got.Serial)
	assert.Equal(t, ca.ByBootstrap, got.By)
	assert.Len(t, lines(t, c, ca.IssuedFile), 2, "the server's line and this one")
}

func TestIssueSerialsAreRandom(t *testing.T) {
	t.Parallel()
	c := newCA(t, newClock(time.Now()), ca.Options{Bootstrap: ca.BootstrapAlways})
	seen := map[string]bool{}
	wide := 0
	for range 32 {
		got, leaf, err := bootstrap(t, c, "lab-07")
		require.NoError(t, err)
		assert.False(t, seen[got.Serial])
		seen[got.Serial] = true
		if leaf.SerialNumber.BitLen() > 120 {
			wide++
		}
	}
	assert.Greater(t, wide, 20, "128-bit serials are mostly wider than 120 bits")
}

func TestIssueRefusesBadCSRsAndIssuesNothing(t *testing.T) {
	t.Parallel()
	c := newCA(t, newClock(time.Now()), ca.Options{Bootstrap: ca.BootstrapAlways})
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	require.NoError(t, err)
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	good := csrPEM(t, p256(t), nil)
	block, _ := pem.Decode(good)
	tampered := bytes.Clone(block.Bytes)
	tampered[len(tampered)-3] ^= 0xff // in the signature
	badSig := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: tampered})
	renamed := bytes.Clone(block.Bytes)
	copy(renamed[bytes.Index(renamed, []byte("lab-07")):], "lab-99") // in the signed part
	badBody := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: renamed})
	huge := append(bytes.Repeat([]byte("#"), ca.MaxCSRBytes), good...)

	for _, tc := range []struct {
		name string
		csr  []byte
		want string
	}{
		{"garbage", []byte("not a CSR at all"), "not a PEM certificate request"},
		{"empty", nil, "not a PEM certificate request"},
		{"a certificate, not a request", c.CertPEM(), "not a PEM certificate request"},
		{"PEM of garbage", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: []byte("junk")}), "does not parse"},
		{"signature does not verify", badSig, "signature does not verify"},
		{"signed part altered", badBody, "signature does not verify"},
		{"oversized", huge, "larger than 16 KiB"},
		{"RSA 1024", csrPEM(t, rsa1024, nil), "RSA of 1024 bits"},
		{"ECDSA P-384", csrPEM(t, p384, nil), "ECDSA on P-384"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Issue(ca.Request{Host: "lab-07", CSR: tc.csr})
			var bad *ca.BadCSR
			require.ErrorAs(t, err, &bad)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	assert.Len(t, lines(t, c, ca.IssuedFile), 1, "only the server's line: nothing was issued")
}

func TestIssueTakesTheKeyTypesItShould(t *testing.T) {
	t.Parallel()
	c := newCA(t, newClock(time.Now()), ca.Options{Bootstrap: ca.BootstrapAlways})
	rsa2048, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	for name, key := range map[string]crypto.Signer{"ECDSA P-256": p256(t), "Ed25519": ed, "RSA 2048": rsa2048} {
		got, err := c.Issue(ca.Request{Host: "lab-07", CSR: csrPEM(t, key, nil)})
		require.NoError(t, err, name)
		assert.True(t, leafOf(t, got.Chain).PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(key.Public()), name)
	}
}

func TestRenewalRevokesTheOldSerialAnHourLater(t *testing.T) {
	t.Parallel()
	clk := newClock(time.Now())
	c := newCA(t, clk, ca.Options{})
	_, old, err := bootstrap(t, c, "lab-07")
	require.NoError(t, err)

	renewed, err := c.Issue(ca.Request{Host: "lab-07", CSR: csrPEM(t, p256(t), nil), Proof: old})
	require.NoError(t, err)
	assert.Equal(t, ca.ByRenewal, renewed.By)
	assert.Equal(t, ca.SerialString(old.SerialNumber), renewed.Replaces)
	assert.False(t, c.Revoked(old.SerialNumber), "the old certificate still works for an hour")

	// The hour starts when the new certificate is first used, not at issuance: a
	// host that never got to keep it still has only the old one (reviewer's case).
	clk.add(3 * time.Hour)
	assert.False(t, c.Revoked(old.SerialNumber), "an unused renewal revokes nothing")
	require.NoError(t, c.Used(leafOf(t, renewed.Chain)))
	require.NoError(t, c.Used(leafOf(t, renewed.Chain)), "once a serial")

	clk.add(59 * time.Minute)
	assert.False(t, c.Revoked(old.SerialNumber))
	clk.add(time.Minute)
	assert.True(t, c.Revoked(old.SerialNumber), "an hour after the renewal, the old serial is refused")
	assert.False(t, c.Revoked(leafOf(t, renewed.Chain).SerialNumber))

	_, err = c.Issue(ca.Request{Host: "lab-07", CSR: csrPEM(t, p256(t), nil), Proof: old})
	var refused *ca.Refused
	require.ErrorAs(t, err, &refused, "a revoked certificate renews nothing")
	assert.Contains(t, refused.Reason, "was revoked")
}

// Two renewals at once with one certificate: both get a certificate, each line of
// the CA's files is whole, and the old serial goes in an hour, once or twice.
func TestConcurrentRenewals(t *testing.T) {
	t.Parallel()
	clk := newClock(time.Now())
	c := newCA(t, clk, ca.Options{})
	_, old, err := bootstrap(t, c, "lab-07")
	require.NoError(t, err)
	csrs := make([][]byte, 8)
	for i := range csrs {
		csrs[i] = csrPEM(t, p256(t), nil)
	}
	serials := make([]string, len(csrs))
	errs := make([]error, len(csrs))
	var wg sync.WaitGroup
	for i := range csrs {
		wg.Go(func() {
			got, err := c.Issue(ca.Request{Host: "lab-07", CSR: csrs[i], Proof: old})
			serials[i], errs[i] = got.Serial, err
			if err == nil {
				errs[i] = c.Used(leafOf(t, got.Chain))
			}
		})
	}
	wg.Wait()
	seen := map[string]bool{}
	for i := range csrs {
		require.NoError(t, errs[i])
		assert.False(t, seen[serials[i]])
		seen[serials[i]] = true
	}
	ledger, err := ca.ReadLedger(c.Dir())
	require.NoError(t, err)
	assert.Zero(t, ledger.Skipped)
	assert.Len(t, ledger.Issued, 2+len(csrs))
	assert.Len(t, ledger.Revoked, 1, "the first of them used starts the hour; the others find it begun")
	at, ok := ledger.RevokedAt(ca.SerialString(old.SerialNumber))
	require.True(t, ok)
	assert.Equal(t, clk.Now().Add(time.Hour).UTC(), at)
}

// A Pi whose clock is 3 minutes behind still issues certificates a lab host with the
// right time can use: NotBefore is 5 minutes before the Pi's now.
func TestPiClockBehind(t *testing.T) {
	t.Parallel()
	real := time.Now()
	c := newCA(t, newClock(real.Add(-3*time.Minute)), ca.Options{})
	_, leaf, err := bootstrap(t, c, "lab-07")
	require.NoError(t, err)
	assert.True(t, leaf.NotBefore.Before(real))
	_, err = leaf.Verify(x509.VerifyOptions{Roots: pool(c.Certificate()), CurrentTime: real,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	assert.NoError(t, err, "valid by the lab host's clock")
}

// Readers survive a torn last line; the next line appended starts a line of its own.
func TestTornLinesAreSkippedAndEnded(t *testing.T) {
	t.Parallel()
	clk := newClock(time.Now())
	c := newCA(t, clk, ca.Options{})
	_, old, err := bootstrap(t, c, "lab-07")
	require.NoError(t, err)
	for _, name := range []string{ca.IssuedFile, ca.RevokedFile} {
		appendRaw(t, c, name, "\n\ngarbage\n{\"ts\":\"2026-") // blank lines, garbage, a torn line
	}
	got, err := c.Issue(ca.Request{Host: "lab-07", CSR: csrPEM(t, p256(t), nil), Proof: old})
	require.NoError(t, err)
	require.NoError(t, c.Used(leafOf(t, got.Chain)))
	ledger, err := ca.ReadLedger(c.Dir())
	require.NoError(t, err)
	assert.Equal(t, 4, ledger.Skipped, "garbage and the torn line, in each file")
	assert.Len(t, ledger.Issued, 3)
	require.Len(t, ledger.Revoked, 1)
	assert.Equal(t, got.Replaces, ledger.Revoked[0].Serial)
	clk.add(2 * time.Hour)
	assert.True(t, c.Revoked(old.SerialNumber))
}

// An allow-bootstrap that a renewal made unnecessary (the "lost" key turned up) does
// not stay open for whoever holds the token later.
func TestARenewalClosesAnAllowance(t *testing.T) {
	t.Parallel()
	clk := newClock(time.Now())
	c := newCA(t, clk, ca.Options{Bootstrap: ca.BootstrapNever})
	_, err := c.AllowBootstrap("lab-07")
	require.NoError(t, err)
	clk.add(time.Second)
	_, old, err := bootstrap(t, c, "lab-07")
	require.NoError(t, err, "the allowance opens one bootstrap")
	clk.add(time.Second)
	_, err = c.AllowBootstrap("lab-07")
	require.NoError(t, err)
	clk.add(time.Second)
	_, err = c.Issue(ca.Request{Host: "lab-07", CSR: csrPEM(t, p256(t), nil), Proof: old})
	require.NoError(t, err, "the host renews with its certificate instead")
	clk.add(time.Second)
	_, _, err = bootstrap(t, c, "lab-07")
	var refused *ca.Refused
	require.ErrorAs(t, err, &refused, "the renewal closed the allowance")
}

// A renewal proved by a certificate of another CA (client_ca_file may hold several)
// revokes nothing: that serial is not this CA's.
func TestARenewalFromAnotherCARevokesNothing(t *testing.T) {
	t.Parallel()
	clk := newClock(time.Now())
	c := newCA(t, clk, ca.Options{})
	other := newCA(t, clk, ca.Options{})
	_, foreign, err := bootstrap(t, other, "lab-07")
	require.NoError(t, err)
	got, err := c.Issue(ca.Request{Host: "lab-07", CSR: csrPEM(t, p256(t), nil), Proof: foreign})
	require.NoError(t, err)
	assert.Empty(t, got.Replaces)
	require.NoError(t, c.Used(leafOf(t, got.Chain)))
	ledger, err := ca.ReadLedger(c.Dir())
	require.NoError(t, err)
	assert.Empty(t, ledger.Revoked)
}

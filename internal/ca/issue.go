package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"time"
)

// MaxCSRBytes bounds a CSR: an RSA-8192 one in PEM is under 4 KiB.
const MaxCSRBytes = 16 << 10

// Media types of POST /v1/certs/{host}: a PEM CSR in, the PEM chain out (RFC 8555 §9.1).
const (
	CSRContentType   = "application/pkcs10"
	ChainContentType = "application/pem-certificate-chain"
)

// BadCSR is a CSR the CA cannot use (400): nothing is issued.
type BadCSR struct{ msg string }

func (e *BadCSR) Error() string { return e.msg }

func badCSR(format string, args ...any) error { return &BadCSR{msg: fmt.Sprintf(format, args...)} }

// Request is one host asking for a client certificate.
type Request struct {
	Host   string // already checked: the caller's token is this host's
	CSR    []byte // PEM
	Remote string
	// Proof is the client certificate the request came with, verified by the TLS
	// handshake and naming Host: a renewal. nil: a bootstrap, on the token alone.
	Proof *x509.Certificate
}

// Certificate is what the CA issued: its line in issued.jsonl and the chain to send.
type Certificate struct {
	Issued
	Chain []byte // PEM: the certificate, then the CA's
}

// ParseCSR reads a PEM certificate request and checks what the CA will use of it:
// its signature and its key. Its names and extensions are ignored (Issue sets them).
func ParseCSR(raw []byte) (*x509.CertificateRequest, error) {
	if len(raw) > MaxCSRBytes {
		return nil, badCSR("the CSR is larger than %d KiB", MaxCSRBytes>>10)
	}
	block, _ := pem.Decode(raw)
	if block == nil || (block.Type != "CERTIFICATE REQUEST" && block.Type != "NEW CERTIFICATE REQUEST") {
		return nil, badCSR("the body is not a PEM certificate request (-----BEGIN CERTIFICATE REQUEST-----)")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, badCSR("the CSR does not parse: %v", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, badCSR("the CSR's signature does not verify: %v", err)
	}
	if err := checkKey(csr.PublicKey); err != nil {
		return nil, err
	}
	return csr, nil
}

// checkKey takes ECDSA P-256, Ed25519 and RSA of 2048 bits or more.
func checkKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return badCSR("the CSR's key is ECDSA on %s: use P-256 (or Ed25519, or RSA of 2048 bits or more)", k.Curve.Params().Name)
		}
	case ed25519.PublicKey:
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return badCSR("the CSR's key is RSA of %d bits: use 2048 or more (or ECDSA P-256, or Ed25519)", k.N.BitLen())
		}
	default:
		return badCSR("the CSR's key is a %T: use ECDSA P-256, Ed25519 or RSA of 2048 bits or more", pub)
	}
	return nil
}

// Issue signs a client certificate for r.Host from r.CSR: CN and one DNS name the
// host, clientAuth only, a random 128-bit serial, valid from 5 minutes ago for the
// configured lifetime (never past the CA's own end). A renewal (r.Proof) must come
// with a certificate that is not revoked, and schedules its revocation an hour
// later; a bootstrap must be allowed by the policy (bootstrapRefusal). Errors:
// *BadCSR (400), *Refused (403), else the CA's files could not be written.
func (c *CA) Issue(r Request) (Certificate, error) {
	csr, err := ParseCSR(r.CSR)
	if err != nil {
		return Certificate{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	unlock, err := c.lock()
	if err != nil {
		return Certificate{}, err
	}
	defer unlock()
	ledger, err := ReadLedger(c.dir)
	if err != nil {
		return Certificate{}, err
	}
	now := c.now()
	by := ByBootstrap
	if r.Proof != nil {
		by = ByRenewal
		serial := SerialString(r.Proof.SerialNumber)
		if at, ok := ledger.RevokedAt(serial); ok && !now.Before(at) {
			return Certificate{}, &Refused{
				Reason: fmt.Sprintf("the client certificate (serial %s) was revoked on %s", serial, at.UTC().Format(time.RFC3339)),
				Fix:    "a revoked certificate renews nothing: the host bootstraps with its token as serve.ca.bootstrap allows, or after `cis490 cert allow-bootstrap " + r.Host + "` on the receiver",
			}
		}
	} else if refused := ledger.bootstrapRefusal(r.Host, c.bootstrap, now); refused != nil {
		return Certificate{}, refused
	}

	tmpl, err := c.template(r.Host, now, c.lifetime)
	if err != nil {
		return Certificate{}, err
	}
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, csr.PublicKey, c.key)
	if err != nil {
		return Certificate{}, fmt.Errorf("sign a certificate for %s: %w", r.Host, err)
	}
	line := Issued{TS: now.UTC(), Serial: SerialString(tmpl.SerialNumber), Host: r.Host, NotBefore: tmpl.NotBefore.UTC(),
		NotAfter: tmpl.NotAfter.UTC(), By: by, Remote: r.Remote}
	// The certificate renewed is revoked an hour after the new one is first used
	// (Used), not now: the host may never get to keep the new one. Only one of this
	// CA's: a serial of another CA in client_ca_file is not this CA's to revoke.
	if r.Proof != nil && r.Proof.CheckSignatureFrom(c.cert) == nil {
		line.Replaces = SerialString(r.Proof.SerialNumber)
	}
	if err := c.appendLine(IssuedFile, line); err != nil {
		return Certificate{}, fmt.Errorf("record the issued certificate in %s: %w", IssuedFile, err)
	}
	chain := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), c.certPEM...)
	return Certificate{Issued: line, Chain: chain}, nil
}

// template is a leaf certificate for host valid from now-backdate for lifetime,
// capped at the CA's own end, with a fresh serial.
func (c *CA) template(host string, now time.Time, lifetime time.Duration) (*x509.Certificate, error) {
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	notAfter := now.Add(lifetime)
	if notAfter.After(c.cert.NotAfter) {
		notAfter = c.cert.NotAfter
	}
	return &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: host},
		DNSNames:              []string{host},
		NotBefore:             now.Add(-backdate),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}, nil
}

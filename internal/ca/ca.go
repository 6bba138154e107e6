// Package ca is the lab's small certificate authority when the Pi is one (SPEC §4.6):
// its folder data_dir/ca/ (the key, the certificate, issued.jsonl, revoked.jsonl,
// allow-bootstrap.jsonl), issuing a lab host's client certificate from its CSR and
// the Pi's own server certificate, the bootstrap policy, the revocations checked at
// every handshake, and the lab host's side: `cis490 cert renew` (renew.go) and the
// atomic replacement of a key and its certificate (pair.go).
package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/gofrs/flock"

	"github.com/cis490/cis490/internal/config"
	"github.com/cis490/cis490/internal/fsutil"
)

// The files of data_dir/ca/.
const (
	CertFile       = "ca.pem"       // the CA certificate: serve.tls.client_ca_file, receiver.ca_file
	KeyFile        = "ca.key"       // its key, 0600
	ServerFile     = "server.pem"   // the Pi's own certificate chain and key, 0600 (serve.tls.cert_file and key_file)
	IssuedFile     = "issued.jsonl" // one line a certificate issued
	RevokedFile    = "revoked.jsonl"
	AllowFile      = "allow-bootstrap.jsonl" // cert allow-bootstrap: one line a host let bootstrap once
	lockFile       = "lock"                  // held by every writer of the .jsonl files
	caLifetime     = 10 * 365 * 24 * time.Hour
	backdate       = 5 * time.Minute // NotBefore = now - backdate: a lab host's clock a little ahead still takes it
	RenewalOverlap = time.Hour       // a renewal revokes the certificate it replaces this much later
)

// Bootstrap policies (serve.ca.bootstrap): may a host get a certificate with its token
// alone?
const (
	BootstrapWhenNoneValid = config.BootstrapWhenNoneValid
	BootstrapAlways        = config.BootstrapAlways
	BootstrapNever         = config.BootstrapNever
)

// ErrExists is Init's answer when the folder already holds a CA: it is never replaced.
var ErrExists = errors.New("a CA already exists there")

// CA is an open data_dir/ca/. Safe for concurrent use; every change to its files is
// made under its lock file, so `cis490 cert` on the Pi and the running receiver can
// both write them.
type CA struct {
	dir       string
	cert      *x509.Certificate
	certPEM   []byte
	key       crypto.Signer
	lifetime  time.Duration
	bootstrap string
	now       func() time.Time
	revoked   *Revocations
	used      usedSerials

	mu sync.Mutex // one issuance at a time in this process; the lock file orders processes
}

// Options are what the configuration says of the CA ([serve.ca]).
type Options struct {
	Lifetime  time.Duration // of a client certificate; 0 means 720h
	Bootstrap string        // "" means when-none-valid
	// Now is the CA's clock; nil means time.Now. Every date it writes or checks
	// (issuance, revocation, bootstrap) comes from it.
	Now func() time.Time
}

// Open opens the CA in dir. An error wrapping fs.ErrNotExist means there is none:
// the receiver then issues nothing and bring-your-own CA works as before.
func Open(dir string, opts Options) (*CA, error) {
	if _, err := os.Stat(filepath.Join(dir, CertFile)); err != nil {
		return nil, fmt.Errorf("no CA in %s: %w", dir, err)
	}
	cert, certPEM, err := readCert(filepath.Join(dir, CertFile))
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	key, err := readKey(filepath.Join(dir, KeyFile))
	if err != nil {
		return nil, fmt.Errorf("CA key %s: %w (a CA without its key cannot issue: restore it from a backup, or move %s away and run `cis490 ca init`)",
			filepath.Join(dir, KeyFile), err, dir)
	}
	if !samePublicKey(cert.PublicKey, key.Public()) {
		return nil, fmt.Errorf("CA in %s: %s is not the key of %s", dir, KeyFile, CertFile)
	}
	c := &CA{dir: dir, cert: cert, certPEM: certPEM, key: key, lifetime: opts.Lifetime, bootstrap: opts.Bootstrap, now: opts.Now}
	if c.lifetime <= 0 {
		c.lifetime = 720 * time.Hour
	}
	if c.bootstrap == "" {
		c.bootstrap = BootstrapWhenNoneValid
	}
	if c.now == nil {
		c.now = time.Now
	}
	c.revoked = OpenRevocations(dir, c.now)
	return c, nil
}

// Dir is the CA's folder.
func (c *CA) Dir() string { return c.dir }

// Certificate is the CA's certificate.
func (c *CA) Certificate() *x509.Certificate { return c.cert }

// CertPEM is the CA's certificate in PEM, as lab hosts trust it.
func (c *CA) CertPEM() []byte { return c.certPEM }

// Revoked says whether serial is revoked by the CA's clock, from revoked.jsonl as it
// was at most a second ago (the handshake's check).
func (c *CA) Revoked(serial *big.Int) bool { return c.revoked.Revoked(serial) }

// InitOptions say how to make a CA.
type InitOptions struct {
	Host string // the Pi's fleet name: in the CA's name
	// ServerNames are the DNS names and IP addresses of the Pi's own certificate;
	// none means detected (DetectServerNames).
	ServerNames []string
	Now         func() time.Time
}

// Initialized is what Init made.
type Initialized struct {
	Dir         string
	NotAfter    time.Time
	Server      Issued // the Pi's own certificate, in ServerFile
	ServerNames []string
}

// Init makes a CA in dir: an ECDSA P-256 key (0600), a certificate valid 10 years,
// and the Pi's own server certificate. Everything is written in a new folder beside
// dir, then renamed to dir in one step: a crash leaves no half CA, and dir is never
// replaced (ErrExists) once it holds anything.
func Init(dir string, opts InitOptions) (Initialized, error) {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return Initialized{Dir: dir}, fmt.Errorf("%s: %w (nothing changed)", dir, ErrExists)
	}
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o750); err != nil {
		return Initialized{}, err
	}
	tmp, err := os.MkdirTemp(parent, ".ca-init-")
	if err != nil {
		return Initialized{}, err
	}
	defer os.RemoveAll(tmp) // gone after the rename; what a failure left otherwise

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Initialized{}, err
	}
	serial, err := newSerial()
	if err != nil {
		return Initialized{}, err
	}
	t := now()
	name := "cis490 lab CA"
	if opts.Host != "" {
		name += " (" + opts.Host + ")"
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name, Organization: []string{"cis490"}},
		NotBefore:             t.Add(-time.Hour),
		NotAfter:              t.Add(caLifetime),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return Initialized{}, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return Initialized{}, err
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return Initialized{}, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := writeSynced(filepath.Join(tmp, KeyFile), keyPEM, 0o600); err != nil {
		return Initialized{}, err
	}
	if err := writeSynced(filepath.Join(tmp, CertFile), certPEM, 0o644); err != nil {
		return Initialized{}, err
	}
	c := &CA{dir: tmp, cert: cert, certPEM: certPEM, key: key, now: now}
	names := normalizeNames(opts.ServerNames)
	if len(names) == 0 {
		names = DetectServerNames(opts.Host)
	}
	chain, serverKey, line, err := c.signServer(names)
	if err != nil {
		return Initialized{}, err
	}
	if err := writeSynced(filepath.Join(tmp, ServerFile), append(chain, serverKey...), 0o600); err != nil {
		return Initialized{}, err
	}
	if err := c.appendLine(IssuedFile, line); err != nil {
		return Initialized{}, err
	}
	if err := fsutil.SyncDir(tmp); err != nil {
		return Initialized{}, err
	}
	if err := os.Rename(tmp, dir); err != nil {
		if errors.Is(err, fs.ErrExist) || isNotEmpty(err) {
			return Initialized{Dir: dir}, fmt.Errorf("%s: %w (nothing changed)", dir, ErrExists)
		}
		return Initialized{}, err
	}
	if err := fsutil.SyncDir(parent); err != nil {
		return Initialized{}, err
	}
	return Initialized{Dir: dir, NotAfter: cert.NotAfter, Server: line, ServerNames: names}, nil
}

// lock takes the CA's lock file for a change to its files.
func (c *CA) lock() (unlock func(), err error) {
	l := flock.New(filepath.Join(c.dir, lockFile))
	if err := l.Lock(); err != nil {
		return nil, fmt.Errorf("lock %s: %w", l.Path(), err)
	}
	return func() { _ = l.Unlock() }, nil
}

// newSerial is a random 128-bit serial number, never 0.
func newSerial() (*big.Int, error) {
	for {
		n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
		if err != nil {
			return nil, err
		}
		if n.Sign() > 0 {
			return n, nil
		}
	}
}

// SerialString is how serials are written in the CA's files and shown: lowercase hex.
func SerialString(n *big.Int) string { return n.Text(16) }

// ParseSerial reads a serial as people copy it: hex, with or without colons or a 0x,
// any case.
func ParseSerial(s string) (string, bool) {
	clean := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != ':' {
			clean = append(clean, s[i])
		}
	}
	str := string(clean)
	if len(str) > 2 && (str[:2] == "0x" || str[:2] == "0X") {
		str = str[2:]
	}
	n, ok := new(big.Int).SetString(str, 16)
	if !ok || n.Sign() <= 0 {
		return "", false
	}
	return SerialString(n), true
}

func readCert(path string) (*x509.Certificate, []byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	block, _ := pem.Decode(raw)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, nil, fmt.Errorf("%s: no PEM certificate in it", path)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return cert, pem.EncodeToMemory(block), nil
}

func readKey(path string) (crypto.Signer, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(raw)
	if block == nil {
		return nil, errors.New("no PEM key in it")
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("a %T cannot sign", key)
	}
	return signer, nil
}

func encodeKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func samePublicKey(a, b crypto.PublicKey) bool {
	eq, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && eq.Equal(b)
}

// writeSynced writes a new file and fsyncs it.
func writeSynced(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func isNotEmpty(err error) bool { return errors.Is(err, syscall.ENOTEMPTY) }

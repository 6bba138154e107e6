package ca

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/gofrs/flock"
	"github.com/rs/zerolog"

	"github.com/cis490/cis490/internal/client"
	"github.com/cis490/cis490/internal/config"
	"github.com/cis490/cis490/internal/protocol"
)

// ErrRenewing is Renew's answer while another `cert renew` holds this host's lock.
var ErrRenewing = errors.New("another cis490 cert renew is running on this host")

// RenewOptions adjust Renew.
type RenewOptions struct {
	Force  bool // renew even when the certificate is not due
	Now    func() time.Time
	Logger zerolog.Logger
	// Retries of the CSR's request (client.Options.Retries): -1 means ship.retries.
	Retries int
}

// Renewal is what Renew did.
type Renewal struct {
	Renewed  bool
	Why      string // why it renewed, or why it did not need to
	By       string // ByRenewal or ByBootstrap
	Serial   string
	NotAfter time.Time
}

// Renew is `cis490 cert renew` on a lab host (SPEC §4.6): when the certificate at
// receiver.cert_file is missing, expired, not this host's or past two thirds of its
// lifetime (or opts.Force), it makes a new key, sends a CSR to POST /v1/certs/{host}
// through the one transport (with the current certificate when it is valid, else on
// the token alone), tries the new pair in a real handshake (GET /v1/whoami must name
// this host), and only then puts it in place (WritePair's one rename). Whatever
// fails, the old pair stays as it was.
func Renew(ctx context.Context, cfg config.Config, opts RenewOptions) (Renewal, error) {
	rc := cfg.Receiver
	if rc.CertFile == "" || rc.KeyFile == "" {
		return Renewal{}, errors.New("cert renew needs receiver.cert_file and receiver.key_file: where this host keeps its client certificate and key," +
			" e.g. /etc/cis490/client.pem for both (one file holds the pair)")
	}
	if rc.TokenFile == "" {
		return Renewal{}, errors.New("cert renew needs receiver.token_file: the receiver issues a certificate only to a host with its token (`cis490 token new --host " + cfg.Host + "` on it)")
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	unlock, err := lockRenew(rc.CertFile)
	if err != nil {
		return Renewal{}, err
	}
	defer unlock()

	state := inspectPair(rc.CertFile, rc.KeyFile, cfg.Host, now())
	why := state.due
	if why == "" && !opts.Force {
		// In its dates, but is it still accepted? A certificate revoked on the Pi
		// (cert revoke, then allow-bootstrap) would otherwise wait weeks for its
		// two-thirds mark: one request with it tells. Anything but a refusal of the
		// certificate (the receiver unreachable, say) leaves it for the next run.
		probe := opts
		probe.Retries = 0 // one try: the timer comes back in 12 h
		err := tryPair(ctx, cfg, probe, &Staged{CertFile: rc.CertFile, KeyFile: rc.KeyFile})
		if err == nil || !refusedCert(err) {
			return Renewal{Why: state.fine}, nil
		}
		why = "the receiver refuses the current certificate (" + err.Error() + ")"
		state.canProve = false // a refused certificate proves nothing: the token alone
	} else if why == "" {
		why = "--force"
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Renewal{}, err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: cfg.Host}, DNSNames: []string{cfg.Host},
	}, key)
	if err != nil {
		return Renewal{}, err
	}
	csrPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr})
	keyPEM, err := encodeKey(key)
	if err != nil {
		return Renewal{}, err
	}

	by := ByBootstrap
	var chain []byte
	if state.canProve {
		// A valid certificate: renew with it. Refused (revoked, or expired by the
		// receiver's clock), try the token alone, as the policy allows.
		chain, err = requestCert(ctx, cfg, opts, csrPEM, true)
		if err == nil {
			by = ByRenewal
		} else if refusedCert(err) {
			opts.Logger.Warn().Err(err).Msg("the receiver refused to renew with the current certificate; asking with the token alone (bootstrap)")
			chain, err = requestCert(ctx, cfg, opts, csrPEM, false)
		}
	} else {
		chain, err = requestCert(ctx, cfg, opts, csrPEM, false)
	}
	if err != nil {
		return Renewal{}, fmt.Errorf("no new certificate (%s): %w; the old pair is kept", why, err)
	}
	leaf, err := checkChain(chain, key, cfg.Host, now())
	if err != nil {
		return Renewal{}, fmt.Errorf("the receiver's answer is not a certificate to use: %w; the old pair is kept", err)
	}
	staged, err := StagePair(rc.CertFile, rc.KeyFile, chain, keyPEM)
	if err != nil {
		return Renewal{}, fmt.Errorf("write the new pair beside %s: %w; the old pair is kept", rc.CertFile, err)
	}
	if err := tryPair(ctx, cfg, opts, staged); err != nil {
		staged.Discard()
		return Renewal{}, fmt.Errorf("the new certificate (serial %s) does not work: %w; the old pair is kept", SerialString(leaf.SerialNumber), err)
	}
	if err := staged.Commit(); err != nil {
		staged.Discard()
		return Renewal{}, fmt.Errorf("put the new pair in place at %s: %w; the old pair is kept", rc.CertFile, err)
	}
	return Renewal{Renewed: true, Why: why, By: by, Serial: SerialString(leaf.SerialNumber), NotAfter: leaf.NotAfter}, nil
}

// lockRenew holds a lock beside certFile for one renewal; a second one at the same
// time gets ErrRenewing.
func lockRenew(certFile string) (func(), error) {
	l := flock.New(filepath.Join(filepath.Dir(certFile), "."+filepath.Base(certFile)+".lock"))
	ok, err := l.TryLock()
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w (cert renew writes beside receiver.cert_file: it needs that folder writable)", l.Path(), err)
	}
	if !ok {
		return nil, ErrRenewing
	}
	return func() { _ = l.Unlock() }, nil
}

// pairNow is what the pair at receiver.cert_file/key_file is now.
type pairNow struct {
	due      string // why it needs renewing; "" when it does not
	fine     string // when it does not: until when it is fine
	canProve bool   // it is a valid certificate of this host, to renew with
}

func inspectPair(certFile, keyFile, host string, now time.Time) pairNow {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return pairNow{due: "no certificate at " + certFile + " yet"}
	case err != nil:
		return pairNow{due: fmt.Sprintf("%s and %s are not a certificate and its key (%v)", certFile, keyFile, err)}
	}
	leaf := pair.Leaf
	switch {
	case !now.Before(leaf.NotAfter):
		return pairNow{due: "the certificate expired on " + leaf.NotAfter.UTC().Format(time.RFC3339)}
	case !protocol.CertNamesHost(leaf, host):
		return pairNow{due: "the certificate is issued to " + leaf.Subject.CommonName + ", not to " + host}
	case !now.Before(RenewAfter(leaf)):
		return pairNow{due: "the certificate is past two thirds of its lifetime (until " + leaf.NotAfter.UTC().Format(time.RFC3339) + ")", canProve: true}
	}
	return pairNow{canProve: true, fine: "the certificate is valid until " + leaf.NotAfter.UTC().Format(time.RFC3339) +
		": nothing to do before " + RenewAfter(leaf).UTC().Format(time.RFC3339) + " (--force renews now)"}
}

// requestCert POSTs the CSR and returns the PEM chain. withCert presents the current
// client certificate; without it the transport sends none (a certificate the receiver
// would refuse at the handshake must not stand in the way of a bootstrap).
func requestCert(ctx context.Context, cfg config.Config, opts RenewOptions, csrPEM []byte, withCert bool) ([]byte, error) {
	if !withCert {
		cfg.Receiver.CertFile, cfg.Receiver.KeyFile = "", ""
	}
	c, err := client.New(cfg, client.Options{Retries: opts.Retries, Logger: opts.Logger})
	if err != nil {
		return nil, err
	}
	res, err := c.Do(ctx, client.Request{
		Method: http.MethodPost,
		Path:   "/v1/certs/" + url.PathEscape(cfg.Host),
		Header: http.Header{"Content-Type": {CSRContentType}, "Accept": {ChainContentType}},
		Body: func() (io.ReadCloser, int64, error) {
			return io.NopCloser(bytes.NewReader(csrPEM)), int64(len(csrPEM)), nil
		},
	})
	if err != nil {
		return nil, err
	}
	if res.StatusCode == http.StatusNotFound {
		res.Body.Close()
		return nil, fmt.Errorf("%s is not the lab's CA (its data folder has no ca/): get this host's certificate from whoever runs your CA, or make the receiver one with `cis490 ca init`", c.URL())
	}
	if res.StatusCode != http.StatusOK {
		return nil, c.StatusError(res)
	}
	defer res.Body.Close()
	return io.ReadAll(io.LimitReader(res.Body, 64<<10))
}

// refusedCert says whether a renewal failed for the certificate it presented: the
// handshake refused it, or the receiver answered 403 (revoked meanwhile).
func refusedCert(err error) bool {
	var apiErr *client.APIError
	if errors.As(err, &apiErr) {
		return apiErr.Status == http.StatusForbidden
	}
	return strings.Contains(err.Error(), "remote error: tls:")
}

// checkChain makes sure the answer is a certificate for key, naming host, for
// clients, not expired.
func checkChain(chain []byte, key *ecdsa.PrivateKey, host string, now time.Time) (*x509.Certificate, error) {
	block, _ := pem.Decode(chain)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate in it")
	}
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, err
	}
	switch {
	case !samePublicKey(leaf.PublicKey, key.Public()):
		return nil, errors.New("it is not for the key this host just made")
	case !protocol.CertNamesHost(leaf, host):
		return nil, fmt.Errorf("it is issued to %s, not to %s", leaf.Subject.CommonName, host)
	case !now.Before(leaf.NotAfter):
		return nil, fmt.Errorf("it expired on %s by this host's clock (is it right?)", leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return leaf, nil
}

// tryPair makes a real handshake with the staged pair: GET /v1/whoami must answer
// for this host.
func tryPair(ctx context.Context, cfg config.Config, opts RenewOptions, staged *Staged) error {
	cfg.Receiver.CertFile, cfg.Receiver.KeyFile = staged.CertFile, staged.KeyFile
	c, err := client.New(cfg, client.Options{Retries: opts.Retries, Logger: opts.Logger})
	if err != nil {
		return err
	}
	res, err := c.Do(ctx, client.Request{Method: http.MethodGet, Path: "/v1/whoami"})
	if err != nil {
		return err
	}
	if res.StatusCode != http.StatusOK {
		return c.StatusError(res)
	}
	defer res.Body.Close()
	var who protocol.WhoAmI
	if err := json.NewDecoder(io.LimitReader(res.Body, 64<<10)).Decode(&who); err != nil {
		return fmt.Errorf("GET /v1/whoami: %w", err)
	}
	if who.Host != cfg.Host {
		return fmt.Errorf("GET /v1/whoami with it names host %q, not %s", who.Host, cfg.Host)
	}
	return nil
}

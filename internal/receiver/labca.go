package receiver

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/rs/zerolog"

	"github.com/cis490/cis490/internal/ca"
	"github.com/cis490/cis490/internal/config"
)

// openCA opens data_dir/ca/ when the receiver is the lab's CA, and returns nil when
// it is not (bring-your-own CA: nothing is issued, POST /v1/certs answers 404). It
// adds the revocation check to the handshake, and renews the receiver's own
// certificate when due: now, then every hour until ctx ends.
func openCA(ctx context.Context, sc config.Serve, v checked, log zerolog.Logger) (*ca.CA, error) {
	dir := filepath.Join(sc.DataDir, "ca")
	c, err := ca.Open(dir, ca.Options{Lifetime: sc.CA.Lifetime, Bootstrap: sc.CA.Bootstrap, Now: v.clock})
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("serve.data_dir: %w", err)
	}
	if v.clockOffset != 0 {
		log.Warn().Str("offset", v.clockOffset.String()).Msg("$" + ca.EnvClockOffset + " moves the CA's clock: it is for tests only, unset it")
	}
	log.Info().Str("dir", dir).Str("bootstrap", sc.CA.Bootstrap).Str("lifetime", sc.CA.Lifetime.String()).
		Msg("the receiver is the lab's CA: POST /v1/certs/{host} issues client certificates")
	if v.tls == nil {
		log.Warn().Msg("the receiver is the lab's CA but serves plain HTTP: set serve.tls.cert_file and key_file to " +
			filepath.Join(dir, ca.ServerFile) + " (both), and client_ca_file to " + filepath.Join(dir, ca.CertFile))
		return c, nil
	}
	v.tls.VerifyConnection = checkRevoked(c)
	v.tls.Time = v.clock
	switch {
	case v.tls.ClientCAs == nil:
		log.Warn().Msg("serve.tls.client_ca_file is not set: lab hosts' certificates are neither asked for nor checked; set it to " +
			filepath.Join(dir, ca.CertFile))
	case !trusts(v.tls.ClientCAs, c.Certificate()):
		log.Warn().Str("client_ca_file", sc.TLS.ClientCAFile).Msg("serve.tls.client_ca_file does not hold the CA of serve.data_dir/ca: the certificates it issues are refused at the handshake (unknown_ca); append " +
			filepath.Join(dir, ca.CertFile) + " to it")
	}
	names, err := ca.ParseServerNames(sc.CA.ServerNames)
	if err != nil {
		return nil, &ConfigError{fmt.Errorf("serve.ca.server_names: %w", err)}
	}
	renewServerCert(c, sc.TLS, names, log)
	v.serverCert.reload()
	go keepServerCertRenewed(ctx, c, sc.TLS, names, log)
	return c, nil
}

// trusts says whether pool verifies the CA's own certificate, i.e. holds it.
func trusts(pool *x509.CertPool, caCert *x509.Certificate) bool {
	_, err := caCert.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: caCert.NotBefore.Add(caCert.NotAfter.Sub(caCert.NotBefore) / 2),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	return err == nil
}

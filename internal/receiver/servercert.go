package receiver

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/cis490/cis490/internal/ca"
	"github.com/cis490/cis490/internal/config"
)

// serverCertRecheck is how often, at most, a handshake looks at the server
// certificate's files again (a stat of each).
const serverCertRecheck = time.Second

// serverCert is serve.tls.cert_file and key_file as the handshake reads them: loaded
// again when either file changes, so a renewed certificate (by this receiver's CA,
// or put there by the operator) is served without a restart. A pair that does not
// load (caught between two writes by hand) keeps the one loaded before.
type serverCert struct {
	certFile, keyFile string
	log               zerolog.Logger
	cur               atomic.Pointer[tls.Certificate]
	due               atomic.Int64 // UnixNano of the next stat

	mu   sync.Mutex // one reload at a time; guards seen
	seen [2]certStamp
}

type certStamp struct {
	mtime, size int64
	ino         uint64
}

func loadServerCert(certFile, keyFile string, log zerolog.Logger) (*serverCert, error) {
	s := &serverCert{certFile: certFile, keyFile: keyFile, log: log}
	stamps, err := s.stamps()
	if err != nil {
		return nil, fmt.Errorf("serve.tls cert_file %s / key_file %s: %w", certFile, keyFile, err)
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("serve.tls cert_file %s / key_file %s: %w", certFile, keyFile, err)
	}
	s.seen = stamps
	s.cur.Store(&pair)
	s.due.Store(time.Now().Add(serverCertRecheck).UnixNano())
	return s, nil
}

// get is the TLS configuration's GetCertificate.
func (s *serverCert) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	now := time.Now().UnixNano()
	if due := s.due.Load(); now >= due && s.due.CompareAndSwap(due, now+int64(serverCertRecheck)) {
		s.reload()
	}
	return s.cur.Load(), nil
}

func (s *serverCert) reload() {
	s.mu.Lock()
	defer s.mu.Unlock()
	stamps, err := s.stamps()
	if err != nil || stamps == s.seen {
		return
	}
	pair, err := tls.LoadX509KeyPair(s.certFile, s.keyFile)
	if err != nil {
		s.log.Warn().Err(err).Str("cert_file", s.certFile).Msg("the server certificate changed but does not load; serving the one loaded before")
		return
	}
	s.seen = stamps
	s.cur.Store(&pair)
	s.log.Info().Str("cert_file", s.certFile).Time("not_after", pair.Leaf.NotAfter).Msg("server certificate reloaded")
}

func (s *serverCert) stamps() ([2]certStamp, error) {
	var out [2]certStamp
	for i, p := range []string{s.certFile, s.keyFile} {
		fi, err := os.Stat(p) // through symlinks: a pair replaced by WritePair's rename shows here
		if err != nil {
			return out, err
		}
		out[i] = certStamp{mtime: fi.ModTime().UnixNano(), size: fi.Size()}
		if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
			out[i].ino = sys.Ino
		}
	}
	return out, nil
}

// serverRenewCheck is how often the receiver asks its CA whether its own certificate
// is due; it renews at two thirds of 90 days, so an hour is plenty.
const serverRenewCheck = time.Hour

// renewServerCert renews the receiver's own certificate when its CA issued it and
// it is due (ca.RenewServer), logging what it did. The handshake picks the new one up
// within a second (serverCert).
func renewServerCert(c *ca.CA, tc config.TLS, names []string, log zerolog.Logger) {
	r, err := c.RenewServer(tc.CertFile, tc.KeyFile, names)
	switch {
	case err != nil:
		log.Error().Err(err).Msg("could not renew the receiver's own certificate; retried in an hour (doctor's server-cert check warns two weeks before it expires)")
	case r.Renewed:
		log.Info().Str("serial", r.Issued.Serial).Time("not_after", r.Issued.NotAfter).Strs("names", r.Issued.Names).Str("why", r.Why).
			Msg("renewed the receiver's own certificate")
	default:
		log.Debug().Str("why", r.Why).Msg("the receiver's own certificate is not due for renewal")
	}
}

// keepServerCertRenewed checks the receiver's certificate every serverRenewCheck
// until ctx ends.
func keepServerCertRenewed(ctx context.Context, c *ca.CA, tc config.TLS, names []string, log zerolog.Logger) {
	t := time.NewTicker(serverRenewCheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			renewServerCert(c, tc, names, log)
		}
	}
}

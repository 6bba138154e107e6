package client

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
)

// PairError is a client certificate and key (receiver.cert_file, key_file) that
// could not be loaded, at start or at a handshake.
type PairError struct {
	CertFile, KeyFile string
	Err               error
	// unread: a file could not be read (missing, not readable). Otherwise both were
	// read but are not one pair, which a renewal may show for an instant (it renames
	// the two files one after the other), so a later attempt may succeed.
	unread bool
}

func (e *PairError) Error() string {
	return fmt.Sprintf("client certificate (receiver.cert_file %s, key_file %s): %v", e.CertFile, e.KeyFile, e.Err)
}

func (e *PairError) Unwrap() error { return e.Err }

// pairSource loads the client certificate at each TLS handshake, so a connection
// made after a renewal presents the renewed certificate without a restart (SPEC
// §4.6). It reads the files again only when one of them changed (another file, size
// or modification time): an unchanged pair costs two stat calls a handshake.
type pairSource struct {
	certFile, keyFile string

	mu    sync.Mutex
	stamp [2]fs.FileInfo // of certFile and keyFile, taken before they were read
	pair  *tls.Certificate
}

// get returns the pair now on disk.
func (s *pairSource) get() (*tls.Certificate, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var now [2]fs.FileInfo
	for i, name := range []string{s.certFile, s.keyFile} {
		info, err := os.Stat(name)
		if err != nil {
			return nil, &PairError{CertFile: s.certFile, KeyFile: s.keyFile, Err: err, unread: true}
		}
		now[i] = info
	}
	if s.pair != nil && unchanged(s.stamp[0], now[0]) && unchanged(s.stamp[1], now[1]) {
		return s.pair, nil
	}
	certPEM, err := os.ReadFile(s.certFile)
	if err != nil {
		return nil, &PairError{CertFile: s.certFile, KeyFile: s.keyFile, Err: err, unread: true}
	}
	keyPEM, err := os.ReadFile(s.keyFile)
	if err != nil {
		return nil, &PairError{CertFile: s.certFile, KeyFile: s.keyFile, Err: err, unread: true}
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, &PairError{CertFile: s.certFile, KeyFile: s.keyFile, Err: err}
	}
	// Stamped with what was seen before reading: a file replaced while it was read
	// differs from the stamp, and is read again at the next handshake.
	s.stamp, s.pair = now, &pair
	return s.pair, nil
}

// forHandshake is tls.Config.GetClientCertificate. Like crypto/tls with a static
// certificate, it sends none when the receiver asks for another CA's: the receiver
// then says that none came, which is the clearer story.
func (s *pairSource) forHandshake(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
	pair, err := s.get()
	if err != nil {
		return nil, err
	}
	if cri.SupportsCertificate(pair) != nil {
		return new(tls.Certificate), nil
	}
	return pair, nil
}

func unchanged(before, now fs.FileInfo) bool {
	return before != nil && os.SameFile(before, now) && before.Size() == now.Size() && before.ModTime().Equal(now.ModTime())
}

// retryablePair says whether a failed handshake may succeed if tried again: only a
// pair that was read but did not match, which a renewal in progress shows.
func retryablePair(err error) (retry, isPair bool) {
	var pe *PairError
	if !errors.As(err, &pe) {
		return false, false
	}
	return !pe.unread, true
}

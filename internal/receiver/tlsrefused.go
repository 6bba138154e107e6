package receiver

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/cis490/cis490/internal/ca"
	"github.com/cis490/cis490/internal/index"
	"github.com/cis490/cis490/internal/protocol"
)

// Why the receiver refused a client's TLS handshake: the "error" of its index line
// (SPEC §3.4) and the reason label of cis490_tls_refused_total.
const (
	refusedUnknownCA = "unknown_ca"
	refusedExpired   = "expired"
	refusedRevoked   = "revoked" // a serial revoked by the receiver's CA (SPEC §4.6): checkRevoked
	refusedBadUsage  = "bad_usage"
	refusedOther     = "other"
)

// refusedNoCertificate is the contract's reason for a client without a certificate.
// The handshake takes such a client (serverTLS), so it is no handshake refusal: it is
// the "error" of the 401 index line of a route that needs one (needsClientCert).
const refusedNoCertificate = "no_certificate"

const (
	// refusalWindow: at most one index line per remote IP and reason within it. A
	// host retries every few minutes, a misconfigured loop many times a second; the
	// index needs to know it happens, not each time.
	refusalWindow = time.Minute
	// maxRefusalKeys bounds the memory the rate limit takes when refusals come from
	// very many addresses at once; beyond it they are counted, not indexed.
	maxRefusalKeys = 4096
)

// tlsRefusals indexes the TLS handshakes the receiver refuses for the client's
// certificate (SPEC §3.1). crypto/tls keeps verifying client certificates itself:
// it then sends the alert a client can act on (unknown_ca, certificate_expired,
// certificate_required: doctor on the lab host reads them) and fills the verified
// chains the handlers check, which a VerifyConnection of our own could do neither of
// (it always sends bad_certificate). Its refusals end inside http.Server, which only
// logs a sentence; but a failed handshake's error stays on its *tls.Conn, so
// ConnState reads it back when the connection closes.
//
// A client without a certificate is not refused here: /healthz takes none (SPEC
// §3.1), so its handshake succeeds and the routes that need one refuse it
// (needsClientCert), in their own index line.
type tlsRefusals struct {
	index   *index.Writer
	log     zerolog.Logger
	now     func() time.Time
	refused *prometheus.CounterVec
	limit   *refusalLimiter
}

// newTLSRefusals registers cis490_tls_refused_total in m; now nil means time.Now.
func newTLSRefusals(idx *index.Writer, m *Metrics, log zerolog.Logger, now func() time.Time) *tlsRefusals {
	if now == nil {
		now = time.Now
	}
	r := &tlsRefusals{
		index: idx, log: log, now: now,
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cis490_tls_refused_total",
			Help: "TLS handshakes refused for the client's certificate, by reason (all of them, indexed or not).",
		}, []string{"reason"}),
		limit: newRefusalLimiter(refusalWindow, maxRefusalKeys),
	}
	for _, reason := range []string{refusedUnknownCA, refusedExpired, refusedRevoked, refusedBadUsage, refusedOther} {
		r.refused.WithLabelValues(reason) // shown at 0 before the first refusal
	}
	m.reg.MustRegister(r.refused)
	return r
}

// ConnState is chained into the http.Server's ConnState hook.
func (r *tlsRefusals) ConnState(c net.Conn, st http.ConnState) {
	if st != http.StateClosed {
		return
	}
	tc, ok := c.(*tls.Conn)
	if !ok || tc.ConnectionState().HandshakeComplete {
		return
	}
	// http.Server's own Handshake on this connection has returned by StateClosed, so
	// this one only returns its cached result.
	if err := tc.Handshake(); err != nil {
		r.record(tc.RemoteAddr(), err)
	}
}

func (r *tlsRefusals) record(remote net.Addr, err error) {
	reason, leaf, ok := classifyRefusal(err)
	if !ok {
		return
	}
	r.refused.WithLabelValues(reason).Inc()
	now := r.now()
	switch r.limit.allow(refusalKey{ip: remoteIP(remote), reason: reason}, now) {
	case limitFull:
		r.log.Warn().Str("remote", remote.String()).Str("reason", reason).Int("addresses", maxRefusalKeys).
			Msg("TLS handshakes are refused from too many addresses at once: counted in cis490_tls_refused_total, not indexed, for the next minute")
		return
	case limitHeld, limitFullHeld:
		return
	}
	host := ""
	if leaf != nil {
		host = certName(leaf)
	}
	r.log.Warn().Str("remote", remote.String()).Str("host", host).Str("reason", reason).AnErr("tls", err).
		Msg("refused a TLS handshake (indexed; more of the same from this address within a minute are only counted)")
	if err := r.index.Append(index.Entry{TS: now.UTC(), Host: host, Route: "tls", Remote: remote.String(), Error: reason}); err != nil {
		r.log.Error().Err(err).Msg("could not write the request index: fleet health will not see this refused handshake")
	}
}

// classifyRefusal says why the receiver refused a handshake for the client's
// certificate, and which certificate that was (nil when it named none). ok is false
// for every other failure (a client that does not trust the receiver, one that
// speaks something else or hangs up): those are not the client certificate's fault,
// and http.Server logs them.
func classifyRefusal(err error) (reason string, leaf *x509.Certificate, ok bool) {
	if rev, isRev := errors.AsType[*revokedError](err); isRev {
		return refusedRevoked, rev.leaf, true
	}
	if verr, isVerr := errors.AsType[*tls.CertificateVerificationError](err); isVerr {
		if len(verr.UnverifiedCertificates) > 0 {
			leaf = verr.UnverifiedCertificates[0]
		}
		return verifyReason(verr.Err), leaf, true
	}
	return "", nil, false
}

func verifyReason(err error) string {
	if _, ok := errors.AsType[x509.UnknownAuthorityError](err); ok {
		return refusedUnknownCA
	}
	if invalid, ok := errors.AsType[x509.CertificateInvalidError](err); ok {
		switch invalid.Reason {
		case x509.Expired:
			return refusedExpired
		case x509.IncompatibleUsage:
			return refusedBadUsage
		}
	}
	return refusedOther
}

// certName is the host a certificate names: its CN when that is a host name, else
// its first DNS name that is one, else "".
func certName(cert *x509.Certificate) string {
	for _, name := range append([]string{cert.Subject.CommonName}, cert.DNSNames...) {
		if h, ok := protocol.NormalizeHost(name); ok {
			return h
		}
	}
	return ""
}

// remoteIP is addr without its port: a client's retries come from new ports.
func remoteIP(addr net.Addr) string {
	host, _, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	return host
}

type refusalKey struct{ ip, reason string }

// limitVerdict is what refusalLimiter.allow decided.
type limitVerdict int

const (
	limitAllowed  limitVerdict = iota
	limitHeld                  // one was let through for this key within the window
	limitFull                  // too many keys: the first refusal held back for that in this window
	limitFullHeld              // too many keys, already said
)

// refusalLimiter lets one refusal through per key a window, remembering at most max
// keys.
type refusalLimiter struct {
	window time.Duration
	max    int

	mu       sync.Mutex
	last     map[refusalKey]time.Time
	pruned   time.Time
	fullSaid time.Time
}

func newRefusalLimiter(window time.Duration, max int) *refusalLimiter {
	return &refusalLimiter{window: window, max: max, last: map[refusalKey]time.Time{}}
}

func (l *refusalLimiter) allow(k refusalKey, now time.Time) limitVerdict {
	l.mu.Lock()
	defer l.mu.Unlock()
	if at, ok := l.last[k]; ok && l.within(at, now) {
		return limitHeld
	}
	if len(l.last) >= l.max || !l.within(l.pruned, now) {
		l.prune(now)
	}
	if _, ok := l.last[k]; !ok && len(l.last) >= l.max {
		if l.within(l.fullSaid, now) {
			return limitFullHeld
		}
		l.fullSaid = now
		return limitFull
	}
	l.last[k] = now
	return limitAllowed
}

// within says whether now is less than a window after at. A clock set back counts
// as outside: a refusal must not stay unindexed until the clock catches up.
func (l *refusalLimiter) within(at, now time.Time) bool {
	d := now.Sub(at)
	return d >= 0 && d < l.window
}

func (l *refusalLimiter) prune(now time.Time) {
	for k, at := range l.last {
		if !l.within(at, now) {
			delete(l.last, k)
		}
	}
	l.pruned = now
}

// revokedError is checkRevoked's refusal of a handshake.
type revokedError struct{ leaf *x509.Certificate }

func (e *revokedError) Error() string {
	return "tls: client certificate serial " + ca.SerialString(e.leaf.SerialNumber) + " is revoked"
}

// checkRevoked is the TLS configuration's VerifyConnection when the receiver is the
// lab's CA: a certificate crypto/tls verified is refused when its serial is revoked.
// VerifyConnection, not VerifyPeerCertificate, because it also runs on resumed
// sessions, which would otherwise outlive a revocation. It sends the alert
// bad_certificate; the index line says "revoked".
func checkRevoked(c *ca.CA) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return nil
		}
		if leaf := cs.PeerCertificates[0]; c.Revoked(leaf.SerialNumber) {
			return &revokedError{leaf: leaf}
		}
		return nil
	}
}

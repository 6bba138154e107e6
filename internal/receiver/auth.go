package receiver

import (
	"context"
	"github.com/rs/zerolog/hlog"
	"net/http"
	"strings"

	"github.com/cis490/cis490/internal/ca"
	"github.com/cis490/cis490/internal/protocol"
)

// Roles a caller can have; whoami reports them.
const (
	roleHost  = "host"
	roleAdmin = "admin"
	roleOpen  = "open" // open mode: identity is whatever X-Cis490-Host says
)

// caller is who made a request.
type caller struct {
	Host  string // the host acted as; "" for an admin who named none
	Admin string
	Role  string
}

// canRead reports whether the caller may read host's resources.
func (c caller) canRead(host string) bool {
	return c.Role != roleHost || c.Host == host
}

func (c caller) isAdmin() bool { return c.Role == roleAdmin || c.Role == roleOpen }

type callerKey struct{}

func callerOf(r *http.Request) caller {
	c, _ := r.Context().Value(callerKey{}).(caller)
	return c
}

// authenticated resolves the caller from the bearer token (or, in open mode, from
// X-Cis490-Host) and checks it against the client certificate when mTLS is on.
func (s *Server) authenticated(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := recordOf(r)
		// Like the claimed host below, the stamp is noted before authentication: fleet
		// health reports what code a refused host runs, and a stamped request must not
		// be indexed as unstamped.
		s.stamp(r)
		claimed, ok := claimedHost(r)
		if !ok {
			fail(w, r, http.StatusBadRequest, codeBadRequest,
				"the "+protocol.HeaderHost+" header is not an RFC 1123 host name")
			return
		}
		// Noted before authentication succeeds: a host whose every request is refused
		// must still show up in the index for fleet health.
		rec.Host = claimed
		if s.needsClientCert(r) {
			// Nobody proved who is calling: the claimed host is kept, marked. The line's
			// error is the handshake refusals' reason (SPEC §3.4), which fleet health
			// reads as one: before routes could take no certificate, this host was
			// refused at the handshake.
			rec.Unverified = true
			w.Header().Set("WWW-Authenticate", `Bearer realm="cis490"`)
			fail(w, r, http.StatusUnauthorized, protocol.CodeClientCertRequired,
				"this receiver requires a client certificate (serve.tls.client_ca_file) and the request came without one:"+
					" set receiver.cert_file and receiver.key_file on the lab host to a certificate from the fleet CA that names it")
			rec.Error = refusedNoCertificate
			return
		}
		if serial, revoked := s.revokedCert(r); revoked {
			// The handshake refuses a revoked serial; a connection made before the
			// revocation is refused here, on its next request.
			if host, ok := certHost(r, claimed); ok {
				rec.Host = host
			}
			fail(w, r, http.StatusForbidden, codeForbidden, "the client certificate (serial "+serial+") is revoked:"+
				" `cis490 cert renew` on the host gets a new one, as serve.ca.bootstrap allows")
			return
		}
		c, status, msg := s.identify(r, claimed)
		if status != 0 {
			if status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="cis490"`)
				// Nobody proved who is calling. A fleet certificate does; without
				// one the claimed host is kept, marked, for fleet health to weigh.
				if host, ok := certHost(r, claimed); ok {
					rec.Host = host
				} else {
					rec.Unverified = true
				}
			}
			code := codeUnauthorized
			if status == http.StatusForbidden {
				code = codeForbidden
			}
			fail(w, r, status, code, msg)
			return
		}
		if c.Host != "" {
			rec.Host = c.Host
		}
		if s.ca != nil && c.Role == roleHost && r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
			// A renewal's certificate in use: the one it replaced expires within the
			// hour (once a serial; only this CA's).
			if err := s.ca.Used(r.TLS.VerifiedChains[0][0]); err != nil {
				hlog.FromRequest(r).Warn().Err(err).Msg("could not schedule the revocation of a renewed certificate; retried at its next request")
			}
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, c)))
	})
}

// needsClientCert says whether r must be refused for want of a client certificate:
// with serve.tls.client_ca_file the handshake verifies a certificate when one is
// given (serverTLS) and each route decides whether it needs one.
func (s *Server) needsClientCert(r *http.Request) bool {
	if s.cfg.TLS.ClientCAFile == "" || certOptional(r) {
		return false
	}
	return r.TLS == nil || len(r.TLS.VerifiedChains) == 0
}

// certOptional lists the /v1 routes, by mux pattern, that take no client certificate
// under mTLS (SPEC §3.1); every other /v1 route, wrong method or unknown path needs
// one. /healthz (the Pi's own probe asks it without one) and the fleet page are
// served outside authenticated and never ask. POST /v1/certs/{host}: a host whose
// certificate expired renews it with its token (postCert).
func certOptional(r *http.Request) bool {
	switch r.Pattern {
	case "POST /v1/certs/{host}":
		return true
	}
	return false
}

func claimedHost(r *http.Request) (string, bool) {
	h := r.Header.Get(protocol.HeaderHost)
	if h == "" {
		return "", true
	}
	return protocol.NormalizeHost(h)
}

func (s *Server) identify(r *http.Request, claimed string) (caller, int, string) {
	if s.tokens == nil {
		return caller{Host: claimed, Role: roleOpen}, 0, ""
	}
	token, ok := bearer(r)
	if !ok {
		return caller{}, http.StatusUnauthorized, "no bearer token: send Authorization: Bearer <token> (receiver.token_file on the lab host)"
	}
	id, ok := s.tokens.Lookup(token)
	if !ok {
		return caller{}, http.StatusUnauthorized, "unknown token: mint one with `cis490 token new` on the receiver and put it in receiver.token_file"
	}
	if id.IsAdmin() {
		return caller{Host: claimed, Admin: id.Admin, Role: roleAdmin}, 0, ""
	}
	if claimed != "" && claimed != id.Host {
		recordOf(r).Host = id.Host // the token proves who is calling; the header does not
		return caller{}, http.StatusForbidden, "this token belongs to host " + id.Host + ", not " + claimed
	}
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && !protocol.CertNamesHost(r.TLS.VerifiedChains[0][0], id.Host) {
		return caller{}, http.StatusForbidden, "the client certificate is not issued to host " + id.Host + " (its CN or a DNS name must be the host name)"
	}
	return caller{Host: id.Host, Role: roleHost}, 0, ""
}

func bearer(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// certHost is the host a verified client certificate was issued to: the claimed one
// when the certificate names it (as the token check accepts any of its names), else
// its CN or first DNS name that is a valid host name.
func certHost(r *http.Request, claimed string) (string, bool) {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
		return "", false
	}
	cert := r.TLS.VerifiedChains[0][0]
	if claimed != "" && protocol.CertNamesHost(cert, claimed) {
		return claimed, true
	}
	h := certName(cert)
	return h, h != ""
}

// revokedCert says whether the request's verified client certificate is revoked by
// the receiver's CA (none without data_dir/ca/), and its serial.
func (s *Server) revokedCert(r *http.Request) (string, bool) {
	if s.ca == nil || r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
		return "", false
	}
	leaf := r.TLS.VerifiedChains[0][0]
	return ca.SerialString(leaf.SerialNumber), s.ca.Revoked(leaf.SerialNumber)
}

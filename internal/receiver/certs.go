package receiver

import (
	"errors"
	"io"
	"net/http"

	"github.com/rs/zerolog/hlog"

	"github.com/cis490/cis490/internal/ca"
	"github.com/cis490/cis490/internal/protocol"
)

// postCert is POST /v1/certs/{host} (SPEC §4.6): a host's CSR in, its certificate
// chain out. A renewal comes with the host's valid client certificate and its token,
// a bootstrap with the token alone (the CA's policy decides). Never gated, and it
// takes no client certificate under mTLS (certOptional): a host whose certificate
// expired renews it here. Without data_dir/ca/ there is no CA: 404, as before.
func (s *Server) postCert(w http.ResponseWriter, r *http.Request) {
	rec := recordOf(r)
	host, ok := protocol.NormalizeHost(r.PathValue("host"))
	if !ok {
		fail(w, r, http.StatusBadRequest, codeBadRequest, "the host in the path is not an RFC 1123 host name")
		return
	}
	c := callerOf(r)
	if c.Role == roleAdmin || c.Host != host {
		fail(w, r, http.StatusForbidden, codeForbidden, "a certificate for "+host+" is issued only to "+host+", with its own host token")
		return
	}
	rec.Host = host
	if s.ca == nil {
		fail(w, r, http.StatusNotFound, codeNotFound, "this receiver is not the lab's CA (no ca/ in serve.data_dir): certificates come from whoever runs your CA;"+
			" `cis490 ca init` on the receiver makes it one")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, ca.MaxCSRBytes+1))
	if err != nil {
		fail(w, r, http.StatusBadRequest, codeBadRequest, "reading the CSR: "+err.Error())
		return
	}
	rec.Bytes = int64(len(body))
	req := ca.Request{Host: host, CSR: body, Remote: r.RemoteAddr}
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
		req.Proof = r.TLS.VerifiedChains[0][0] // naming host: identify checked it against the token
	}
	issued, err := s.ca.Issue(req)
	var bad *ca.BadCSR
	var refused *ca.Refused
	switch {
	case errors.As(err, &bad):
		fail(w, r, http.StatusBadRequest, codeBadRequest, bad.Error()+": nothing was issued")
		return
	case errors.As(err, &refused):
		fail(w, r, http.StatusForbidden, codeForbidden, refused.Error())
		return
	case err != nil:
		hlog.FromRequest(r).Error().Err(err).Str("host", host).Msg("could not issue a certificate")
		fail(w, r, http.StatusInternalServerError, codeInternal, "the receiver could not issue the certificate: its log says why")
		return
	}
	hlog.FromRequest(r).Info().Str("host", host).Str("serial", issued.Serial).Str("by", issued.By).
		Time("not_after", issued.NotAfter).Msg("issued a client certificate")
	w.Header().Set("Content-Type", ca.ChainContentType)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(issued.Chain)
}

package receiver

import (
	"fmt"
	"net/http"

	"github.com/cis490/cis490/internal/config"
	"github.com/cis490/cis490/internal/gate"
	"github.com/cis490/cis490/internal/protocol"
)

// stamp records the request's code-commit stamp and the gate's view of it. Every
// route records the stamp; only gated routes act on the decision.
func (s *Server) stamp(r *http.Request) {
	d := s.gate.Check(r.Header.Get(protocol.HeaderCommit))
	rec := recordOf(r)
	rec.Commit, rec.Stamped, rec.Gate = d.Commit, d.Stamped, d
}

// gated refuses requests from code outside the allow-list (SPEC §3.2).
func (s *Server) gated(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d := recordOf(r).Gate
		switch {
		case d.Reason == gate.ReasonMalformed:
			fail(w, r, http.StatusBadRequest, codeBadRequest,
				protocol.HeaderCommit+" must be a commit id of 7 to 40 hex digits")
			return
		case !d.Stamped && s.unstamped == config.UnstampedReject:
			fail(w, r, http.StatusPreconditionRequired, codeCommitRequired,
				"this receiver requires "+protocol.HeaderCommit+": install a release build of cis490 (unstamped builds are refused)")
			return
		case !d.Allowed:
			s.metrics.gateRefused.Inc()
			failWith(w, r, http.StatusUpgradeRequired, protocol.Error{
				Code:   codeCommitNotAllowed,
				Commit: d.Commit,
				Error: fmt.Sprintf("commit %s is not on the receiver's allow-list: update cis490 on this host to an allowed build"+
					" (or add the commit to serve.gate.allowlist_file on the receiver)", d.Commit),
			})
			return
		}
		next.ServeHTTP(w, r)
	})
}

package receiver

import (
	"encoding/json"
	"net/http"

	"github.com/cis490/cis490/internal/protocol"
)

// The error codes, under the short names the handlers use; their values are
// protocol's (SPEC §3.3), which clients compare.
const (
	codeBadRequest       = protocol.CodeBadRequest
	codeUnauthorized     = protocol.CodeUnauthorized
	codeForbidden        = protocol.CodeForbidden
	codeNotFound         = protocol.CodeNotFound
	codeMethodNotAllowed = protocol.CodeMethodNotAllowed
	codeTooLarge         = protocol.CodeTooLarge
	codeDigestMismatch   = protocol.CodeDigestMismatch
	codeCommitNotAllowed = protocol.CodeCommitNotAllowed
	codeCommitRequired   = protocol.CodeCommitRequired
	codeNoSpace          = protocol.CodeNoSpace
	codeShuttingDown     = protocol.CodeShuttingDown
	codeBusy             = protocol.CodeBusy
	codeInternal         = protocol.CodeInternal
)

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// fail answers with a JSON error and notes the message for the index line.
func fail(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	failWith(w, r, status, protocol.Error{Error: msg, Code: code})
}

func failWith(w http.ResponseWriter, r *http.Request, status int, body protocol.Error) {
	recordOf(r).Error = body.Error
	writeJSON(w, status, body)
}

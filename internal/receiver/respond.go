package receiver

import (
	"encoding/json"
	"net/http"
)

// Machine-readable error codes: the "code" of every error body.
const (
	codeBadRequest       = "bad_request"
	codeUnauthorized     = "unauthorized"
	codeForbidden        = "forbidden"
	codeNotFound         = "not_found"
	codeMethodNotAllowed = "method_not_allowed"
	codeTooLarge         = "too_large"
	codeDigestMismatch   = "digest_mismatch"
	codeCommitNotAllowed = "commit_not_allowed"
	codeCommitRequired   = "commit_required"
	codeNoSpace          = "insufficient_storage"
	codeShuttingDown     = "shutting_down"
	codeBusy             = "busy" // a limit of serve.max_uploads*: retry after Retry-After
	codeInternal         = "internal"
)

// apiError is the body of every error answer (SPEC §3.3).
type apiError struct {
	Error  string `json:"error"`
	Code   string `json:"code"`
	Commit string `json:"commit,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// fail answers with a JSON error and notes the message for the index line.
func fail(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	failWith(w, r, status, apiError{Error: msg, Code: code})
}

func failWith(w http.ResponseWriter, r *http.Request, status int, body apiError) {
	recordOf(r).Error = body.Error
	writeJSON(w, status, body)
}

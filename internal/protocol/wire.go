package protocol

import "time"

// WhoAmI is the answer of GET /v1/whoami (SPEC §3.3): how the receiver sees the
// caller. The receiver writes it and doctor reads it to check the token and the commit
// in one call, so both sides share this one declaration.
type WhoAmI struct {
	Host          string    `json:"host"`
	Role          string    `json:"role"`
	Commit        string    `json:"commit"`
	CommitAllowed bool      `json:"commit_allowed"`
	Gate          string    `json:"gate"` // the version gate's reason for CommitAllowed
	ServerTime    time.Time `json:"server_time"`
	Version       string    `json:"version"`
}

// Error is the body of every error answer (SPEC §3.3). Commit is set only with
// CodeCommitNotAllowed: the commit the gate refused.
type Error struct {
	Error  string `json:"error"`
	Code   string `json:"code"`
	Commit string `json:"commit,omitempty"`
}

// Machine-readable error codes: the "code" of every error body. Clients tell answers
// of the same status apart by them, so their values are part of the contract.
const (
	CodeBadRequest       = "bad_request"
	CodeUnauthorized     = "unauthorized"
	CodeForbidden        = "forbidden"
	CodeNotFound         = "not_found"
	CodeMethodNotAllowed = "method_not_allowed"
	CodeTooLarge         = "too_large"
	CodeDigestMismatch   = "digest_mismatch"
	CodeCommitNotAllowed = "commit_not_allowed"
	CodeCommitRequired   = "commit_required"
	CodeNoSpace          = "insufficient_storage"
	CodeShuttingDown     = "shutting_down"
	CodeBusy             = "busy" // a limit of serve.max_uploads*: retry after Retry-After
	CodeInternal         = "internal"
	// CodeClientCertRequired is the error code of the 401 a receiver with
	// serve.tls.client_ca_file answers a request that needs a client certificate and
	// came without one (SPEC §3.1): clients tell it from a refused token by it.
	CodeClientCertRequired = "client_certificate_required"
	// CodeStorageUnavailable: the object store holding episodes (serve.storage) is
	// unreachable or failing; the upload is answered 503 with Retry-After.
	CodeStorageUnavailable = "storage_unavailable"
	// CodeUploadOffsetMismatch is the 409 of a PUT whose Upload-Offset is not the
	// partial's (or which another request is continuing): its Upload-Offset header
	// is where the partial stands; HEAD /v1/episodes/{sha256} and continue from there.
	CodeUploadOffsetMismatch = "upload_offset_mismatch"
)

package client

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"

	"github.com/cis490/cis490/internal/protocol"
)

// APIError is a non-2xx answer from the receiver, with its JSON error body.
type APIError struct {
	Status  int
	Code    string
	Message string
	Commit  string
	URL     string
	// Hint says what to do about it on this host.
	Hint string
}

func (e *APIError) Error() string {
	msg := fmt.Sprintf("%s answered %d", e.URL, e.Status)
	if e.Message != "" {
		msg += ": " + e.Message
	}
	if e.Hint != "" {
		msg += " (" + e.Hint + ")"
	}
	return msg
}

// StatusError reads a non-2xx response into an APIError and closes its body.
func (c *Client) StatusError(res *http.Response) *APIError {
	defer res.Body.Close()
	var body protocol.Error
	raw, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	if json.Unmarshal(raw, &body) != nil {
		body.Error = strings.TrimSpace(string(raw))
	}
	e := &APIError{Status: res.StatusCode, Code: body.Code, Message: body.Error, Commit: body.Commit, URL: res.Request.URL.String()}
	switch {
	case res.StatusCode == http.StatusUnauthorized && e.Code == protocol.CodeClientCertRequired:
		e.Hint = "the receiver requires a client certificate and none was sent: set receiver.cert_file and receiver.key_file to a certificate from the fleet CA naming " + c.host
		if c.cfg.CertFile != "" {
			e.Hint += " (" + c.cfg.CertFile + " was not sent: its issuer is not a CA the receiver asks for)"
		}
	case res.StatusCode == http.StatusUnauthorized:
		e.Hint = "the receiver refused the token: check receiver.token_file"
		if c.cfg.TokenFile != "" {
			e.Hint += " (" + c.cfg.TokenFile + ")"
		}
		e.Hint += "; mint one on the receiver with `cis490 token new --host " + c.host + "`"
	case res.StatusCode == http.StatusForbidden && adminPath(res.Request.URL.Path):
		e.Hint = "that is the maintainer's: point receiver.token_file at an admin token (`cis490 token new --admin WHO` on the receiver)"
	case res.StatusCode == http.StatusForbidden:
		e.Hint = "this host (" + c.host + ") is not allowed to do that: check that host, the token and the client certificate name the same host"
	case res.StatusCode == http.StatusUpgradeRequired:
		commit := c.commit
		if commit == "" {
			commit = "unknown"
		}
		e.Hint = "this build is commit " + commit + ", which the receiver's version gate refuses: update cis490 on this host"
	case res.StatusCode == http.StatusPreconditionRequired:
		e.Hint = "this build carries no commit stamp and the receiver requires one: install a release build of cis490"
	}
	return e
}

// explain turns a transport error into a sentence that says what to check.
func (c *Client) explain(err error, path string) error {
	u := c.base.String() + path
	var unknownAuth x509.UnknownAuthorityError
	var certErr *tls.CertificateVerificationError
	var hostErr x509.HostnameError
	var invalid x509.CertificateInvalidError
	var alert tls.AlertError
	var netErr net.Error
	var pairErr *PairError
	var redirErr *redirectError
	switch {
	case errors.As(err, &redirErr):
		return fmt.Errorf("%s: %w", u, redirErr)
	case errors.As(err, &pairErr):
		return fmt.Errorf("%s: %w: both files must be readable and hold one pair, signed by the fleet CA for %s (they are read again at each new connection)", u, pairErr, c.host)
	case errors.As(err, &hostErr):
		return fmt.Errorf("%s: the receiver's certificate is not for this address (%v): check receiver.url", u, hostErr)
	case errors.As(err, &invalid):
		return fmt.Errorf("%s: the receiver's certificate is invalid (%v): renew it or check this host's clock", u, invalid)
	case errors.As(err, &unknownAuth), errors.As(err, &certErr):
		return fmt.Errorf("%s: the receiver's certificate is not signed by receiver.ca_file (%s): %w", u, orNone(c.cfg.CAFile), err)
	case errors.As(err, &alert), isRemoteTLSAlert(err):
		return fmt.Errorf("%s: the receiver refused the TLS handshake (%w): check receiver.cert_file (%s) — present, signed by the fleet CA, not expired",
			u, err, orNone(c.cfg.CertFile))
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%s: connection refused: is cis490-receiver running there? check receiver.url", u)
	case errors.As(err, &netErr) && netErr.Timeout():
		return fmt.Errorf("%s: no answer within receiver.timeout (%s): check the network and receiver.url", u, c.cfg.Timeout)
	}
	return fmt.Errorf("%s: %w (check receiver.url and the network)", u, err)
}

// isRemoteTLSAlert recognises the receiver turning down our certificate: crypto/tls
// reports it as an unexported alert type ("remote error: tls: …"), so only the text
// tells it apart.
func isRemoteTLSAlert(err error) bool {
	return strings.Contains(err.Error(), "remote error: tls:")
}

func orNone(s string) string {
	if s == "" {
		return "not set"
	}
	return s
}

// adminPath reports whether path is one of the receiver's admin-only reads and
// writes, where a 403 means "not an admin token" rather than "another host's".
func adminPath(path string) bool {
	for _, p := range []string{"/v1/alerts", "/v1/fleet", "/v1/silences"} {
		if path == p || strings.HasPrefix(path, p+"/") {
			return true
		}
	}
	return false
}

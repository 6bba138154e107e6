package client

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// ErrTokenInClear is why the client refused to send a request: its bearer token
// would cross the network unencrypted, over plain http:// to an address that is not
// loopback (SPEC §3.1). Nothing was sent, nothing was dialled.
var ErrTokenInClear = errors.New("refusing to send the token in clear")

// CleartextError is New's refusal of a token over plain http:// to an address that
// is not loopback. Use is the URL to put in receiver.url instead.
type CleartextError struct {
	URL, Use string
}

func (e *CleartextError) Error() string {
	return e.Summary() + " (the receiver serves https with [serve.tls] cert_file and key_file; receiver.ca_file names the CA that signed its certificate)"
}

// Summary is the refusal and the URL to use, without how to set the receiver up.
func (e *CleartextError) Summary() string {
	return fmt.Sprintf("receiver.url is %s and a token is configured: %v; use %s", e.URL, ErrTokenInClear, e.Use)
}

func (e *CleartextError) Unwrap() error { return ErrTokenInClear }

// HTTPSURL is raw with its scheme turned to https (raw itself when it does not parse
// as a URL with a host).
func HTTPSURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return raw
	}
	u.Scheme = "https"
	return u.String()
}

// safeForToken says whether a bearer token may be sent to u: over TLS, or over
// plain HTTP to loopback (127.0.0.0/8, ::1 or the name localhost), which never
// leaves this machine. Other schemes are refused by net/http before anything is
// sent.
func safeForToken(u *url.URL) bool {
	if u.Scheme != "http" {
		return true
	}
	return IsLoopback(u.Hostname())
}

// IsLoopback says whether host (a name or address, without port or brackets) is
// loopback: the name localhost, 127.0.0.0/8 or ::1. Other names are not looked up:
// what they resolve to can change, and a lookup would already be a network request.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// redirectError is a redirect that was not followed because the token would have
// gone with it over plain HTTP to an address that is not loopback.
type redirectError struct{ to string }

func (e *redirectError) Error() string {
	return "redirected to " + e.to + ": not followed, " + ErrTokenInClear.Error() +
		" (a cis490 receiver never redirects: check receiver.url, and any proxy between this host and the receiver)"
}

func (e *redirectError) Unwrap() error { return ErrTokenInClear }

// checkRedirect follows redirects as net/http does (at most 10), except one that
// would carry the token in clear: net/http keeps Authorization on a redirect to the
// same host name whatever the scheme, so https://pi → http://pi would send it
// unencrypted. By the time this runs the headers of the next request are set, so
// Authorization is there exactly when net/http would send it.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	if req.Header.Get("Authorization") != "" && !safeForToken(req.URL) {
		return &redirectError{to: req.URL.String()}
	}
	return nil
}

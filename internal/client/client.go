// Package client is the one transport every lab-host command uses to talk to the
// receiver (SPEC §4.1): TLS with the fleet CA, the client certificate, the bearer
// token, the host name and code-commit stamp on every request, timeouts, and retries
// with exponential backoff and jitter for network errors, 429 and 5xx.
package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/rs/zerolog"

	"github.com/cis490/cis490/internal/buildinfo"
	"github.com/cis490/cis490/internal/config"
	"github.com/cis490/cis490/internal/protocol"
)

// Client talks to the receiver. It is safe for concurrent use.
type Client struct {
	base    *url.URL
	http    *http.Client
	cfg     config.Receiver
	host    string
	token   string
	commit  string
	agent   string
	retries int
	log     zerolog.Logger
	// backoff builds the retry schedule; tests shorten it.
	backoff func() backoff.BackOff
}

// Options adjust a Client beyond what the configuration says.
type Options struct {
	Logger zerolog.Logger
	// Retries is how many times a failed attempt is retried; -1 means the
	// configuration's ship.retries.
	Retries int
	// Commit overrides the build's commit stamp ("" keeps it).
	Commit string
	// MaxBackoff caps the wait between attempts (default 30 s).
	MaxBackoff time.Duration
	// InitialBackoff is the first wait (default 500 ms).
	InitialBackoff time.Duration
}

// New builds the transport from cfg's [receiver] section and host name. It refuses a
// token over plain http:// to an address that is not loopback (SPEC §3.1) before it
// makes anything that could connect: the error is ErrTokenInClear, with the URL to use.
func New(cfg config.Config, opts Options) (*Client, error) {
	rc := cfg.Receiver
	if rc.URL == "" {
		return nil, errors.New("receiver.url is not set: point it at the receiver, e.g. https://pi.lab:8490")
	}
	base, err := url.Parse(strings.TrimRight(rc.URL, "/"))
	if err != nil {
		return nil, fmt.Errorf("receiver.url %q: %w", rc.URL, err)
	}
	token, err := readToken(rc.TokenFile)
	if err != nil {
		return nil, err
	}
	if token != "" && !safeForToken(base) {
		return nil, &CleartextError{URL: rc.URL, Use: HTTPSURL(rc.URL)}
	}
	tlsCfg, err := clientTLS(rc)
	if err != nil {
		return nil, err
	}
	dialer := &net.Dialer{Timeout: rc.Timeout, KeepAlive: 30 * time.Second, Control: giveUpStalled(rc.Timeout)}
	transport := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		TLSClientConfig:       tlsCfg,
		TLSHandshakeTimeout:   rc.Timeout,
		ResponseHeaderTimeout: rc.Timeout, // counted from the end of the request body
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   4,
		ForceAttemptHTTP2:     true,
	}
	c := &Client{
		base:    base,
		http:    &http.Client{Transport: transport, CheckRedirect: checkRedirect},
		cfg:     rc,
		host:    cfg.Host,
		token:   token,
		commit:  buildinfo.Get().Commit,
		agent:   "cis490/" + buildinfo.Get().Version,
		retries: cfg.Ship.Retries,
		log:     opts.Logger,
	}
	if opts.Commit != "" {
		c.commit = opts.Commit
	}
	if opts.Retries >= 0 {
		c.retries = opts.Retries
	}
	initial, maxWait := opts.InitialBackoff, opts.MaxBackoff
	if initial <= 0 {
		initial = 500 * time.Millisecond
	}
	if maxWait <= 0 {
		maxWait = 30 * time.Second
	}
	c.backoff = func() backoff.BackOff {
		b := backoff.NewExponentialBackOff()
		b.InitialInterval, b.MaxInterval, b.RandomizationFactor, b.Multiplier = initial, maxWait, 0.5, 2
		return b
	}
	return c, nil
}

func clientTLS(rc config.Receiver) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if rc.CAFile != "" {
		pem, err := os.ReadFile(rc.CAFile)
		if err != nil {
			return nil, fmt.Errorf("receiver.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("receiver.ca_file %s: no PEM certificate in it", rc.CAFile)
		}
		cfg.RootCAs = pool
	}
	if (rc.CertFile == "") != (rc.KeyFile == "") {
		return nil, errors.New("receiver.cert_file and receiver.key_file go together: set both or neither")
	}
	if rc.CertFile != "" {
		// Read once now, so a bad pair is a configuration error at start; then again
		// at each handshake whose files changed (pairSource), so a renewed pair is
		// used by the next connection without a restart.
		src := &pairSource{certFile: rc.CertFile, keyFile: rc.KeyFile}
		if _, err := src.get(); err != nil {
			return nil, err
		}
		cfg.GetClientCertificate = src.forHandshake
	}
	return cfg, nil
}

func readToken(path string) (string, error) {
	if path == "" {
		return "", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("receiver.token_file: %w", err)
	}
	token := strings.TrimSpace(string(b))
	if token == "" || strings.ContainsAny(token, " \t\r\n") {
		return "", fmt.Errorf("receiver.token_file %s: expected one token (from `cis490 token new --host NAME` on the receiver)", path)
	}
	return token, nil
}

// Host is the fleet name this client acts as.
func (c *Client) Host() string { return c.host }

// Commit is the stamp sent in X-Cis490-Code-Commit ("" when unstamped).
func (c *Client) Commit() string { return c.commit }

// URL is the receiver's base URL.
func (c *Client) URL() string { return c.base.String() }

// Request is one API call. Body, when set, is called once per attempt so a retry
// sends the whole body again (a file is reopened or rewound, never buffered).
type Request struct {
	Method string
	Path   string
	Header http.Header
	Body   func() (io.ReadCloser, int64, error)
	// NoRetry sends the request once (streams that follow the server).
	NoRetry bool
}

// Send makes one attempt at r: no retry, and a transport error as it came (Do and
// Retry say what to check). The caller closes the body.
func (c *Client) Send(ctx context.Context, r Request) (*http.Response, error) {
	var body io.ReadCloser
	var size int64
	if r.Body != nil {
		var err error
		if body, size, err = r.Body(); err != nil {
			return nil, Permanent(err)
		}
		if size == 0 {
			// An empty body with a nil-or-not reader of unknown length would go out
			// chunked; a resumed upload that only lacks its end sends Content-Length: 0.
			body.Close()
			body = http.NoBody
		}
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, c.base.String()+r.Path, body)
	if err != nil {
		if body != nil {
			body.Close()
		}
		return nil, Permanent(err)
	}
	if body != nil {
		req.ContentLength = size
	}
	for k, v := range r.Header {
		req.Header[k] = v
	}
	req.Header.Set("User-Agent", c.agent)
	req.Header.Set(protocol.HeaderHost, c.host)
	if c.commit != "" {
		req.Header.Set(protocol.HeaderCommit, c.commit)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	return c.http.Do(req)
}

// maxRetryAfter caps one wait the receiver asks for: a longer one is honoured as this,
// and the next answer may ask again.
const maxRetryAfter = 5 * time.Minute

// retryAfter is the wait a Retry-After header asks for (RFC 9110 §10.2.3:
// delay-seconds or an HTTP-date), capped at maxRetryAfter. Anything else is 0, and
// the normal backoff applies. A date counts from the answer's own Date when it has
// one, so this host's clock skew does not stretch or cut the wait.
func retryAfter(h http.Header, now time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	var wait time.Duration
	switch {
	case v == "":
		return 0
	case strings.Trim(v, "0123456789") == "":
		secs, err := strconv.ParseInt(v, 10, 64)
		if err != nil || secs > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter // only digits, so err is an overflow: a very long wait
		}
		wait = time.Duration(secs) * time.Second
	default:
		at, err := http.ParseTime(v)
		if err != nil {
			return 0
		}
		if date, err := http.ParseTime(h.Get("Date")); err == nil {
			now = date
		}
		wait = at.Sub(now)
	}
	return min(max(wait, 0), maxRetryAfter)
}

// retryableErr says whether a transport error may go away on its own. Certificate
// problems, bad URLs and a token that would go in clear will not.
func retryableErr(err error) bool {
	if errors.Is(err, ErrTokenInClear) {
		return false
	}
	if retry, isPair := retryablePair(err); isPair {
		return retry
	}
	var certErr *tls.CertificateVerificationError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invalid x509.CertificateInvalidError
	var alert tls.AlertError
	switch {
	case errors.As(err, &certErr), errors.As(err, &unknownAuth), errors.As(err, &hostErr), errors.As(err, &invalid), errors.As(err, &alert),
		isRemoteTLSAlert(err):
		return false
	}
	var urlErr *url.Error
	if errors.As(err, &urlErr) && strings.Contains(urlErr.Err.Error(), "unsupported protocol scheme") {
		return false
	}
	return true
}

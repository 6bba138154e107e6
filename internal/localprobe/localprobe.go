// Package localprobe asks the receiver running on this machine how it is: GET /healthz
// on the listener serve.listen names, over TLS when serve.tls.cert_file is set. Fleet
// health (receiver-down, gate-stale) and doctor's receiver role both ask through it,
// so the two never disagree about whether the receiver is up.
package localprobe

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cis490/cis490/internal/config"
	"github.com/cis490/cis490/internal/protocol"
)

// Timeout bounds one probe: the receiver is on this machine, so anything slower is
// a receiver that does not answer.
const Timeout = 2 * time.Second

// ErrClientCertRequired means the receiver proved itself with serve.tls.cert_file and
// then refused the probe's handshake for want of a client certificate: it is up, but
// its health cannot be read. SPEC §3.1 exempts /healthz from mTLS, and this cis490's
// receiver takes a handshake without a certificate (only its other routes need one);
// a receiver still running an older cis490 asks for one at every handshake.
var ErrClientCertRequired = errors.New("the receiver is up but refuses a TLS handshake without a client certificate, even for /healthz")

// URL is where the local receiver answers: serve.listen (or its default), with an
// address that means "every interface" turned into loopback.
func URL(sc config.Serve) (string, error) {
	addr := sc.ListenAddr()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("serve.listen %q is not host:port: %w", addr, err)
	}
	if port == "0" {
		return "", fmt.Errorf("serve.listen %q has port 0: the receiver takes a new free port at each start, where nothing can find it; set a fixed port", addr)
	}
	switch ip := net.ParseIP(host); {
	case host == "":
		host = "127.0.0.1"
	case ip != nil && ip.IsUnspecified() && ip.To4() != nil:
		host = "127.0.0.1"
	case ip != nil && ip.IsUnspecified():
		host = "::1"
	}
	scheme := "http"
	if sc.TLS.CertFile != "" {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, port), nil
}

// Health asks the local receiver for GET /healthz, within Timeout (or ctx's deadline
// when sooner). A receiver shutting down answers 503: that is reported as a Health
// whose Status is protocol.HealthDraining, not as an error. Errors say what to check.
func Health(ctx context.Context, sc config.Serve) (*protocol.Health, error) {
	base, err := URL(sc)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	var proved atomic.Bool // the server showed serve.tls.cert_file
	tr := &http.Transport{Proxy: nil, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	if sc.TLS.CertFile != "" {
		if tr.TLSClientConfig, err = pinned(sc.TLS.CertFile, &proved); err != nil {
			return nil, err
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/healthz", nil)
	if err != nil {
		return nil, err
	}
	res, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return nil, explain(err, base, sc, proved.Load())
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	if err != nil {
		return nil, fmt.Errorf("%s/healthz: the answer was cut off: %w", base, err)
	}
	if res.StatusCode == http.StatusServiceUnavailable && errorCode(body) == protocol.CodeShuttingDown {
		return &protocol.Health{Status: protocol.HealthDraining}, nil
	}
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s/healthz answered %d %s: read `journalctl -u cis490-receiver`", base, res.StatusCode, strings.TrimSpace(string(body)))
	}
	var h protocol.Health
	if err := json.Unmarshal(body, &h); err != nil || h.Status == "" {
		return nil, fmt.Errorf("%s/healthz answered %q, not a cis490 receiver's health: another program holds serve.listen, or the receiver runs an older cis490 (restart it: `systemctl restart cis490-receiver`)",
			base, truncate(strings.TrimSpace(string(body)), 80))
	}
	return &h, nil
}

// pinned trusts exactly the certificate in certFile: the probe asks "is the thing on
// that port our receiver?", which no CA can answer for a certificate issued to the
// Pi's name rather than to loopback.
func pinned(certFile string, proved *atomic.Bool) (*tls.Config, error) {
	data, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("serve.tls.cert_file: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("serve.tls.cert_file %s: no PEM certificate in it", certFile)
	}
	want := block.Bytes
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		// Chain and name checks are replaced by the pin, in VerifyConnection.
		InsecureSkipVerify: true, //nolint:gosec
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 || !bytes.Equal(cs.PeerCertificates[0].Raw, want) {
				return errNotPinned
			}
			proved.Store(true)
			return nil
		},
	}, nil
}

var errNotPinned = errors.New("the server's certificate is not the one in serve.tls.cert_file")

func explain(err error, base string, sc config.Serve, proved bool) error {
	var netErr net.Error
	switch {
	case errors.Is(err, errNotPinned):
		return fmt.Errorf("%s presents a certificate other than serve.tls.cert_file (%s): another program holds the port, or the receiver still serves the certificate it loaded at start (restart it: `systemctl restart cis490-receiver`)",
			base, sc.TLS.CertFile)
	case proved && strings.Contains(err.Error(), "remote error: tls:"):
		return fmt.Errorf("%s: %w (%v; serve.tls.client_ca_file is set)", base, ErrClientCertRequired, err)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%s: connection refused: the receiver is not running on serve.listen (%s): `systemctl status cis490-receiver`", base, sc.ListenAddr())
	case errors.As(err, &netErr) && netErr.Timeout():
		return fmt.Errorf("%s/healthz: no answer within %s: the receiver is hung or overloaded: `systemctl status cis490-receiver`", base, Timeout)
	}
	return fmt.Errorf("%s/healthz: %w: `systemctl status cis490-receiver`", base, err)
}

func errorCode(body []byte) string {
	var e protocol.Error
	_ = json.Unmarshal(body, &e)
	return e.Code
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

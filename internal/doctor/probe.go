package doctor

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/cis490/cis490/internal/client"
	"github.com/cis490/cis490/internal/config"
	"github.com/cis490/cis490/internal/protocol"
)

// probe asks the receiver each question once, through the one transport, and shares
// the answers: four checks look at the receiver but it sees two requests per run.
type probe struct {
	cfg     config.Config
	now     func() time.Time
	c       *client.Client
	err     error // the transport could not be built (a missing token or certificate file)
	healthz func() answer
	whoami  func() answer
}

// answer is what came back from one request, or why nothing did.
type answer struct {
	err     error // no HTTP answer at all
	status  int
	header  http.Header
	tls     *tls.ConnectionState
	sent    time.Time
	latency time.Duration
	body    []byte
	apiErr  *client.APIError // set for a non-2xx answer
}

func newProbe(ctx context.Context, cfg config.Config, now func() time.Time, log zerolog.Logger) *probe {
	// No retries: doctor reports what is wrong now, within its own deadline; backing
	// off would only turn "connection refused" into "did not finish".
	c, err := client.New(cfg, client.Options{Retries: 0, Logger: log})
	p := &probe{cfg: cfg, now: now, c: c, err: err}
	p.healthz = sync.OnceValue(func() answer { return p.get(ctx, "/healthz") })
	p.whoami = sync.OnceValue(func() answer { return p.get(ctx, "/v1/whoami") })
	return p
}

func (p *probe) get(ctx context.Context, path string) answer {
	if p.err != nil {
		return answer{err: p.err}
	}
	a := answer{sent: time.Now()}
	res, err := p.c.Do(ctx, client.Request{Method: http.MethodGet, Path: path, NoRetry: true})
	a.latency = time.Since(a.sent)
	if err != nil {
		a.err = err
		return a
	}
	a.status, a.header, a.tls = res.StatusCode, res.Header, res.TLS
	if res.StatusCode/100 != 2 {
		a.apiErr = p.c.StatusError(res)
		return a
	}
	defer res.Body.Close()
	a.body, a.err = io.ReadAll(io.LimitReader(res.Body, 64<<10))
	return a
}

// plainToTLS says whether this was net/http's stock answer to plain HTTP sent to a
// TLS port: receiver.url says http:// but the receiver serves HTTPS.
func (a answer) plainToTLS() bool {
	return a.status == http.StatusBadRequest && a.apiErr != nil &&
		strings.Contains(a.apiErr.Message, "HTTP request to an HTTPS server")
}

// wrongScheme says whether the receiver turned away plain HTTP because it speaks
// HTTPS; the checks that judge its answers are skipped: receiver-reachable explains.
func (p *probe) wrongScheme() bool {
	return p.err == nil && (p.whoami().plainToTLS() || p.healthz().plainToTLS())
}

// httpsURL is raw with its scheme turned to https.
func httpsURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "https://…"
	}
	u.Scheme = "https"
	return u.String()
}

// unreachable says whether the receiver gave no answer at all, in which case the
// checks that judge its answers are skipped: receiver-reachable already failed.
// whoami is asked first so that, on a healthy receiver, the whoami checks need not
// wait for receiver-reachable's request.
func (p *probe) unreachable() bool {
	return p.err != nil || p.whoami().err != nil && p.healthz().err != nil
}

// identity is whoami's parsed answer, or the check to report when there is none.
func (p *probe) identity() (protocol.WhoAmI, *Check) {
	var w protocol.WhoAmI
	if p.unreachable() {
		c := skipped("not checked: the receiver cannot be reached (see receiver-reachable)")
		return w, &c
	}
	if p.wrongScheme() {
		c := skipped(wrongSchemeSkip)
		return w, &c
	}
	a := p.whoami()
	if a.err != nil || a.apiErr != nil {
		c := skipped("not checked: GET /v1/whoami failed (see token)")
		return w, &c
	}
	if err := json.Unmarshal(a.body, &w); err != nil {
		c := skipped("not checked: the answer to GET /v1/whoami is not JSON (see token)")
		return w, &c
	}
	return w, nil
}

func isLoopbackURL(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	if u.Hostname() == "localhost" {
		return true
	}
	ip := net.ParseIP(u.Hostname())
	return ip != nil && ip.IsLoopback()
}

// tlsAlert is the TLS alert the receiver sent, or nil: with mTLS that is how it
// refuses a missing, expired or foreign client certificate.
func tlsAlert(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "remote error" {
		return op.Err
	}
	return nil
}

func untrustedServer(err error) bool {
	var verr *tls.CertificateVerificationError
	return errors.As(err, &verr)
}

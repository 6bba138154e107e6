package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/ca"
	"github.com/cis490/cis490/internal/fleethealth"
	"github.com/cis490/cis490/internal/index"
)

// piCA is a real `cis490 serve` made the lab's CA by `cis490 ca init`, with mTLS on
// and a token for each host.
type piCA struct {
	dir, cfg, data string
	env            []string // for the Pi's commands; serve gets it with the clock offset
	srv            *Server
	addr           string
	tokens         map[string]string
}

func startPiCA(t *testing.T, hosts ...string) *piCA {
	t.Helper()
	dir := t.TempDir()
	p := &piCA{dir: dir, cfg: filepath.Join(dir, "lab-host.toml"), data: filepath.Join(dir, "data"), env: Env(t), tokens: map[string]string{}}
	toml := fmt.Sprintf("host = \"pi\"\n[serve]\nlisten = \"127.0.0.1:0\"\ndata_dir = %q\ntokens_file = %q\n[fleet_health]\nsyslog = false\n",
		p.data, filepath.Join(dir, "tokens.toml"))
	require.NoError(t, os.WriteFile(p.cfg, []byte(toml), 0o600))
	res := p.cis490(t, "ca", "init", "--name", "localhost", "--name", "127.0.0.1")
	require.Equal(t, 0, res.Code, res.Stderr)
	server, caPEM := filepath.Join(p.data, "ca", "server.pem"), filepath.Join(p.data, "ca", "ca.pem")
	for _, line := range []string{fmt.Sprintf("cert_file = %q", server), fmt.Sprintf("key_file = %q", server), fmt.Sprintf("client_ca_file = %q", caPEM)} {
		require.Contains(t, res.Stdout, line, "ca init prints the [serve.tls] to set")
	}
	toml += fmt.Sprintf("[serve.tls]\ncert_file = %q\nkey_file = %q\nclient_ca_file = %q\n", server, server, caPEM)
	require.NoError(t, os.WriteFile(p.cfg, []byte(toml), 0o600))
	for _, h := range hosts {
		res := p.cis490(t, "token", "new", "--host", h)
		require.Equal(t, 0, res.Code, res.Stderr)
		p.tokens[h] = strings.TrimSpace(res.Stdout)
	}
	p.start(t, "")
	return p
}

// start runs the receiver, on the port of its first start when restarted, with its
// CA's clock moved by offset (ca.EnvClockOffset) when not "".
func (p *piCA) start(t *testing.T, offset string) {
	t.Helper()
	env := p.env
	if offset != "" {
		env = append(append([]string{}, env...), ca.EnvClockOffset+"="+offset)
	}
	args := []string{"--config", p.cfg}
	if p.addr != "" {
		args = append(args, "--listen", p.addr)
	}
	p.srv = StartServe(t, bin, env, "https", args...)
	p.addr = p.srv.Addr
}

func (p *piCA) restart(t *testing.T, offset string) {
	t.Helper()
	require.Equal(t, 0, p.srv.Stop(t))
	p.start(t, offset)
}

func (p *piCA) cis490(t *testing.T, args ...string) Result {
	t.Helper()
	return Run(t, bin, p.env, nil, append([]string{"--config", p.cfg}, args...)...)
}

// host is a lab host of this Pi: its token, the CA, and its pair at certFile and
// keyFile (relative to its folder; one file for both is fine).
func (p *piCA) host(t *testing.T, name, certFile, keyFile string) *drHost {
	t.Helper()
	h := newDrHost(t, name, p.srv.URL).withToken(t, p.tokens[name])
	h.receiver["ca_file"] = filepath.Join(p.data, "ca", "ca.pem")
	h.receiver["cert_file"], h.receiver["key_file"] = filepath.Join(h.dir, certFile), filepath.Join(h.dir, keyFile)
	h.write(t)
	return h
}

func (h *drHost) run(t *testing.T, args ...string) Result {
	t.Helper()
	h.write(t)
	return Run(t, bin, h.env, nil, append([]string{"--config", h.cfg}, args...)...)
}

// shipOne drops one episode and ships it.
func (h *drHost) shipOne(t *testing.T, name string) Result {
	t.Helper()
	require.NoError(t, os.WriteFile(filepath.Join(h.spool, "outbox", name), []byte(h.name+" "+name+" "+time.Now().String()), 0o640))
	return h.run(t, "ship")
}

func (h *drHost) serial(t *testing.T) string {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(h.receiver["cert_file"], h.receiver["key_file"])
	require.NoError(t, err, "the pair at %s, %s", h.receiver["cert_file"], h.receiver["key_file"])
	return ca.SerialString(pair.Leaf.SerialNumber)
}

func (p *piCA) line(t *testing.T, match func(index.Entry) bool) index.Entry {
	t.Helper()
	var found index.Entry
	require.Eventually(t, func() bool {
		for _, e := range receiverIndex(t, p.data) {
			if match(e) {
				found = e
				return true
			}
		}
		return false
	}, 10*time.Second, 20*time.Millisecond, "no such index line:\n%s", p.srv.Logs())
	return found
}

func stored(t *testing.T, data, host string) int {
	t.Helper()
	n := 0
	for _, name := range names(t, filepath.Join(data, "episodes", host)) {
		if !strings.HasSuffix(name, ".json") {
			n++
		}
	}
	return n
}

// The Pi as the lab's CA, end to end with the real binary and real TLS: ca init; a
// lab host bootstraps with its token, ships over mTLS with the certificate, renews
// with it; the old serial works for the hour after, then stops (the receiver's CA
// clock moved on an hour); a revoked host is refused at the handshake and fleet-health
// reports it tls-refused; a host whose certificate expired renews by bootstrap and
// ships again.
func TestLabCA(t *testing.T) {
	t.Parallel()
	p := startPiCA(t, "lab-07", "lab-08", "lab-09")

	lab07 := p.host(t, "lab-07", "client.pem", "client.pem")
	res := lab07.run(t, "cert", "renew")
	require.Equal(t, 0, res.Code, res.Stderr)
	assert.Contains(t, res.Stdout, "by bootstrap")
	p.line(t, func(e index.Entry) bool { return e.Route == "certs" && e.Host == "lab-07" && e.Status == 200 })
	res = lab07.shipOne(t, "ep1.tar")
	require.Equal(t, 0, res.Code, res.Stderr)
	ep := p.line(t, func(e index.Entry) bool { return e.Route == "episodes" && e.Host == "lab-07" && e.Status == 201 })
	assert.False(t, ep.Unverified)
	serialA := lab07.serial(t)

	// Keep pair A aside, as a thief would.
	raw, err := os.ReadFile(lab07.receiver["cert_file"])
	require.NoError(t, err)
	thief := p.host(t, "lab-07", "stolen.pem", "stolen.pem")
	require.NoError(t, os.WriteFile(thief.receiver["cert_file"], raw, 0o600))

	res = lab07.run(t, "cert", "renew", "--force")
	require.Equal(t, 0, res.Code, res.Stderr)
	assert.Contains(t, res.Stdout, "by renewal")
	serialB := lab07.serial(t)
	require.NotEqual(t, serialA, serialB)
	res = lab07.shipOne(t, "ep2.tar")
	require.Equal(t, 0, res.Code, res.Stderr)
	assert.Equal(t, 2, stored(t, p.data, "lab-07"))
	res = thief.run(t, "ship")
	assert.Equal(t, 0, res.Code, "the old serial works for an hour after the renewal: %s", res.Stderr)

	// A revoked host is refused at the handshake, within a second.
	lab08 := p.host(t, "lab-08", "client.pem", "client-key.pem")
	res = lab08.run(t, "cert", "renew")
	require.Equal(t, 0, res.Code, res.Stderr)
	res = lab08.shipOne(t, "ep1.tar")
	require.Equal(t, 0, res.Code, res.Stderr)
	res = p.cis490(t, "cert", "revoke", "--host", "lab-08")
	require.Equal(t, 0, res.Code, res.Stderr)
	assert.Contains(t, res.Stdout, "revoked lab-08's certificate "+lab08.serial(t))
	// The first refusal may be a 403 on a request whose handshake came just before
	// the receiver read revoked.jsonl again; the handshakes after it are refused.
	revokedAt := time.Now()
	var refusedAfter time.Duration
	require.Eventually(t, func() bool {
		res := lab08.run(t, "ship")
		if res.Code != 0 && refusedAfter == 0 {
			refusedAfter = time.Since(revokedAt)
		}
		return res.Code != 0 && strings.Contains(res.Stderr, "bad certificate")
	}, 5*time.Second, 50*time.Millisecond, "refused at the handshake")
	t.Logf("refused %s after the revocation", refusedAfter.Round(time.Millisecond))
	assert.Less(t, refusedAfter, 3*time.Second, "picked up within a second (plus the ship runs that tried)")
	line := p.line(t, func(e index.Entry) bool { return e.Route == "tls" && e.Error == "revoked" && e.Host == "lab-08" })
	assert.Equal(t, 0, line.Status)
	res = p.cis490(t, "fleet-health", "check", "--json")
	require.Equal(t, 0, res.Code, res.Stderr)
	var check fleethealth.Result
	require.NoError(t, json.Unmarshal([]byte(res.Stdout), &check), res.Stdout)
	assert.Contains(t, symptomsByHost(check)["lab-08"], "tls-refused", res.Stdout)
	assert.NotContains(t, symptomsByHost(check)["lab-07"], "tls-refused")
	res = lab08.run(t, "cert", "renew", "--force")
	assert.Equal(t, 1, res.Code, "a revoked host's bootstrap is closed")
	assert.Contains(t, res.Stderr, "`cis490 cert allow-bootstrap lab-08`")

	// A certificate that expired while the host was off: made a month ago by the same CA.
	lab09 := p.host(t, "lab-09", "client.pem", "client.pem")
	writeAgedPair(t, filepath.Join(p.data, "ca"), "lab-09", 800*time.Hour, lab09.receiver["cert_file"])
	res = lab09.shipOne(t, "ep1.tar")
	assert.NotEqual(t, 0, res.Code, "an expired certificate is refused")
	assert.Contains(t, res.Stderr, "expired certificate")
	p.line(t, func(e index.Entry) bool { return e.Route == "tls" && e.Error == "expired" && e.Host == "lab-09" })
	res = lab09.run(t, "cert", "renew")
	require.Equal(t, 0, res.Code, res.Stderr)
	assert.Contains(t, res.Stdout, "renewed (the certificate expired on")
	assert.Contains(t, res.Stdout, "by bootstrap")
	res = lab09.run(t, "ship")
	require.Equal(t, 0, res.Code, res.Stderr)
	assert.Equal(t, 1, stored(t, p.data, "lab-09"), "the episode left behind is shipped")

	// An hour after the renewal (the CA's clock moved on 61 minutes), serial A is
	// refused at the handshake; B works.
	p.restart(t, "61m")
	res = thief.run(t, "ship")
	assert.NotEqual(t, 0, res.Code)
	assert.Contains(t, res.Stderr, "bad certificate")
	p.line(t, func(e index.Entry) bool { return e.Route == "tls" && e.Error == "revoked" && e.Host == "lab-07" })
	res = lab07.shipOne(t, "ep3.tar")
	require.Equal(t, 0, res.Code, res.Stderr)
	assert.Equal(t, 3, stored(t, p.data, "lab-07"))

	res = p.cis490(t, "cert", "list", "--host", "lab-07")
	require.Equal(t, 0, res.Code, res.Stderr)
	assert.Contains(t, res.Stdout, serialA)
	assert.Regexp(t, serialB+`\s+valid\s`, res.Stdout)
}

// writeAgedPair writes at path a certificate and key for host from the CA in dir,
// issued age ago (so a 30-day one has expired when age is over 720h), as if the host
// had been off since.
func writeAgedPair(t *testing.T, dir, host string, age time.Duration, path string) {
	t.Helper()
	authority, err := ca.Open(dir, ca.Options{Now: func() time.Time { return time.Now().Add(-age) }})
	require.NoError(t, err)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	require.NoError(t, err)
	got, err := authority.Issue(ca.Request{Host: host, CSR: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})})
	require.NoError(t, err)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, append(got.Chain, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})...), 0o600))
}

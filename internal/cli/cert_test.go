package cli

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/ca"
	"github.com/cis490/cis490/internal/config"
	"github.com/cis490/cis490/internal/receiver"
	"github.com/cis490/cis490/internal/testpki"
	"github.com/cis490/cis490/internal/tokens"
)

// labCA is a real receiver on loopback that is the lab's CA, with a token for lab-07.
type labCA struct {
	url, dir, caPEM string
	token           string
}

type labCASetup struct {
	bootstrap    string
	foreignCerts bool // client_ca_file is another CA's: what this CA issues is refused at the handshake
}

func startLabCA(t *testing.T, s labCASetup) *labCA {
	t.Helper()
	root := t.TempDir()
	cfg := config.Default()
	cfg.Host = "pi"
	cfg.Serve.Listen = "127.0.0.1:0"
	cfg.Serve.DataDir = filepath.Join(root, "data")
	cfg.Serve.MinFreeBytes = 0
	r := &labCA{dir: filepath.Join(cfg.Serve.DataDir, "ca")}
	_, err := ca.Init(r.dir, ca.InitOptions{Host: "pi", ServerNames: []string{"127.0.0.1", "localhost"}})
	require.NoError(t, err)
	r.caPEM = filepath.Join(r.dir, ca.CertFile)
	cfg.Serve.TokensFile = filepath.Join(root, "tokens.toml")
	r.token, err = tokens.Append(cfg.Serve.TokensFile, tokens.Identity{Host: "lab-07"}, time.Now())
	require.NoError(t, err)
	server := filepath.Join(r.dir, ca.ServerFile)
	cfg.Serve.TLS = config.TLS{CertFile: server, KeyFile: server, ClientCAFile: r.caPEM}
	if s.foreignCerts {
		cfg.Serve.TLS.ClientCAFile = testpki.NewCA(t, "elsewhere").CertPEM
	}
	if s.bootstrap != "" {
		cfg.Serve.CA.Bootstrap = s.bootstrap
	}
	ctx, cancel := context.WithCancel(context.Background())
	addrc, errc := make(chan net.Addr, 1), make(chan error, 1)
	go func() { errc <- receiver.Run(ctx, cfg, zerolog.Nop(), func(a net.Addr) { addrc <- a }) }()
	select {
	case a := <-addrc:
		r.url = "https://" + a.String()
	case err := <-errc:
		cancel()
		require.NoError(t, err)
	}
	t.Cleanup(func() {
		cancel()
		<-errc
	})
	return r
}

// labHost writes lab-07's configuration: its pair at cert and key (one path for both
// is fine), its token, the receiver's CA.
func (r *labCA) labHost(t *testing.T, cert, key string) string {
	t.Helper()
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	require.NoError(t, os.WriteFile(tokenFile, []byte(r.token+"\n"), 0o600))
	path := filepath.Join(dir, "lab-host.toml")
	require.NoError(t, os.WriteFile(path, fmt.Appendf(nil, `host = "lab-07"
[receiver]
url = %q
ca_file = %q
cert_file = %q
key_file = %q
token_file = %q
timeout = "5s"
[ship]
retries = 0
`, r.url, r.caPEM, cert, key, tokenFile), 0o600))
	return path
}

func serialOf(t *testing.T, cert, key string) string {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(cert, key)
	require.NoError(t, err, "%s and %s are a pair", cert, key)
	return ca.SerialString(pair.Leaf.SerialNumber)
}

func TestCertRenewBootstrapsThenRenews(t *testing.T) {
	t.Parallel()
	r := startLabCA(t, labCASetup{})
	pair := filepath.Join(t.TempDir(), "client.pem")
	cfg := r.labHost(t, pair, pair)

	code, out, stderr := runMainWith(t, cfg, "cert", "renew")
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, out, "renewed (no certificate at "+pair+" yet)")
	assert.Contains(t, out, "by bootstrap")
	first := serialOf(t, pair, pair)
	fi, err := os.Stat(pair)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "the file holds the key")

	code, out, _ = runMainWith(t, cfg, "cert", "renew")
	require.Equal(t, 0, code)
	assert.Contains(t, out, "nothing to do: the certificate is valid until")

	code, out, stderr = runMainWith(t, cfg, "cert", "renew", "--force")
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, out, "renewed (--force)")
	assert.Contains(t, out, "by renewal")
	second := serialOf(t, pair, pair)
	assert.NotEqual(t, first, second)
	ledger, err := ca.ReadLedger(r.dir)
	require.NoError(t, err)
	at, ok := ledger.RevokedAt(first)
	require.True(t, ok, "the renewed serial is revoked an hour later")
	assert.WithinDuration(t, time.Now().Add(time.Hour), at, time.Minute)

	// On the Pi: the list, a revocation, the closed bootstrap, allow-bootstrap.
	data := filepath.Dir(r.dir)
	code, out, stderr = runMain(t, "cert", "list", "--data-dir", data, "--host", "lab-07")
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, out, first)
	assert.Contains(t, out, "revoking at ")
	assert.Regexp(t, second+`\s+valid\s`, out)
	code, out, stderr = runMain(t, "cert", "list", "--data-dir", data, "--json")
	require.Equal(t, 0, code, stderr)
	var listed struct {
		Certificates []struct{ Host, Serial, Status, By string }
	}
	require.NoError(t, json.Unmarshal([]byte(out), &listed))
	require.Len(t, listed.Certificates, 3, "the receiver's own, the bootstrap and the renewal")
	assert.Equal(t, "server", listed.Certificates[0].By)

	code, out, stderr = runMain(t, "cert", "revoke", "--data-dir", data, "--serial", strings.ToUpper(second))
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, out, "revoked lab-07's certificate "+second)
	assert.Contains(t, out, "`cis490 cert allow-bootstrap lab-07`")

	// Revoked: the renewal is refused (at the handshake once the receiver has read
	// revoked.jsonl again, else by the CA, which reads it each time), then the
	// bootstrap it falls back to, by the revocation; the revoked pair stays as it is.
	before, err := os.ReadFile(pair)
	require.NoError(t, err)
	code, _, stderr = runMainWith(t, cfg, "cert", "renew", "--force")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "revoked on the receiver (cert revoke")
	assert.Contains(t, stderr, "the old pair is kept")
	after, err := os.ReadFile(pair)
	require.NoError(t, err)
	assert.Equal(t, before, after)

	code, out, stderr = runMain(t, "cert", "allow-bootstrap", "--data-dir", data, "lab-07")
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, out, "lab-07 may get one certificate with its token alone")
	// No --force: the certificate is in its dates, but the receiver refuses it, which
	// is what the timer's run finds out (review finding 2).
	code, out, stderr = runMainWith(t, cfg, "cert", "renew")
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, out, "by bootstrap")
	assert.Contains(t, out, "the receiver refuses the current certificate")
}

func TestCertRenewTwoFiles(t *testing.T) {
	t.Parallel()
	r := startLabCA(t, labCASetup{})
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem")
	cfg := r.labHost(t, cert, key)
	for range 2 {
		code, _, stderr := runMainWith(t, cfg, "cert", "renew", "--force")
		require.Equal(t, 0, code, stderr)
		serialOf(t, cert, key)
	}
	target, err := os.Readlink(key)
	require.NoError(t, err)
	assert.Equal(t, ".client.pem.pairs/current/key.pem", target)
}

// A pair that does not complete a handshake is not kept: here the receiver trusts
// another CA for client certificates, so the new one is never accepted.
func TestCertRenewKeepsTheOldPairWhenTheNewOneFails(t *testing.T) {
	t.Parallel()
	r := startLabCA(t, labCASetup{foreignCerts: true})
	dir := t.TempDir()
	pair := filepath.Join(dir, "client.pem")
	require.NoError(t, os.WriteFile(pair, []byte("the operator's pair, whatever it is"), 0o600))
	cfg := r.labHost(t, pair, pair)
	code, _, stderr := runMainWith(t, cfg, "cert", "renew")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "does not work")
	assert.Contains(t, stderr, "client certificate")
	assert.Contains(t, stderr, "the old pair is kept")
	raw, err := os.ReadFile(pair)
	require.NoError(t, err)
	assert.Equal(t, "the operator's pair, whatever it is", string(raw))
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		assert.True(t, e.Name() == "client.pem" || strings.HasSuffix(e.Name(), ".lock"), "left behind: %s", e.Name())
	}
}

func TestCertRenewRefusedByPolicy(t *testing.T) {
	t.Parallel()
	r := startLabCA(t, labCASetup{bootstrap: config.BootstrapNever})
	pair := filepath.Join(t.TempDir(), "client.pem")
	code, _, stderr := runMainWith(t, r.labHost(t, pair, pair), "cert", "renew")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "serve.ca.bootstrap = never")
	assert.Contains(t, stderr, "`cis490 cert allow-bootstrap lab-07`")
	_, err := os.Stat(pair)
	assert.True(t, os.IsNotExist(err))
}

// An expired certificate is not presented (the handshake would refuse it): the host
// bootstraps on its token, as a host switched off for a semester must.
func TestCertRenewAfterExpiry(t *testing.T) {
	t.Parallel()
	r := startLabCA(t, labCASetup{})
	past, err := ca.Open(r.dir, ca.Options{Now: func() time.Time { return time.Now().Add(-800 * time.Hour) }})
	require.NoError(t, err)
	key, csr := newTestCSR(t, "lab-07")
	old, err := past.Issue(ca.Request{Host: "lab-07", CSR: csr})
	require.NoError(t, err)
	pair := filepath.Join(t.TempDir(), "client.pem")
	require.NoError(t, os.WriteFile(pair, append(old.Chain, key...), 0o600))

	code, out, stderr := runMainWith(t, r.labHost(t, pair, pair), "cert", "renew")
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, out, "renewed (the certificate expired on")
	assert.Contains(t, out, "by bootstrap")
}

func TestCertCommandsUsage(t *testing.T) {
	t.Parallel()
	data := filepath.Join(t.TempDir(), "data")
	code, _, stderr := runMain(t, "cert", "list", "--data-dir", data)
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "no CA in "+filepath.Join(data, "ca")+": this receiver is not the lab's CA (`cis490 ca init`")

	code, _, _ = runMain(t, "ca", "init", "--data-dir", data, "--name", "localhost")
	require.Equal(t, 0, code)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"cert", "revoke"}, "pass exactly one of --host NAME"},
		{[]string{"cert", "revoke", "--host", "lab-07", "--serial", "ab"}, "pass exactly one of --host NAME"},
		{[]string{"cert", "revoke", "--serial", "xyz"}, `--serial "xyz" is not a serial number`},
		{[]string{"cert", "revoke", "--serial", "abcdef"}, "no certificate with that serial"},
		{[]string{"cert", "revoke", "--host", "lab_07"}, "not an RFC 1123 host name"},
		{[]string{"cert", "allow-bootstrap", "lab_07"}, "not an RFC 1123 host name"},
		{[]string{"cert", "allow-bootstrap"}, "accepts 1 arg"},
	} {
		code, _, stderr := runMain(t, append(tc.args, "--data-dir", data)...)
		assert.Equal(t, ExitUsage, code, "%v: %s", tc.args, stderr)
		assert.Contains(t, stderr, tc.want, tc.args)
	}
	ledger, err := ca.ReadLedger(filepath.Join(data, "ca"))
	require.NoError(t, err)
	assert.Empty(t, ledger.Revoked, "bad input changes nothing")
	assert.Empty(t, ledger.Allowed)

	code, _, stderr = runMain(t, "cert", "renew")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "cert renew needs receiver.cert_file and receiver.key_file")
}

// newTestCSR is a new key in PEM and a CSR for cn signed by it.
func newTestCSR(t *testing.T, cn string) (keyPEM, csrPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}}, key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

// The Pi's clock 3 minutes behind: the certificate is valid from 5 minutes before its
// now, so this host (with the right time) uses it at once. Not parallel: the clock
// offset is an environment variable.
func TestCertRenewWithThePiClockBehind(t *testing.T) {
	t.Setenv(ca.EnvClockOffset, "-3m")
	r := startLabCA(t, labCASetup{})
	pair := filepath.Join(t.TempDir(), "client.pem")
	code, out, stderr := runMainWith(t, r.labHost(t, pair, pair), "cert", "renew")
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, out, "by bootstrap")
	p, err := tls.LoadX509KeyPair(pair, pair)
	require.NoError(t, err)
	assert.True(t, p.Leaf.NotBefore.Before(time.Now().Add(-7*time.Minute)), "NotBefore %s", p.Leaf.NotBefore)
}

package systemd

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/e2e"
)

// directives reads a unit file into section → key → values, in order.
func directives(t *testing.T, name string) map[string]map[string][]string {
	t.Helper()
	b, err := Unit(name)
	require.NoError(t, err)
	out := map[string]map[string][]string{}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			section = strings.Trim(line, "[]")
			out[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			require.True(t, ok, "%s: %q", name, line)
			out[section][k] = append(out[section][k], v)
		}
	}
	return out
}

// seconds parses the systemd time spans the units use ("5s", "5min", "1h").
func seconds(t *testing.T, span string) time.Duration {
	t.Helper()
	for suffix, unit := range map[string]time.Duration{"min": time.Minute, "s": time.Second, "h": time.Hour} {
		if n, ok := strings.CutSuffix(span, suffix); ok {
			if v, err := strconv.Atoi(n); err == nil {
				return time.Duration(v) * unit
			}
		}
	}
	t.Fatalf("cannot read the time span %q", span)
	return 0
}

func one(t *testing.T, d map[string]map[string][]string, section, key string) string {
	t.Helper()
	vs := d[section][key]
	require.Len(t, vs, 1, "[%s] %s= is set once", section, key)
	return vs[0]
}

// A receiver that cannot start for a reason only a change of configuration fixes
// must end "failed" (and show in systemctl --failed), not restart every 5 s forever;
// one that crashes for any other reason restarts, but a crash loop must still end.
func TestReceiverStopsRestartingOnAConfigError(t *testing.T) {
	t.Parallel()
	d := directives(t, "cis490-receiver.service")
	assert.Equal(t, "on-failure", one(t, d, "Service", "Restart"))
	assert.Equal(t, []string{"2"}, d["Service"]["RestartPreventExitStatus"], "serve exits 2 for a configuration error")

	restartDelay := seconds(t, one(t, d, "Service", "RestartSec"))
	interval := seconds(t, one(t, d, "Unit", "StartLimitIntervalSec"))
	burst, err := strconv.Atoi(one(t, d, "Unit", "StartLimitBurst"))
	require.NoError(t, err)
	// systemd's default (5 starts in 10 s) never triggers with RestartSec=5s: only
	// two starts fit in the window. The limit must let burst starts fit in it.
	assert.Greater(t, interval, time.Duration(burst)*restartDelay,
		"StartLimitBurst=%d starts %s apart must fit in StartLimitIntervalSec=%s, or a crash loop never ends", burst, restartDelay, interval)
	assert.GreaterOrEqual(t, burst, 3, "a receiver crashing once or twice keeps being restarted")
}

var (
	binDir    string
	buildOnce = sync.OnceValues(func() (string, error) {
		var err error
		if binDir, err = os.MkdirTemp("", "cis490-systemd-test-"); err != nil {
			return "", err
		}
		return e2e.Build(binDir, "")
	})
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// selfSigned writes a certificate and its key, PEM, into dir.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "pi"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"pi"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	kder, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600))
	return certFile, keyFile
}

// Every way the receiver's configuration can be wrong ends the real binary with exit
// status 2, the one RestartPreventExitStatus= names: a status 1 would be restarted
// until the start limit, each time failing the same way.
func TestServeExitsTwoOnEveryConfigError(t *testing.T) {
	t.Parallel()
	bin, err := buildOnce()
	require.NoError(t, err)
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens.toml")
	require.NoError(t, os.WriteFile(tokens, nil, 0o600))
	garbage := filepath.Join(dir, "garbage.toml")
	require.NoError(t, os.WriteFile(garbage, []byte("= = =\n"), 0o600))
	cert, key := selfSigned(t, dir)
	// loopback with tokens: the TLS cases reach the TLS checks.
	withTokens := fmt.Sprintf("[serve]\nlisten = \"127.0.0.1:0\"\ntokens_file = %q\n", tokens)

	for _, tc := range []struct {
		name, config string
		args, env    []string
		says         string
	}{
		{name: "TOML syntax", config: "[serve\n", says: "TOML syntax error"},
		{name: "unknown key", config: "[serve]\nlissten = \"x\"\n", says: "serve.lissten"},
		{name: "bad duration", config: "[serve]\ndrain_timeout = \"forever\"\n", says: "serve.drain_timeout"},
		{name: "limit not positive", config: "[serve]\nmax_uploads = 0\n", says: "serve.max_uploads"},
		{name: "bad log level", config: "[log]\nlevel = \"loud\"\n", says: "log.level"},
		{name: "bad log format", config: "[log]\nformat = \"xml\"\n", says: "log.format"},
		{name: "bad host", config: "host = \"Not_A_Host\"\n", says: "RFC 1123"},
		{name: "bad environment value", env: []string{"CIS490_SERVE_MAX_UPLOADS=abc"}, says: "CIS490_SERVE_MAX_UPLOADS"},
		{name: "missing --config", args: []string{"--config", filepath.Join(dir, "nope.toml")}, says: "nope.toml"},
		{name: "unknown flag", args: []string{"--bogus"}, says: "unknown flag"},
		{name: "open mode off loopback", config: "[serve]\nlisten = \"0.0.0.0:0\"\n", says: "without serve.tokens_file"},
		{name: "tokens file missing", config: "[serve]\ntokens_file = \"/nonexistent/tokens.toml\"\n", says: "serve.tokens_file"},
		{name: "tokens file garbage", config: fmt.Sprintf("[serve]\ntokens_file = %q\n", garbage), says: "serve.tokens_file"},
		{name: "allow-list missing", config: "[serve.gate]\nallowlist_file = \"/nonexistent\"\n", says: "serve.gate.allowlist_file"},
		{name: "git dir missing", config: "[serve.gate]\ngit_dir = \"/nonexistent\"\n", says: "serve.gate.git_dir"},
		{name: "bad unstamped", config: "[serve.gate]\nunstamped = \"maybe\"\n", says: "serve.gate.unstamped"},
		{name: "cert without key", config: "[serve.tls]\ncert_file = \"/x.pem\"\n", says: "go together"},
		{name: "TLS files missing", config: withTokens + "[serve.tls]\ncert_file = \"/nonexistent/c.pem\"\nkey_file = \"/nonexistent/k.pem\"\n", says: "serve.tls cert_file"},
		{name: "client CA not a certificate", config: withTokens + fmt.Sprintf("[serve.tls]\ncert_file = %q\nkey_file = %q\nclient_ca_file = %q\n", cert, key, key), says: "no PEM certificate"},
		{name: "client CA missing", config: withTokens + fmt.Sprintf("[serve.tls]\ncert_file = %q\nkey_file = %q\nclient_ca_file = \"/nonexistent\"\n", cert, key), says: "serve.tls.client_ca_file"},
		{name: "listen port out of range", config: "[serve]\nlisten = \"127.0.0.1:99999\"\n", says: "serve.listen"},
		{name: "listen port unknown", config: "[serve]\nlisten = \"127.0.0.1:no-such-port\"\n", says: "serve.listen"},
		{name: "listen without port", config: fmt.Sprintf("[serve]\nlisten = \"127.0.0.1\"\ntokens_file = %q\n", tokens), says: "serve.listen"},
		{name: "metrics listen malformed", config: "[serve]\nlisten = \"127.0.0.1:0\"\nmetrics_listen = \"nonsense\"\n", says: "serve.metrics_listen"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := e2e.Env(t)
			args := append([]string{"serve"}, tc.args...)
			if tc.config != "" {
				cfg := filepath.Join(t.TempDir(), "lab-host.toml")
				require.NoError(t, os.WriteFile(cfg, []byte(tc.config), 0o600))
				args = append(args, "--config", cfg)
			}
			code, stderr := runBounded(t, bin, append(env, tc.env...), args...)
			assert.Equal(t, 2, code, stderr)
			assert.Contains(t, stderr, tc.says)
		})
	}
}

// runBounded runs the binary and returns its exit status and standard error. A
// receiver that starts instead of refusing is killed after a while, so the test
// fails rather than hangs (the exit status is then not 2).
func runBounded(t *testing.T, bin string, env []string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("run %s %v: %v", bin, args, err)
	}
	return cmd.ProcessState.ExitCode(), stderr.String()
}

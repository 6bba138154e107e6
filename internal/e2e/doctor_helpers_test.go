package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/doctor"
	"github.com/cis490/cis490/internal/testpki"
)

// Helpers for the doctor and health-ship tests: a real receiver with tokens (and
// optionally TLS with client certificates), and a lab host pointing at it.

type drSetup struct {
	hosts, admins []string // a token is minted for each before the receiver starts
	tls           bool     // serve TLS and require client certificates
	allow         []string // allow-list entries; none leaves the gate open
	rejectUnstamp bool
}

type drReceiver struct {
	*Server
	dir, cfg, data string
	env            []string
	ca             *testpki.CA       // nil without TLS
	tokens         map[string]string // host or admin name → token
}

func startDrReceiver(t *testing.T, s drSetup) *drReceiver {
	t.Helper()
	dir := t.TempDir()
	r := &drReceiver{dir: dir, cfg: filepath.Join(dir, "receiver.toml"), data: filepath.Join(dir, "data"), env: Env(t),
		tokens: map[string]string{}}
	toml := fmt.Sprintf("[serve]\nlisten = \"127.0.0.1:0\"\ndata_dir = %q\ntokens_file = %q\n", r.data, filepath.Join(dir, "tokens.toml"))
	scheme := "http"
	if s.tls {
		scheme = "https"
		r.ca = testpki.NewCA(t, "fleet")
		server := r.ca.Server("receiver")
		toml += fmt.Sprintf("[serve.tls]\ncert_file = %q\nkey_file = %q\nclient_ca_file = %q\n", server.CertFile, server.KeyFile, r.ca.CertPEM)
	}
	toml += "[serve.gate]\n"
	if len(s.allow) > 0 {
		allow := filepath.Join(dir, "allowlist")
		require.NoError(t, os.WriteFile(allow, []byte(strings.Join(s.allow, "\n")+"\n"), 0o600))
		toml += fmt.Sprintf("allowlist_file = %q\n", allow)
	}
	if s.rejectUnstamp {
		toml += "unstamped = \"reject\"\n"
	}
	require.NoError(t, os.WriteFile(r.cfg, []byte(toml), 0o600))
	// Minted before the start, not after: the receiver would pick later tokens up
	// within a second, and a test must not race that.
	for flag, names := range map[string][]string{"--host": s.hosts, "--admin": s.admins} {
		for _, name := range names {
			res := Run(t, bin, r.env, nil, "--config", r.cfg, "token", "new", flag, name)
			require.Equal(t, 0, res.Code, res.Stderr)
			r.tokens[name] = strings.TrimSpace(res.Stdout)
		}
	}
	r.Server = StartServe(t, bin, r.env, scheme, "--config", r.cfg)
	return r
}

// drHost is a lab host's configuration, token and spool in a temp folder.
type drHost struct {
	name, dir, cfg, spool string
	env                   []string
	receiver              map[string]string // [receiver] keys
	extra                 string            // more TOML, appended
}

func newDrHost(t *testing.T, name, url string) *drHost {
	t.Helper()
	dir := t.TempDir()
	h := &drHost{name: name, dir: dir, cfg: filepath.Join(dir, "lab-host.toml"), spool: filepath.Join(dir, "spool"),
		env: Env(t), receiver: map[string]string{"url": url, "timeout": "5s"}}
	for _, sub := range []string{"outbox", "sent", "rejected"} {
		require.NoError(t, os.MkdirAll(filepath.Join(h.spool, sub), 0o750))
	}
	return h
}

// withToken stores token in the host's token file.
func (h *drHost) withToken(t *testing.T, token string) *drHost {
	t.Helper()
	path := filepath.Join(h.dir, h.name+".token")
	require.NoError(t, os.WriteFile(path, []byte(token+"\n"), 0o600))
	h.receiver["token_file"] = path
	return h
}

// withTLS trusts the receiver's CA and presents pair as the client certificate.
func (h *drHost) withTLS(ca *testpki.CA, pair *testpki.Pair) *drHost {
	h.receiver["ca_file"] = ca.CertPEM
	if pair != nil {
		h.receiver["cert_file"], h.receiver["key_file"] = pair.CertFile, pair.KeyFile
	}
	return h
}

func (h *drHost) write(t *testing.T) {
	t.Helper()
	keys := make([]string, 0, len(h.receiver))
	for k := range h.receiver {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	fmt.Fprintf(&b, "host = %q\n[receiver]\n", h.name)
	for _, k := range keys {
		fmt.Fprintf(&b, "%s = %q\n", k, h.receiver[k])
	}
	fmt.Fprintf(&b, "[ship]\nspool_dir = %q\nretries = 1\n%s", h.spool, h.extra)
	if !strings.Contains(h.extra, "[doctor]") {
		b.WriteString("[doctor]\ntimeout = \"5s\"\n")
	}
	require.NoError(t, os.WriteFile(h.cfg, []byte(b.String()), 0o600))
}

// doctor runs `doctor --json ARGS` with binary and parses the report.
func (h *drHost) doctor(t *testing.T, binary string, args ...string) (Result, doctor.Report, map[string]doctor.Check) {
	t.Helper()
	h.write(t)
	res := Run(t, binary, h.env, nil, append([]string{"--config", h.cfg, "doctor", "--json"}, args...)...)
	var report doctor.Report
	require.NoError(t, json.Unmarshal([]byte(res.Stdout), &report), "stdout: %s\nstderr: %s", res.Stdout, res.Stderr)
	byID := map[string]doctor.Check{}
	for _, c := range report.Checks {
		byID[c.ID] = c
	}
	return res, report, byID
}

// unusedAddr is an address nothing listens on. Port 1 (tcpmux) is privileged and
// unused here, so unlike a freed ephemeral port no parallel test can take it.
func unusedAddr(t *testing.T) string {
	t.Helper()
	const addr = "127.0.0.1:1"
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Skipf("something listens on %s on this machine", addr)
	}
	return addr
}

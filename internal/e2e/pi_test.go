package e2e

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/doctor"
	"github.com/cis490/cis490/internal/protocol"
	"github.com/cis490/cis490/internal/testpki"
)

// The Pi watches itself: `cis490 doctor` and `cis490 health ship` on a machine whose
// configuration is a receiver's run the receiver's checks against the real
// `cis490 serve` beside them, over TLS.

// piSetup is a receiver's lab-host.toml ([serve] keys, no [receiver] keys) on a fixed
// loopback port: the probe finds the receiver through serve.listen, as on a Pi.
type piSetup struct {
	dir, cfg, data, allowlist string
	env                       []string
	ca                        *testpki.CA
	admin                     string // an admin token
	bin                       string // the cis490 that serves and checks
}

func newPi(t *testing.T, allowlist string) *piSetup {
	t.Helper()
	dir := t.TempDir()
	p := &piSetup{dir: dir, cfg: filepath.Join(dir, "lab-host.toml"), data: filepath.Join(dir, "data"),
		allowlist: filepath.Join(dir, "allowlist"), env: Env(t), ca: testpki.NewCA(t, "fleet"), bin: bin}
	require.NoError(t, os.WriteFile(p.allowlist, []byte(allowlist), 0o600))
	server := p.ca.Server("receiver")
	toml := fmt.Sprintf(`host = "pi"
[serve]
listen = %q
data_dir = %q
tokens_file = %q
min_free_bytes = "1MiB"
[serve.tls]
cert_file = %q
key_file = %q
[serve.gate]
allowlist_file = %q
[fleet_health]
syslog = false
[doctor]
timeout = "8s"
`, freeAddr(t), p.data, filepath.Join(dir, "tokens.toml"), server.CertFile, server.KeyFile, p.allowlist)
	require.NoError(t, os.WriteFile(p.cfg, []byte(toml), 0o600))
	res := p.run(t, "token", "new", "--admin", "ops")
	require.Equal(t, 0, res.Code, res.Stderr)
	p.admin = strings.TrimSpace(res.Stdout)
	return p
}

// freeAddr is a loopback port free a moment ago: serve.listen must be fixed for the
// probe to find it.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

func (p *piSetup) run(t *testing.T, args ...string) Result {
	t.Helper()
	return Run(t, p.bin, p.env, nil, append([]string{"--config", p.cfg}, args...)...)
}

func (p *piSetup) serve(t *testing.T) *Server {
	t.Helper()
	return StartServe(t, p.bin, p.env, "https", "--config", p.cfg)
}

func (p *piSetup) doctor(t *testing.T, args ...string) (Result, doctor.Report, map[string]doctor.Check) {
	t.Helper()
	res := p.run(t, append([]string{"doctor", "--json"}, args...)...)
	var report doctor.Report
	require.NoError(t, json.Unmarshal([]byte(res.Stdout), &report), "stdout: %s\nstderr: %s", res.Stdout, res.Stderr)
	byID := map[string]doctor.Check{}
	for _, c := range report.Checks {
		byID[c.ID] = c
	}
	return res, report, byID
}

func piStatuses(checks map[string]doctor.Check) map[string]doctor.Status {
	out := map[string]doctor.Status{}
	for id, c := range checks {
		out[id] = c.Status
	}
	return out
}

const piCommit = "abcdef1234567890abcdef1234567890abcdef12"

func TestPiDoctorAgainstItsReceiver(t *testing.T) {
	t.Parallel()
	p := newPi(t, piCommit+"\n")
	// A release build, stamped with its commit, so that version is ok too.
	stamped, err := Build(t.TempDir(), piCommit)
	require.NoError(t, err)
	p.bin = stamped
	srv := p.serve(t)

	// Before fleet health ever ran, nobody watches the fleet: that alone fails.
	res, report, checks := p.doctor(t)
	assert.Equal(t, 1, res.Code, res.Stderr)
	assert.Equal(t, "pi", report.Host)
	assert.Equal(t, doctor.Fail, checks["fleet-health-timer"].Status)
	assert.Contains(t, checks["fleet-health-timer"].Summary, "has never run here")
	assert.Contains(t, res.Stderr, "not ok: fleet-health-timer")

	fh := p.run(t, "fleet-health", "check")
	require.Equal(t, 0, fh.Code, fh.Stderr)

	res, report, checks = p.doctor(t)
	assert.Equal(t, 0, res.Code, "stdout: %s\nstderr: %s", res.Stdout, res.Stderr)
	assert.Equal(t, map[string]doctor.Status{
		"config": doctor.OK, "host-name": doctor.OK,
		"receiver-service": doctor.Skip, // no systemd here
		"receiver-healthz": doctor.OK, "data-dir": doctor.OK, "data-disk": doctor.OK, "storage": doctor.Skip, "gate-sources": doctor.OK,
		"server-cert": doctor.Warn, // the test CA's server certificates last a day
		"client-ca":   doctor.Skip, "tokens-file": doctor.OK, "fleet-health-timer": doctor.OK, "version": doctor.OK,
	}, piStatuses(checks), "%s", res.Stdout)
	assert.Equal(t, doctor.Warn, report.Status)
	assert.Contains(t, checks["receiver-healthz"].Summary, "https://"+srv.Addr+" answered: ok")
	assert.Contains(t, checks["gate-sources"].Summary, "allowlist_file refreshed")
	assert.Contains(t, checks["tokens-file"].Summary, "holds 1 token(s)")
	assert.Contains(t, checks["fleet-health-timer"].Summary, "fleet-health check last ran")

	// --role lab-host runs the lab host's checks on the same machine.
	_, _, labChecks := p.doctor(t, "--role", "lab-host")
	assert.Contains(t, labChecks, "receiver-reachable")
	assert.NotContains(t, labChecks, "receiver-healthz")

	// The receiver stopped: /healthz fails, and the gate cannot be judged.
	require.Equal(t, 0, srv.Stop(t))
	res, _, checks = p.doctor(t)
	assert.Equal(t, 1, res.Code)
	assert.Equal(t, doctor.Fail, checks["receiver-healthz"].Status)
	assert.Contains(t, checks["receiver-healthz"].Summary, "connection refused")
	assert.Equal(t, doctor.Skip, checks["gate-sources"].Status)
}

// A gate source that never loaded is seen through the real /healthz, which says so
// without its path or its error.
func TestPiDoctorSeesAGateSourceThatNeverLoaded(t *testing.T) {
	t.Parallel()
	p := newPi(t, "not-a-commit\n")
	srv := p.serve(t)

	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.ca.Pool()}}}
	res, err := client.Get(srv.URL + "/healthz")
	require.NoError(t, err)
	var h protocol.Health
	require.NoError(t, json.NewDecoder(res.Body).Decode(&h))
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Len(t, h.Gate, 1)
	assert.Equal(t, protocol.GateSource{Name: protocol.GateSourceAllowlistFile, FailingSince: h.Gate[0].FailingSince}, h.Gate[0])
	assert.False(t, h.Gate[0].FailingSince.IsZero())

	_, report, checks := p.doctor(t)
	assert.Equal(t, doctor.Fail, report.Status)
	assert.Equal(t, doctor.Fail, checks["gate-sources"].Status)
	assert.Contains(t, checks["gate-sources"].Summary, "allowlist_file never loaded")
	assert.Contains(t, checks["gate-sources"].Hint, "journalctl -u cis490-receiver")
}

// health ship on the Pi files the receiver's report as its own host-health/<host>.json,
// which the receiver then serves like any host's.
func TestPiHealthShipStoresItsOwnReport(t *testing.T) {
	t.Parallel()
	p := newPi(t, piCommit+"\n")
	srv := p.serve(t)

	res := p.run(t, "health", "ship")
	require.Equal(t, 0, res.Code, res.Stderr)
	assert.Contains(t, res.Stderr, "health report stored")
	raw, err := os.ReadFile(filepath.Join(p.data, "host-health", "pi.json"))
	require.NoError(t, err)
	var stored map[string]any
	require.NoError(t, json.Unmarshal(raw, &stored))
	assert.Equal(t, doctor.Schema, stored["schema"])
	assert.Equal(t, "pi", stored["host"])
	assert.Equal(t, "fail", stored["status"], "fleet health has not run yet")
	assert.NotEmpty(t, stored["received_at"])
	leftovers, err := os.ReadDir(filepath.Join(p.data, "tmp"))
	require.NoError(t, err)
	assert.Empty(t, leftovers, "written whole: nothing left in tmp/")

	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.ca.Pool()}}}
	req, err := http.NewRequest(http.MethodGet, srv.URL+"/v1/host-health/pi", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+p.admin)
	got, err := client.Do(req)
	require.NoError(t, err)
	defer got.Body.Close()
	assert.Equal(t, http.StatusOK, got.StatusCode)
	var served map[string]any
	require.NoError(t, json.NewDecoder(got.Body).Decode(&served))
	assert.Equal(t, stored["generated_at"], served["generated_at"])
}

// On a Pi with mTLS (serve.tls.client_ca_file), the Pi's own probe asks /healthz
// without a client certificate, which SPEC §3.1 exempts: doctor and fleet health read
// the receiver's health and gate as without mTLS.
func TestPiDoctorAgainstItsMTLSReceiver(t *testing.T) {
	t.Parallel()
	p := newPi(t, piCommit+"\n")
	raw, err := os.ReadFile(p.cfg)
	require.NoError(t, err)
	withCA := strings.Replace(string(raw), "[serve.gate]", fmt.Sprintf("client_ca_file = %q\n[serve.gate]", p.ca.CertPEM), 1)
	require.NoError(t, os.WriteFile(p.cfg, []byte(withCA), 0o600))
	srv := p.serve(t)

	fh := p.run(t, "fleet-health", "check")
	require.Equal(t, 0, fh.Code, fh.Stderr)
	alerts, err := os.ReadFile(filepath.Join(p.data, "alerts.jsonl"))
	if err == nil {
		assert.NotContains(t, string(alerts), "receiver-down")
		assert.NotContains(t, string(alerts), "gate-stale")
	}

	_, _, checks := p.doctor(t)
	hz := checks["receiver-healthz"]
	assert.Equal(t, doctor.OK, hz.Status, hz.Summary)
	assert.Contains(t, hz.Summary, "https://"+srv.Addr+" answered: ok")
	assert.Equal(t, doctor.OK, checks["gate-sources"].Status, checks["gate-sources"].Summary)
	assert.Contains(t, checks["gate-sources"].Summary, "allowlist_file refreshed")
	assert.NotEqual(t, doctor.Skip, checks["client-ca"].Status, "mTLS is on")

	// /v1 still needs a client certificate.
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.ca.Pool()}}}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "https://"+srv.Addr+"/v1/whoami", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+p.admin)
	res, err := client.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	var body map[string]string
	require.NoError(t, json.NewDecoder(res.Body).Decode(&body))
	assert.Equal(t, http.StatusUnauthorized, res.StatusCode)
	assert.Equal(t, protocol.CodeClientCertRequired, body["code"])
}

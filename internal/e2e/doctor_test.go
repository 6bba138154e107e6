package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/cis490/cis490/internal/doctor"
	"github.com/cis490/cis490/internal/testpki"
)

// Commits the tests stamp into builds: one on the receiver's allow-list, one not.
var (
	allowedCommit = strings.Repeat("a11", 13) + "a"
	refusedCommit = strings.Repeat("bad", 13) + "b"
)

func assertCheck(t *testing.T, c doctor.Check, status doctor.Status, summary, hint string) {
	t.Helper()
	assert.Equal(t, status, c.Status, "%s: %s", c.ID, c.Summary)
	assert.Contains(t, c.Summary, summary, c.ID)
	assert.Contains(t, c.Hint, hint, c.ID)
}

func TestDoctorHealthyOverMutualTLS(t *testing.T) {
	t.Parallel()
	stamped, err := Build(t.TempDir(), allowedCommit)
	require.NoError(t, err)
	r := startDrReceiver(t, drSetup{hosts: []string{"lab-07"}, tls: true, allow: []string{allowedCommit}})
	cert := r.ca.ClientExpiring("lab-07", time.Now().Add(365*24*time.Hour))
	h := newDrHost(t, "lab-07", r.URL).withToken(t, r.tokens["lab-07"]).withTLS(r.ca, &cert)

	res, report, checks := h.doctor(t, stamped)
	require.Equal(t, 0, res.Code, res.Stderr)
	assert.Equal(t, doctor.Schema, report.Schema)
	assert.Equal(t, "lab-07", report.Host)
	assert.Equal(t, allowedCommit, report.Commit)
	for _, c := range report.Checks {
		switch c.ID {
		case "timers":
		case "update":
			assertCheck(t, c, doctor.Warn, "autoupdate is off", "update.public_keys")
		case "receiver-reachable":
			// testpki's server certificates live for a day, and doctor flags a
			// receiver certificate that expires within two weeks.
			assertCheck(t, c, doctor.Warn, "over TLS 1.3; its certificate expires on", "serve.tls.cert_file on the receiver")
		default:
			assert.Equal(t, doctor.OK, c.Status, "%s: %s (%s)", c.ID, c.Summary, c.Hint)
		}
	}
	assert.Equal(t, doctor.Warn, report.Status)
	assert.Equal(t, "TLS 1.3", checks["receiver-reachable"].Details["tls_version"])
	assert.Contains(t, checks["token"].Summary, "accepts the token for lab-07")
	assert.Equal(t, "commit "+allowedCommit[:12]+" is allowed", checks["commit-allowed"].Summary)
	assert.Contains(t, checks["client-cert"].Summary, "issued to lab-07")
	if _, err := os.Stat("/run/systemd/system"); err != nil {
		assertCheck(t, checks["timers"], doctor.Skip, "systemd is not running", "")
	}

	human := Run(t, stamped, h.env, nil, "--config", h.cfg, "doctor")
	require.Equal(t, 0, human.Code, human.Stderr)
	assert.Contains(t, human.Stdout, "✓ token ")
	assert.Contains(t, human.Stdout, "! receiver-reachable ")
	assert.Contains(t, human.Stdout, "lab-07: warn (2 warnings, ")
}

// The plain-HTTP, open-mode receiver of the quick start, with an unstamped build:
// warnings but no failure, so exit 0 unless --strict.
func TestDoctorWarningsAndStrict(t *testing.T) {
	t.Parallel()
	srv, _ := startOpenReceiver(t)
	h := newDrHost(t, "lab-07", srv.URL)
	res, report, checks := h.doctor(t, bin)
	require.Equal(t, 0, res.Code, res.Stderr)
	assert.Equal(t, doctor.Warn, report.Status)
	assertCheck(t, checks["receiver-reachable"], doctor.OK, "over plain HTTP", "")
	assertCheck(t, checks["token"], doctor.OK, "open mode", "")
	assertCheck(t, checks["commit-allowed"], doctor.Warn, "no commit stamp", "install a release build")
	assertCheck(t, checks["version"], doctor.Warn, "no commit stamp", "release build")
	assertCheck(t, checks["client-cert"], doctor.Skip, "no client certificate configured", "")

	res, _, _ = h.doctor(t, bin, "--strict")
	assert.Equal(t, 1, res.Code)
	assert.Contains(t, res.Stderr, "not ok: commit-allowed, update, version")
}

func TestDoctorReceiverUnreachable(t *testing.T) {
	t.Parallel()
	h := newDrHost(t, "lab-07", "http://"+unusedAddr(t))
	res, report, checks := h.doctor(t, bin)
	assert.Equal(t, 1, res.Code)
	assert.Equal(t, doctor.Fail, report.Status)
	assertCheck(t, checks["receiver-reachable"], doctor.Fail, "connection refused", "systemctl status cis490-receiver")
	assert.Contains(t, checks["receiver-reachable"].Hint, "receiver.url")
	for _, id := range []string{"token", "commit-allowed", "clock-skew"} {
		assertCheck(t, checks[id], doctor.Skip, "see receiver-reachable", "")
	}
	assert.Contains(t, res.Stderr, "not ok: receiver-reachable")

	human := Run(t, bin, h.env, nil, "--config", h.cfg, "doctor")
	assert.Equal(t, 1, human.Code)
	assert.Contains(t, human.Stdout, "✗ receiver-reachable")
	assert.Contains(t, human.Stdout, "→ check that the receiver runs", "the hint is under the problem")
}

// A receiver that accepts the connection and then says nothing must not hang the
// doctor: it reports within doctor.timeout.
func TestDoctorFinishesWithinTheTimeout(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		var held []net.Conn // kept open, never answered
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	h := newDrHost(t, "lab-07", "http://"+ln.Addr().String())
	h.extra = "[doctor]\ntimeout = \"1s\"\n"
	start := time.Now()
	res, report, checks := h.doctor(t, bin)
	elapsed := time.Since(start)
	assert.Less(t, elapsed, 3*time.Second, "doctor.timeout bounds the run")
	assert.Equal(t, 1, res.Code)
	assert.Equal(t, doctor.Fail, report.Status)
	for _, id := range []string{"receiver-reachable", "token"} {
		assertCheck(t, checks[id], doctor.Fail, "did not finish within doctor.timeout (1s)", "raise doctor.timeout")
		assert.Contains(t, checks[id].Hint, ln.Addr().String())
	}
	assert.Equal(t, doctor.OK, checks["spool"].Status, "the local checks still report")
}

func TestDoctorRefusedToken(t *testing.T) {
	t.Parallel()
	r := startDrReceiver(t, drSetup{hosts: []string{"lab-07"}, admins: []string{"alice"}})
	h := newDrHost(t, "lab-07", r.URL).withToken(t, "c490_not-a-token-the-receiver-knows")
	res, _, checks := h.doctor(t, bin)
	assert.Equal(t, 1, res.Code)
	assertCheck(t, checks["token"], doctor.Fail, "the receiver refused the token", "receiver.token_file ("+h.receiver["token_file"]+")")
	assert.Contains(t, checks["token"].Hint, "cis490 token new --host lab-07")
	assertCheck(t, checks["commit-allowed"], doctor.Skip, "see token", "")
	assertCheck(t, checks["clock-skew"], doctor.OK, "within a second", "")
	assertCheck(t, checks["receiver-reachable"], doctor.OK, "answered", "")

	admin := newDrHost(t, "lab-07", r.URL).withToken(t, r.tokens["alice"])
	_, _, checks = admin.doctor(t, bin)
	assertCheck(t, checks["token"], doctor.Warn, "admin token", "cis490 token new --host lab-07")
}

func TestDoctorRefusedCommit(t *testing.T) {
	t.Parallel()
	refused, err := Build(t.TempDir(), refusedCommit)
	require.NoError(t, err)
	r := startDrReceiver(t, drSetup{hosts: []string{"lab-07"}, allow: []string{allowedCommit}, rejectUnstamp: true})
	h := newDrHost(t, "lab-07", r.URL).withToken(t, r.tokens["lab-07"])

	res, report, checks := h.doctor(t, refused)
	assert.Equal(t, 1, res.Code)
	assert.Equal(t, refusedCommit, report.Commit)
	assertCheck(t, checks["commit-allowed"], doctor.Fail, "refuses commit "+refusedCommit, "update cis490 on this host")
	assertCheck(t, checks["token"], doctor.OK, "accepts the token", "")

	// The same receiver refuses unstamped builds (serve.gate.unstamped = reject).
	res, _, checks = h.doctor(t, bin)
	assert.Equal(t, 1, res.Code)
	assertCheck(t, checks["commit-allowed"], doctor.Fail, "refuses unstamped builds", "install a release build")
}

func TestDoctorClientCertificates(t *testing.T) {
	t.Parallel()
	r := startDrReceiver(t, drSetup{hosts: []string{"lab-07"}, tls: true})
	token := r.tokens["lab-07"]
	// testpki names files after the CN: one lab-07 certificate per CA.
	expired := r.ca.ClientExpiring("lab-07", time.Now().Add(-time.Hour))
	foreign := r.ca.ClientExpiring("lab-99", time.Now().Add(365*24*time.Hour))

	t.Run("missing", func(t *testing.T) {
		t.Parallel()
		gone := foreign
		gone.CertFile = filepath.Join(t.TempDir(), "lab-07.pem")
		h := newDrHost(t, "lab-07", r.URL).withToken(t, token).withTLS(r.ca, &gone)
		res, _, checks := h.doctor(t, bin)
		assert.Equal(t, 1, res.Code)
		assertCheck(t, checks["client-cert"], doctor.Fail, "cannot read receiver.cert_file", "signed by the fleet CA with CN lab-07")
		assertCheck(t, checks["receiver-reachable"], doctor.Fail, "cannot set up the connection", "receiver.*")
	})
	t.Run("expired", func(t *testing.T) {
		t.Parallel()
		h := newDrHost(t, "lab-07", r.URL).withToken(t, token).withTLS(r.ca, &expired)
		res, _, checks := h.doctor(t, bin)
		assert.Equal(t, 1, res.Code)
		assertCheck(t, checks["client-cert"], doctor.Fail, "expired on", "renew it")
		assertCheck(t, checks["receiver-reachable"], doctor.Fail, "refused the TLS handshake (tls: expired certificate)", "refused this host's TLS handshake")
	})
	t.Run("issued to another host", func(t *testing.T) {
		t.Parallel()
		h := newDrHost(t, "lab-07", r.URL).withToken(t, token).withTLS(r.ca, &foreign)
		res, _, checks := h.doctor(t, bin)
		assert.Equal(t, 1, res.Code)
		assertCheck(t, checks["client-cert"], doctor.Fail, "issued to CN lab-99", "CN lab-07")
		assertCheck(t, checks["token"], doctor.Fail, "not issued to host lab-07", "")
	})
	t.Run("receiver not trusted", func(t *testing.T) {
		t.Parallel()
		// This host checks the receiver first, so which client certificate it
		// holds does not matter here.
		h := newDrHost(t, "lab-07", r.URL).withToken(t, token).withTLS(testpki.NewCA(t, "other"), &foreign)
		res, _, checks := h.doctor(t, bin)
		assert.Equal(t, 1, res.Code)
		assertCheck(t, checks["receiver-reachable"], doctor.Fail, "not signed by receiver.ca_file", "receiver.ca_file must hold the CA")
	})
	t.Run("not configured", func(t *testing.T) {
		t.Parallel()
		h := newDrHost(t, "lab-07", r.URL).withToken(t, token).withTLS(r.ca, nil)
		res, _, checks := h.doctor(t, bin)
		assert.Equal(t, 1, res.Code)
		// /healthz takes no certificate (SPEC §3.1); /v1/whoami answers 401
		// client_certificate_required, and doctor says what to configure.
		assertCheck(t, checks["client-cert"], doctor.Fail, "no client certificate configured (receiver.cert_file), and the receiver requires one",
			"signed by the fleet CA with CN lab-07 and put it and its key in receiver.cert_file and key_file")
		assertCheck(t, checks["token"], doctor.Fail, "it requires a client certificate first, and this host sent none", "receiver.cert_file and receiver.key_file")
		assert.NotEqual(t, doctor.Fail, checks["receiver-reachable"].Status, checks["receiver-reachable"].Summary)
		assert.Contains(t, checks["receiver-reachable"].Summary, "answered")
	})
}

// The real receiver cannot be told to lie about the time, and changing this
// machine's clock would disturb everything else on it, so this receiver is a fake:
// it answers /healthz and /v1/whoami like `cis490 serve`, with a Date header ten
// minutes ahead.
func TestDoctorClockSkew(t *testing.T) {
	t.Parallel()
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Date", time.Now().Add(10*time.Minute).UTC().Format(http.TimeFormat))
		if r.URL.Path == "/v1/whoami" {
			_ = json.NewEncoder(w).Encode(map[string]any{"host": "lab-07", "role": "open", "commit_allowed": true, "gate": "open"})
			return
		}
		fmt.Fprintln(w, "ok")
	}))
	t.Cleanup(fake.Close)
	h := newDrHost(t, "lab-07", fake.URL)
	res, _, checks := h.doctor(t, bin)
	assert.Equal(t, 1, res.Code)
	assertCheck(t, checks["clock-skew"], doctor.Fail, "10m0s behind the receiver's", "timedatectl set-ntp true")
}

func TestDoctorSpool(t *testing.T) {
	t.Parallel()
	srv, _ := startOpenReceiver(t)

	t.Run("rejected files", func(t *testing.T) {
		t.Parallel()
		h := newDrHost(t, "lab-07", srv.URL)
		require.NoError(t, os.WriteFile(filepath.Join(h.spool, "rejected", "bad.tar"), []byte("x"), 0o640))
		require.NoError(t, os.WriteFile(filepath.Join(h.spool, "rejected", "bad.tar.reason"), []byte(`{"reason":"422"}`), 0o640))
		_, _, checks := h.doctor(t, bin)
		assertCheck(t, checks["spool"], doctor.Warn, "1 in rejected/", ".reason file")
		assert.Equal(t, 1.0, checks["spool"].Details["rejected"])
	})
	// Tests run as root in CI, and root writes through chmod 0500; a spool whose
	// parent is a regular file cannot be created or written by anyone. (The unit
	// tests also cover a spool on a read-only mount.)
	t.Run("not writable", func(t *testing.T) {
		t.Parallel()
		h := newDrHost(t, "lab-07", srv.URL)
		file := filepath.Join(t.TempDir(), "a-file")
		require.NoError(t, os.WriteFile(file, nil, 0o600))
		h.spool = filepath.Join(file, "spool")
		res, _, checks := h.doctor(t, bin)
		assert.Equal(t, 1, res.Code)
		assertCheck(t, checks["spool"], doctor.Fail, "outbox/ cannot be used: not a directory", "cis490 install lab-host")
		assert.NotEqual(t, doctor.Fail, checks["disk"].Status, "free space is still measured: %s", checks["disk"].Summary)
	})
	// A 50 MiB tmpfs really has that little room: the figure doctor reads is real.
	t.Run("low disk", func(t *testing.T) {
		t.Parallel()
		h := newDrHost(t, "lab-07", srv.URL)
		if err := unix.Mount("tmpfs", h.spool, "tmpfs", 0, "size=50m"); err != nil {
			t.Skipf("cannot mount a tmpfs (needs root outside a sandbox): %v", err)
		}
		t.Cleanup(func() { assert.NoError(t, unix.Unmount(h.spool, 0)) })
		for _, sub := range []string{"outbox", "sent", "rejected"} {
			require.NoError(t, os.Mkdir(filepath.Join(h.spool, sub), 0o750))
		}
		res, _, checks := h.doctor(t, bin)
		assert.Equal(t, 1, res.Code)
		assertCheck(t, checks["disk"], doctor.Fail, "MiB free of 50.0 MiB", filepath.Join(h.spool, "sent"))
	})
}

// A configuration that does not load is a usage error, but the report still comes,
// with its config check failed.
func TestDoctorWithABrokenConfiguration(t *testing.T) {
	t.Parallel()
	cfg := filepath.Join(t.TempDir(), "lab-host.toml")
	require.NoError(t, os.WriteFile(cfg, []byte("[receiver]\nulr = \"http://pi:8490\"\n"), 0o600))
	res := Run(t, bin, Env(t), nil, "--config", cfg, "doctor", "--json")
	assert.Equal(t, 2, res.Code)
	assert.Contains(t, res.Stderr, "unknown key receiver.ulr")
	var report doctor.Report
	require.NoError(t, json.Unmarshal([]byte(res.Stdout), &report), res.Stdout)
	assert.Equal(t, doctor.Fail, report.Status)
	require.NotEmpty(t, report.Checks)
	assert.Equal(t, "config", report.Checks[0].ID)
	assertCheck(t, report.Checks[0], doctor.Fail, "unknown key receiver.ulr", "lab-host.toml")

	res = Run(t, bin, Env(t), nil, "doctor", "--bogus")
	assert.Equal(t, 2, res.Code)
}
